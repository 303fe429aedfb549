// Times ONNX Runtime's inference of the models bench_ort_export wrote (bench/ort.sh runs it):
// the median of `reps` session.run calls after `warmup` ones, on the saved input.
//
//   node bench/ort_bench.js <ort_dir> <inputs_dir> <id> <reps> <warmup> <json_out>
//
// <id> is infer_<cell>_<size>; prints a line like bench_rnn's and writes one JSON result.
'use strict';
const fs = require('fs');
const path = require('path');

const [ortDir, inputs, id, reps, warmup, jsonOut] = process.argv.slice(2);
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

function readNpyF32(file) {
  const buf = fs.readFileSync(file);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`${file}: expected float32`);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const copy = new Uint8Array(buf.length - start);
  copy.set(buf.subarray(start));
  return new ort.Tensor('float32', new Float32Array(copy.buffer), shape);
}

(async () => {
  const [, cell, size] = id.split('_');
  const stem = path.join(inputs, `${cell}_${size}`);
  const session = await ort.InferenceSession.create(`${stem}.onnx`);
  const feeds = {x: readNpyF32(`${stem}_x.npy`)};
  let out = await session.run(feeds);
  let sum = 0;
  for (const v of out.y.data) sum += Math.abs(v);
  const checksum = sum / out.y.data.length;
  for (let i = 0; i < Number(warmup); ++i) await session.run(feeds);
  const times = [];
  for (let i = 0; i < Number(reps); ++i) {
    const t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`${id.padEnd(16)} median_ms=${median.toPrecision(6)} min_ms=${times[0].toPrecision(6)} ` +
              `reps=${reps} output_mean_abs=${checksum.toPrecision(9)}`);
  fs.writeFileSync(jsonOut, JSON.stringify({framework: 'onnxruntime', version: '1.30.0', results: [
    {id, kind: 'infer', cell, size, median_ms: median, min_ms: times[0], reps: Number(reps), output_mean_abs: checksum}]}));
})().catch((e) => {
  console.error(`ort_bench: ${e.message || e}`);
  process.exit(1);
});

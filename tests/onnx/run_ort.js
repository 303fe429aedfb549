// Runs an ONNX model in ONNX Runtime (npm's onnxruntime-node) on inputs saved as .npy files and
// writes its outputs as .npy files: the reference the ONNX export tests compare xgrad with.
//
//   node run_ort.js <ort_dir> <model.onnx> <dir>
//
// Reads <dir>/<input name>.npy for every input of the model, writes <dir>/out_<output name>.npy
// for every output. <ort_dir> is where scripts/install-ort.sh installed onnxruntime-node.
'use strict';
const fs = require('fs');
const path = require('path');

const [ortDir, modelPath, dir] = process.argv.slice(2);
if (!dir) {
  console.error('usage: node run_ort.js <ort_dir> <model.onnx> <dir>');
  process.exit(2);
}
const ort = require(path.join(ortDir, 'node_modules', 'onnxruntime-node'));

const NPY = {
  '<f4': {type: 'float32', Array: Float32Array},
  '<f8': {type: 'float64', Array: Float64Array},
  '<i8': {type: 'int64', Array: BigInt64Array},
  '|b1': {type: 'bool', Array: Uint8Array},
};

function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order`);
  const kind = NPY[descr];
  if (!kind) throw new Error(`${file}: dtype ${descr} not supported`);
  const bytes = buf.subarray(start);
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const data = new kind.Array(copy.buffer, 0, bytes.length / kind.Array.BYTES_PER_ELEMENT);
  return new ort.Tensor(kind.type, kind.type === 'bool' ? Array.from(data, (v) => v !== 0) : data, shape);
}

function writeNpy(file, tensor) {
  const descr = {float32: '<f4', float64: '<f8', int64: '<i8', bool: '|b1'}[tensor.type];
  if (!descr) throw new Error(`output type ${tensor.type} not supported`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad === 64 ? 0 : pad) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = tensor.type === 'bool' ? Buffer.from(Uint8Array.from(tensor.data, (v) => (v ? 1 : 0)))
                                      : Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), data]));
}

(async () => {
  const session = await ort.InferenceSession.create(modelPath);
  const feeds = {};
  for (const name of session.inputNames) feeds[name] = readNpy(path.join(dir, `${name}.npy`));
  const results = await session.run(feeds);
  for (const name of session.outputNames) writeNpy(path.join(dir, `out_${name}.npy`), results[name]);
})().catch((e) => {
  console.error(`run_ort: ${e.message || e}`);
  process.exit(1);
});

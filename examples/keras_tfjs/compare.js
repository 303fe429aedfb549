#!/usr/bin/env node
/*
 * The Keras tutorial's six models in Keras itself (TensorFlow.js 4.22.0, the pure-JS CPU
 * backend, float32), trained side by side with examples/keras_tutorial.cpp. Run it through
 * compare.sh, which builds nothing, installs tfjs into a temporary folder and runs
 * `keras_tutorial --export DIR` first; DIR holds (see export_run in keras_tutorial.cpp):
 *   data.safetensors      train_ids (N, 100) int64, train_labels (N), val_ids, val_labels
 *   model<m>.safetensors  model m's initial weights in Keras's layout, "<position>.<name>"
 *   run.json              lr, batch, seed, steps; batches (per epoch, the samples of each
 *                         batch in order); models [{model, name, xgrad_losses}]
 *
 *   node compare.js steps DIR OUT.json   the first `steps` steps with dropout off; OUT holds
 *                                        both frameworks' losses and their max relative
 *                                        difference per model; exits 1 above 1e-4
 *   node compare.js train DIR OUT.json EPOCHS
 *                                        EPOCHS epochs with the tutorial's dropout; OUT holds
 *                                        per epoch the training loss and the validation loss
 *                                        and accuracy, and the wall time per model
 *   node compare.js table TFJS.json XGRAD.json
 *                                        the README's side-by-side table of a train run
 *   node compare.js embedding DIR STEPS  model 3 with tfjs's own Embedding layer against the
 *                                        one-hot × kernel model, STEPS steps side by side;
 *                                        exits 1 when a loss differs by more than 1e-6
 *
 * The models are the tutorial's Keras lines, with two substitutions that compute the same
 * function:
 *   - Embedding(500, 16) is Dense(16, use_bias=False) on one-hot ids: one-hot(ids) × kernel
 *     picks kernel's rows as the Embedding does, and its gradient is the Embedding's. tfjs's
 *     own Embedding layer gives the same losses, ten times slower here (compare.sh embedding).
 *   - GRU(8) is Keras 2's default GRU, reset_after=True (xgrad's default, PyTorch's form).
 *     tfjs's GRUCell refuses reset_after=True, so it runs tfjs's RNN layer around a tfjs
 *     GRUCell subclass transcribing Keras 2's GRUCell(reset_after=True); the same subclass is
 *     checked against tfjs's own GRU in tests/fixtures/gen_keras_fixtures.js.
 * Everything else is tfjs's own: SimpleRNN, LSTM (recurrent_activation 'sigmoid', Keras 2's
 * default; tfjs's is 'hardSigmoid'), Dense(1, 'sigmoid'), loss 'binaryCrossentropy' (Keras's:
 * probabilities clipped to [1e-7, 1 - 1e-7]), tf.train.rmsprop(lr) (Keras's rho 0.9, epsilon
 * 1e-7), model.trainOnBatch on the exported batches in the exported order.
 */
'use strict';

const fs = require('fs');
const tf = require('@tensorflow/tfjs');

const VOCAB = 500, MAXLEN = 100, UNITS = 8, EMBED = 16;
const TOLERANCE = 1e-4;

// --- files ---------------------------------------------------------------------------------

// A safetensors file: 8-byte little-endian header length, JSON header, raw little-endian data.
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.toString('utf8', 8, 8 + n));
  const out = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [begin, end] = info.data_offsets;
    const bytes = new Uint8Array(buf.subarray(8 + n + begin, 8 + n + end));  // an aligned copy
    let data;
    if (info.dtype === 'F32') data = new Float32Array(bytes.buffer);
    else if (info.dtype === 'I64') data = Int32Array.from(new BigInt64Array(bytes.buffer), Number);
    else throw new Error(`${file}: ${name} has dtype ${info.dtype}`);
    out[name] = {shape: info.shape, data};
  }
  return out;
}

// The shortest decimal that rounds back to the same float32.
function fmt32(v) {
  if (!Number.isFinite(v)) return null;
  for (let p = 1; p <= 9; ++p) {
    const n = Number(v.toPrecision(p));
    if (Math.fround(n) === Math.fround(v)) return n;
  }
  throw new Error('not a float32: ' + v);
}

// --- the models ------------------------------------------------------------------------------

// tfjs's GRUCell, subclassed into Keras 2's GRUCell(reset_after=True):
//   mx = x @ kernel + bias[0];  mi = h @ recurrent_kernel + bias[1]
//   z = sigmoid(mx_z + mi_z);   r = sigmoid(mx_r + mi_r)
//   hh = tanh(mx_h + r * mi_h); h' = z * h + (1 - z) * hh
const TfjsGRUCell = tf.layers.gruCell({units: 1}).constructor;
class KerasGRUCellResetAfter extends TfjsGRUCell {
  constructor(args) { super(Object.assign({}, args, {resetAfter: false})); }  // tfjs rejects true
  build(inputShape) {
    if (Array.isArray(inputShape[0])) inputShape = inputShape[0];
    const inputDim = inputShape[inputShape.length - 1], u = this.units;
    this.kernel = this.addWeight('kernel', [inputDim, 3 * u], null, this.kernelInitializer, null, true);
    this.recurrentKernel = this.addWeight('recurrent_kernel', [u, 3 * u], null, this.recurrentInitializer, null, true);
    this.bias = this.addWeight('bias', [2, 3 * u], null, this.biasInitializer, null, true);
    this.built = true;
  }
  call(inputs) {
    return tf.tidy(() => {
      const x = inputs[0], hPrev = inputs[1];
      const [bIn, bRec] = tf.unstack(this.bias.read(), 0);
      const [xz, xr, xh] = tf.split(tf.add(tf.matMul(x, this.kernel.read()), bIn), 3, 1);
      const [rz, rr, rh] = tf.split(tf.add(tf.matMul(hPrev, this.recurrentKernel.read()), bRec), 3, 1);
      const z = this.recurrentActivation.apply(tf.add(xz, rz));
      const r = this.recurrentActivation.apply(tf.add(xr, rr));
      const hh = this.activation.apply(tf.add(xh, tf.mul(r, rh)));
      const h = tf.add(tf.mul(z, hPrev), tf.mul(tf.sub(1, z), hh));
      return [h, h];
    });
  }
}

const input = {inputShape: [MAXLEN, VOCAB]};  // one-hot ids
const embedding = () => tf.layers.dense(Object.assign({units: EMBED, useBias: false}, input));
const lstm = args => tf.layers.lstm(Object.assign({units: UNITS, recurrentActivation: 'sigmoid'}, args));

// The tutorial's six models (keras_tutorial.cpp's models(), in the same order), without the
// final Dense(1, 'sigmoid') that all share. `dropout`: models 4 and 5's LSTM dropout.
const MODELS = [
  () => [embedding(), tf.layers.simpleRNN({units: UNITS})],
  () => [tf.layers.simpleRNN(Object.assign({units: UNITS}, input))],
  () => [embedding(), lstm({})],
  dropout => [embedding(), lstm({dropout})],
  dropout => [embedding(), lstm({dropout, returnSequences: true}), lstm({dropout})],
  () => [embedding(), tf.layers.rnn({cell: new KerasGRUCellResetAfter({units: UNITS, recurrentActivation: 'sigmoid'})})],
];

// Model m (1-6) compiled as the tutorial compiles it, holding the exported initial weights.
function buildModel(m, dropout, weightsFile, lr) {
  const model = tf.sequential({layers: [...MODELS[m - 1](dropout), tf.layers.dense({units: 1, activation: 'sigmoid'})]});
  model.compile({optimizer: tf.train.rmsprop(lr), loss: 'binaryCrossentropy'});
  // xgrad's Sequential positions in order; those without weights (one-hot, last step) drop out.
  const file = readSafetensors(weightsFile);
  const groups = new Map();
  for (const name of Object.keys(file)) {
    const [position, weight] = name.split('.');
    if (!groups.has(position)) groups.set(position, {});
    groups.get(position)[weight] = file[name];
  }
  const positions = [...groups.keys()].sort((a, b) => a - b);
  const layers = model.layers.filter(l => l.weights.length > 0);
  if (positions.length !== layers.length) throw new Error(`${weightsFile}: ${positions.length} weighted layers, Keras has ${layers.length}`);
  layers.forEach((layer, i) => {
    const g = groups.get(positions[i]);
    const names = layer.weights.map(w => {
      const n = w.originalName.split('/').pop();
      return n === 'kernel' && g.embeddings ? 'embeddings' : n;
    });
    layer.setWeights(names.map(n => {
      if (!g[n]) throw new Error(`${weightsFile}: position ${positions[i]} has no ${n} for ${layer.name}`);
      return tf.tensor(g[n].data, g[n].shape);
    }));
  });
  return model;
}

// --- data --------------------------------------------------------------------------------------

// One-hot ids (B, 100, 500) and labels (B, 1) of the given rows.
function batchTensors(ids, labels, rows) {
  return tf.tidy(() => {
    const flat = new Int32Array(rows.length * MAXLEN);
    const y = new Float32Array(rows.length);
    rows.forEach((r, i) => {
      flat.set(ids.data.subarray(r * MAXLEN, (r + 1) * MAXLEN), i * MAXLEN);
      y[i] = labels.data[r];
    });
    return {x: tf.oneHot(tf.tensor2d(flat, [rows.length, MAXLEN], 'int32'), VOCAB), y: tf.tensor2d(y, [rows.length, 1])};
  });
}

// Keras's evaluate: binary cross-entropy (probabilities clipped to [1e-7, 1 - 1e-7]) and
// binary accuracy (p > 0.5), averaged over all rows.
function evaluate(model, ids, labels) {
  const n = labels.data.length;
  let loss = 0, correct = 0;
  for (let begin = 0; begin < n; begin += 200) {
    const rows = Array.from({length: Math.min(200, n - begin)}, (_, i) => begin + i);
    const {x, y} = batchTensors(ids, labels, rows);
    const p = tf.tidy(() => model.predict(x)).dataSync();
    rows.forEach((r, i) => {
      const t = labels.data[r], q = Math.min(Math.max(p[i], 1e-7), 1 - 1e-7);
      loss -= t * Math.log(q) + (1 - t) * Math.log(1 - q);
      correct += (p[i] > 0.5) === (t > 0.5) ? 1 : 0;
    });
    tf.dispose([x, y]);
  }
  return {loss: loss / n, accuracy: correct / n};
}

function meta(run) {
  return {
    generator: 'examples/keras_tfjs/compare.sh (compare.js)',
    source: `TensorFlow.js ${tf.version.tfjs} (Apache-2.0, Google), backend ${tf.getBackend()}, float32`,
    lr: run.lr, batch: run.batch, seed: run.seed,
  };
}

// --- modes -------------------------------------------------------------------------------------

async function steps(dir, out) {
  const run = JSON.parse(fs.readFileSync(`${dir}/run.json`, 'utf8'));
  const data = readSafetensors(`${dir}/data.safetensors`);
  const order = run.batches.flat();
  if (order.length < run.steps) throw new Error(`run.json has ${order.length} batches, fewer than ${run.steps} steps`);
  const models = [];
  let failed = false;
  for (const {model: m, name, xgrad_losses: xgrad} of run.models) {
    const model = buildModel(m, 0, `${dir}/model${m}.safetensors`, run.lr);
    const tfjs = [];
    for (let s = 0; s < run.steps; ++s) {
      const {x, y} = batchTensors(data.train_ids, data.train_labels, order[s]);
      tfjs.push(await model.trainOnBatch(x, y));
      tf.dispose([x, y]);
    }
    let worst = 0, at = 0;
    tfjs.forEach((t, i) => {
      const rel = Math.abs(xgrad[i] - t) / Math.abs(t);
      if (!(rel <= worst)) { worst = rel; at = i; }
    });
    const ok = worst <= TOLERANCE;
    failed = failed || !ok;
    console.log(`model ${m} (${name}): max relative difference ${worst.toExponential(2)} at step ${at + 1} ` +
                `(xgrad ${xgrad[at]}, tfjs ${tfjs[at]}); loss ${tfjs[0].toFixed(6)} -> ${tfjs[tfjs.length - 1].toFixed(6)} ${ok ? 'ok' : 'FAIL'}`);
    models.push({model: m, name, max_relative_difference: worst, worst_step: at + 1,
                 tfjs_losses: tfjs.map(fmt32), xgrad_losses: xgrad.map(fmt32)});
    model.dispose();
  }
  const result = Object.assign(meta(run), {steps: run.steps, tolerance: TOLERANCE, dropout: 0,
    compared: 'per step: |xgrad - tfjs| / |tfjs| of the training loss of that batch (before its update)'});
  fs.writeFileSync(out, JSON.stringify(Object.assign(result, {models}), null, 1) + '\n');
  if (failed) process.exitCode = 1;
}

async function train(dir, out, epochs) {
  const run = JSON.parse(fs.readFileSync(`${dir}/run.json`, 'utf8'));
  const data = readSafetensors(`${dir}/data.safetensors`);
  if (run.batches.length < epochs) throw new Error(`run.json has ${run.batches.length} epochs of batches, fewer than ${epochs}`);
  const models = [];
  for (const {model: m, name} of run.models) {
    const model = buildModel(m, 0.3, `${dir}/model${m}.safetensors`, run.lr);
    const start = process.hrtime.bigint();
    const history = {train_loss: [], val_loss: [], val_accuracy: []};
    for (let e = 0; e < epochs; ++e) {
      let sum = 0, count = 0;
      for (const rows of run.batches[e]) {
        const {x, y} = batchTensors(data.train_ids, data.train_labels, rows);
        sum += (await model.trainOnBatch(x, y)) * rows.length;
        count += rows.length;
        tf.dispose([x, y]);
      }
      const val = evaluate(model, data.val_ids, data.val_labels);
      history.train_loss.push(sum / count);
      history.val_loss.push(val.loss);
      history.val_accuracy.push(val.accuracy);
      console.log(`model ${m} epoch ${e + 1}: loss ${(sum / count).toFixed(4)}, val loss ${val.loss.toFixed(4)}, val acc ${val.accuracy.toFixed(3)}`);
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`model ${m} (${name}): ${epochs} epochs in ${seconds.toFixed(1)} s`);
    models.push(Object.assign({model: m, name, epochs, seconds}, history));
    model.dispose();
  }
  fs.writeFileSync(out, JSON.stringify(Object.assign(meta(run), {dropout: 0.3, models}), null, 1) + '\n');
}

// The substitution checked: tfjs's own Embedding(500, 16) → LSTM(8) (model 3) takes the first
// steps beside the one-hot × kernel model, from the same weights on the same batches.
async function embeddingCheck(dir, steps) {
  const run = JSON.parse(fs.readFileSync(`${dir}/run.json`, 'utf8'));
  const data = readSafetensors(`${dir}/data.safetensors`);
  const w = readSafetensors(`${dir}/model3.safetensors`);
  const t = name => tf.tensor(w[name].data, w[name].shape);
  const onehot = buildModel(3, 0, `${dir}/model3.safetensors`, run.lr);
  const layers = [tf.layers.embedding({inputDim: VOCAB, outputDim: EMBED, inputLength: MAXLEN}), lstm({}),
                  tf.layers.dense({units: 1, activation: 'sigmoid'})];
  const model = tf.sequential({layers});
  model.compile({optimizer: tf.train.rmsprop(run.lr), loss: 'binaryCrossentropy'});
  layers[0].setWeights([t('0.embeddings')]);
  layers[1].setWeights([t('1.kernel'), t('1.recurrent_kernel'), t('1.bias')]);
  layers[2].setWeights([t('3.kernel'), t('3.bias')]);
  const order = run.batches.flat();
  let worst = 0;
  for (let s = 0; s < steps; ++s) {
    const {x, y} = batchTensors(data.train_ids, data.train_labels, order[s]);
    const ids = tf.tensor2d(Int32Array.from(order[s].flatMap(r => Array.from(data.train_ids.data.subarray(r * MAXLEN, (r + 1) * MAXLEN)))),
                            [order[s].length, MAXLEN], 'int32');
    let t0 = Date.now();
    const a = await onehot.trainOnBatch(x, y);
    const ta = Date.now() - t0;
    t0 = Date.now();
    const b = await model.trainOnBatch(ids, y);
    const tb = Date.now() - t0;
    worst = Math.max(worst, Math.abs(a - b) / Math.abs(b));
    console.log(`step ${s + 1}: one-hot × kernel ${a} (${ta} ms), Embedding ${b} (${tb} ms)`);
    tf.dispose([x, y, ids]);
  }
  console.log(`max relative difference ${worst.toExponential(2)}`);
  if (!(worst <= 1e-6)) process.exitCode = 1;
}

// The README's table: after the last epoch, both frameworks' validation loss and accuracy and
// the wall time of the whole run (training and per-epoch validation).
function table(tfjsFile, xgradFile) {
  const tfjs = JSON.parse(fs.readFileSync(tfjsFile, 'utf8')).models;
  const xgrad = JSON.parse(fs.readFileSync(xgradFile, 'utf8')).models;
  if (tfjs.length !== xgrad.length) throw new Error('the two runs hold different models');
  console.log('| model | val loss xgrad | val loss TF.js | val acc xgrad | val acc TF.js | time xgrad | time TF.js |');
  console.log('|---|---|---|---|---|---|---|');
  tfjs.forEach((t, i) => {
    const x = xgrad[i], e = t.epochs - 1;
    if (x.model !== t.name || x.epochs !== t.epochs) throw new Error(`row ${i + 1}: ${x.model}, ${x.epochs} epochs vs ${t.name}, ${t.epochs}`);
    console.log(`| ${t.name} | ${x.val_loss_per_epoch[e].toFixed(4)} | ${t.val_loss[e].toFixed(4)} | ` +
                `${x.val_accuracy_per_epoch[e].toFixed(3)} | ${t.val_accuracy[e].toFixed(3)} | ` +
                `${x.seconds.toFixed(1)} s | ${t.seconds.toFixed(1)} s |`);
  });
}

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'table') return table(...args);
  await tf.setBackend('cpu');
  if (mode === 'steps') return steps(args[0], args[1]);
  if (mode === 'train') return train(args[0], args[1], Number(args[2]));
  if (mode === 'embedding') return embeddingCheck(args[0], Number(args[1]));
  throw new Error('usage: compare.js steps DIR OUT.json | train DIR OUT.json EPOCHS | table TFJS.json XGRAD.json | embedding DIR STEPS');
}

main().catch(e => { console.error(e); process.exit(2); });

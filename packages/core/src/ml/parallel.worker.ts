/**
 * A data-parallel training thread (see parallel.ts): its own tfjs and model replica. For each step it
 * loads the weights the main thread published, computes the gradient of its rows and writes it to its
 * shared buffer. It never applies an optimizer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendPreference } from './backend.ts';
import { replicaGradients, type FromReplica, type ReplicaConfig, type ToReplica } from './parallel.ts';

const config = workerData as ReplicaConfig;
const port = parentPort!;
const send = (m: FromReplica) => port.postMessage(m);

async function main(): Promise<void> {
  await initBackend(config.backend as BackendPreference);
  const model = await tf.models.modelFromJSON(config.topology as tf.io.ModelJSON['modelTopology'] as never);
  model.setWeights(config.weights.map((w) => tf.tensor(w.values, w.shape)));
  const vars = config.trainable.map((i) => model.weights[i]!.read() as tf.Variable);
  const x = new Float32Array(config.x);
  const y = new Int32Array(config.y);
  const params = new Float32Array(config.params);
  const grads = new Float32Array(config.grads);
  const width = config.shape.reduce((a, b) => a * b, 1);
  const k = config.numClasses;

  port.on('message', (m: ToReplica) => {
    if (m.type === 'stop') {
      port.close();
      return;
    }
    try {
      let o = 0;
      for (const v of vars) {
        tf.tidy(() => v.assign(tf.tensor(params.subarray(o, o + v.size), v.shape)));
        o += v.size;
      }
      const n = m.rows.length;
      const xb = new Float32Array(n * width);
      const yb = new Float32Array(n * k);
      m.rows.forEach((row, r) => {
        xb.set(x.subarray(row * width, (row + 1) * width), r * width);
        yb[r * k + y[row]!] = 1;
      });
      const xt = tf.tensor(xb, [n, ...config.shape]);
      const yt = tf.tensor2d(yb, [n, k]);
      const out = replicaGradients(model, vars, xt, yt);
      o = 0;
      out.grads.forEach((g, i) => {
        grads.set(g.dataSync() as Float32Array, o);
        o += vars[i]!.size;
      });
      tf.dispose([xt, yt, ...out.grads]);
      send({ type: 'done', loss: out.loss, acc: out.acc });
    } catch (e) {
      send({ type: 'error', message: e instanceof Error ? e.message : String(e) });
    }
  });
  send({ type: 'ready' });
}

main().catch((e: unknown) => send({ type: 'error', message: e instanceof Error ? e.message : String(e) }));

/**
 * tfjs backend selection. `auto` tries, in order, each only if it loads:
 *   tfjs-node-gpu (CUDA) → tfjs-node (native CPU) → wasm (+ our training kernels) → cpu (pure JS).
 * The native packages are never dependencies of this project (their install downloads libtensorflow);
 * an image that installs one gets it picked up here with no code change.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from './wasm-kernels.ts';

export type BackendPreference = 'auto' | 'tensorflow' | 'wasm' | 'cpu';

// tfjs prints a "looks like you are running TensorFlow.js in Node.js… install our node backend"
// banner on the cpu backend's first use. Backends are chosen here, on purpose: PROD mode silences
// tfjs' console warnings (it changes nothing else: tfjs-core's log.ts and environment.ts read it).
tf.env().set('PROD', true);

/** Loads a native tfjs-node package if it is installed, from this package or the working directory. */
async function tryNative(pkg: string): Promise<boolean> {
  const bases = [import.meta.url, path.join(process.cwd(), 'noop.js')];
  for (const base of bases) {
    let resolved: string;
    try {
      resolved = createRequire(base).resolve(pkg);
    } catch {
      continue;
    }
    try {
      createRequire(base)(resolved);
      if (tf.findBackend('tensorflow') === null || !(await tf.setBackend('tensorflow'))) return false;
      nativePackage = pkg;
      return true;
    } catch {
      return false;
    }
  }
  return false;
}

async function tryWasm(): Promise<boolean> {
  try {
    const require = createRequire(import.meta.url);
    const dist = path.join(
      path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
      'dist',
    );
    setWasmPaths(dist + path.sep);
    if (!(await tf.setBackend('wasm'))) return false;
    registerWasmTrainingKernels();
    return true;
  } catch {
    return false;
  }
}

let chosen: Promise<string> | undefined;
let nativePackage: string | undefined;

/**
 * Chooses and initialises the backend once per process; later calls return the same name.
 * Throws when an explicitly requested backend cannot load.
 */
export function initBackend(pref: BackendPreference = 'auto'): Promise<string> {
  chosen ??= (async () => {
    const order: (() => Promise<boolean>)[] = [];
    if (pref === 'auto' || pref === 'tensorflow') {
      order.push(
        () => tryNative('@tensorflow/tfjs-node-gpu'),
        () => tryNative('@tensorflow/tfjs-node'),
      );
    }
    if (pref === 'auto' || pref === 'wasm') order.push(tryWasm);
    if (pref === 'auto' || pref === 'cpu') order.push(() => tf.setBackend('cpu'));
    for (const attempt of order) {
      if (await attempt()) {
        await tf.ready();
        return describeBackend();
      }
    }
    throw new Error(`tfjs backend "${pref}" could not be loaded here`);
  })();
  return chosen;
}

/** The active backend as reported to users: `tensorflow-gpu`, `tensorflow`, `wasm`, `cpu`. */
export function describeBackend(): string {
  const name = tf.getBackend();
  if (name === 'tensorflow') return nativePackage?.endsWith('-gpu') ? 'tensorflow-gpu' : 'tensorflow';
  return name;
}

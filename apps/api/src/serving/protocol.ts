/**
 * Messages between the API's event loop and its predict threads (predict.worker.ts). Tensors travel
 * as Float32Arrays whose buffers are transferred, not copied.
 */

/** What the server needs to know about a loaded model to check requests and shape responses. */
export interface ModelInfo {
  /** Name of the model's (single) input layer: the key of an object instance. */
  inputName: string;
  /** Shape of one instance, without the batch dimension. */
  inputShape: number[];
  inputDtype: string;
  /** Name of the model's (single) output layer: the output tensor's name in metadata and V2 answers. */
  outputName: string;
  /** Shape of one prediction, without the batch dimension. */
  outputShape: number[];
  outputDtype: string;
  /** Bytes of weights, as counted by the thread's LRU. */
  bytes: number;
}

/** Fixed at thread start. */
export interface ThreadConfig {
  storeUri: string;
  dataRoots: string[];
  cacheModels: number;
  cacheBytes: number;
  /** tfjs backend preference of the thread (TFJS_BACKEND): `wasm`, `cpu`, `tensorflow` or `auto`. */
  backend: string;
  /** IMAGE_MAX_PIXELS: a decode refuses a larger image (width × height, from its header) before decoding it. */
  imageMaxPixels: number;
}

/**
 * `decode`: PNG/JPEG files to pixels, one image after the other, each resized to `height` × `width`
 * with `channels` channels and scaled to 0..1 (as the image-folder dataset does); `names` are what a
 * failure names (e.g. `instances[3]`).
 */
export interface DecodeRequest {
  type: 'decode';
  id: number;
  images: Uint8Array[];
  names: string[];
  height: number;
  width: number;
  channels: 1 | 3;
}

export type ToThread =
  | { type: 'load'; id: number; key: string; uri: string }
  | { type: 'predict'; id: number; key: string; uri: string; rows: number; data: Float32Array }
  | DecodeRequest;

export interface ThreadError {
  name: string;
  message: string;
}

export type FromThread =
  | { type: 'ready'; backend: string }
  | { type: 'fatal'; error: ThreadError }
  | {
      type: 'reply';
      id: number;
      /** Models this thread dropped from its LRU while serving the request. */
      evicted: string[];
      info?: ModelInfo;
      data?: Float32Array;
      error?: ThreadError;
    };

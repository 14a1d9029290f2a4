/**
 * The dropout a frozen base applies at its end in training (Keras' mnist_transfer_cnn: Dropout(0.25)
 * before Flatten), for the head that trains on cached features: the cache holds the base's outputs
 * in inference mode, so without this the head would never see them noisy, as it does in Keras and
 * PyTorch (where it is worth about 0.5 points of transfer accuracy).
 */
import * as tf from '@tensorflow/tfjs';

/** A dropout kernel that also returns its mask (1/keep or 0); wasm-kernels.ts registers one. */
export const DROPOUT_KERNEL = 'MlqDropout';

let seedState = (Math.random() * 2 ** 32) >>> 0;
const nextSeed = () => (seedState = (Math.imul(seedState, 1664525) + 1013904223) >>> 0);

/** dx = dy * mask (the mask, the kernel's second output, already holds the 1/keep scale). */
const dropoutGradient: tf.GradConfig = {
  kernelName: DROPOUT_KERNEL,
  outputsToSave: [false, true],
  gradFunc: (dy, saved) => {
    const g = Array.isArray(dy) ? dy[0]! : dy;
    return { x: () => tf.mul(g, saved[0]!) };
  },
};
tf.registerGradient(dropoutGradient);

export class FeatureDropout extends tf.layers.Layer {
  static readonly className = 'MlqFeatureDropout';
  private readonly rate: number;

  constructor(args: { rate: number; name?: string }) {
    super({ name: args.name, trainable: false });
    this.rate = args.rate;
  }

  override computeOutputShape(shape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor {
    const x = Array.isArray(inputs) ? inputs[0]! : inputs;
    if (!kwargs['training'] || this.rate === 0) return x.clone();
    if (x.dtype !== 'float32' || tf.getKernel(DROPOUT_KERNEL, tf.getBackend()) === undefined)
      return tf.dropout(x, this.rate);
    const [y, mask] = tf
      .engine()
      .runKernel(DROPOUT_KERNEL, { x }, { rate: this.rate, seed: nextSeed() }) as tf.Tensor[];
    mask!.dispose();
    return y!;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}
tf.serialization.registerClass(FeatureDropout);

/**
 * The keep-probability of the dropout run that `features` ends in (dropout and reshaping layers
 * after its last layer with weights, as a plain chain), as one rate; 0 if there is none.
 */
export function trailingDropoutRate(features: tf.LayersModel): number {
  let keep = 1;
  let layer = features.outputs[0]!.sourceLayer as tf.layers.Layer;
  for (;;) {
    const name = layer.getClassName();
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (layer.weights.length > 0 || inbound.length !== 1) break;
    if (name === 'Dropout') keep *= 1 - (layer.getConfig()['rate'] as number);
    else if (!['Flatten', 'Reshape', 'Permute'].includes(name)) break;
    layer = inbound[0] as tf.layers.Layer;
  }
  return 1 - keep;
}

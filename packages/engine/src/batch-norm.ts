/**
 * Keras' rule for frozen BatchNormalization: a BatchNormalization layer whose `trainable` is false runs
 * in inference mode, also while the model around it trains. It normalises with its moving mean and
 * variance and leaves them unchanged, so a frozen base stays exactly as it was (Keras 2.1+ and 3:
 * "setting `layer.trainable = False` on a BatchNormalization layer ... the layer will run in
 * inference mode", keras/src/layers/normalization/batch_normalization.py; the fine-tuning guide
 * keras.io/guides/transfer_learning explains why).
 *
 * tfjs (4.22) does not: its BatchNormalization follows the `training` flag of the call alone, so
 * training a model with a frozen base moved every frozen layer's moving statistics. This module puts
 * Keras' rule on tfjs' BatchNormalization class once per thread: every such layer, whether built here
 * (mobilenet-v2), loaded from a model.json or rebuilt in a helper thread, then follows it. It reads
 * `trainable` at each call, so unfreezing a layer makes it train normally again.
 *
 * A trainable layer in training mode runs on the wasm backend's batch-norm kernels where they
 * apply (batch-norm-train.ts), with tfjs-layers' result and moving-statistics update.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, canTrainBatchNorm } from './batch-norm-train.ts';

type Call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

/** The fields of tfjs-layers' BatchNormalization that its training-mode call reads. */
interface BatchNormLayer {
  trainable: boolean;
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma?: tf.LayerVariable;
  beta?: tf.LayerVariable;
  movingMean: tf.LayerVariable;
  movingVariance: tf.LayerVariable;
}

/**
 * tfjs-layers' training-mode call on our batch-norm kernels (batch-norm-train.ts) where they run:
 * channels-last, centred and scaled, wasm. Same result and moving-statistics update; null elsewhere.
 */
function trainOnKernels(layer: BatchNormLayer, inputs: tf.Tensor | tf.Tensor[]): tf.Tensor | null {
  const x = Array.isArray(inputs) ? inputs[0] : inputs;
  if (!x || !canTrainBatchNorm(x) || !layer.gamma || !layer.beta || !layer.center || !layer.scale)
    return null;
  if (layer.axis !== -1 && layer.axis !== x.rank - 1) return null;
  return tf.tidy(() => {
    const { y, mean, variance } = batchNormTraining(
      x,
      layer.gamma!.read(),
      layer.beta!.read(),
      layer.epsilon,
    );
    for (const [v, batch] of [
      [layer.movingMean, mean],
      [layer.movingVariance, variance],
    ] as const) {
      const old = v.read();
      v.write(tf.sub(old, tf.mul(tf.sub(old, batch), 1 - layer.momentum)));
    }
    tf.dispose([mean, variance]);
    return y;
  });
}

const MARK = Symbol.for('mlq.kerasBatchNormRule');

/** Puts Keras' rule on tfjs' BatchNormalization class (once per thread; importing this module does it). */
export function installKerasBatchNormRule(): void {
  const proto = Object.getPrototypeOf(tf.layers.batchNormalization({})) as {
    call: Call;
    trainable: boolean;
    [MARK]?: true;
  };
  if (proto[MARK]) return;
  const call = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    if (!this.trainable) return call.call(this, inputs, { ...kwargs, training: false });
    return (kwargs['training'] === true && trainOnKernels(this, inputs)) || call.call(this, inputs, kwargs);
  };
  proto[MARK] = true;
}

installKerasBatchNormRule();

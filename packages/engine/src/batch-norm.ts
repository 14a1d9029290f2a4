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
 */
import * as tf from '@tensorflow/tfjs';

type Call = (inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>) => tf.Tensor | tf.Tensor[];

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
  proto.call = function (this: { trainable: boolean }, inputs, kwargs) {
    return call.call(this, inputs, this.trainable ? kwargs : { ...kwargs, training: false });
  };
  proto[MARK] = true;
}

installKerasBatchNormRule();

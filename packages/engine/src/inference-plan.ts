/**
 * A Keras/tfjs layers model compiled for inference: the model's graph as a list of tfjs ops with the
 * usual inference-time fusions, the ones TensorFlow Lite's converter and PyTorch's
 * `torch.nn.utils.fusion.fuse_conv_bn_eval` make:
 * - a BatchNormalization right after a Conv2D or DepthwiseConv2D (channels last, linear activation,
 *   nothing else reading the convolution's output) is folded into the convolution's filter and bias.
 *   Per output channel c, with s = gamma / sqrt(movingVariance + epsilon):
 *   filter'[…, c] = filter[…, c] · s and bias'[c] = (bias[c] − movingMean[c]) · s + beta[c];
 * - a ReLU (no maximum or a maximum of 6) or an Activation('relu' | 'relu6') right after it becomes the
 *   fused kernel's activation, so one kernel call replaces three.
 * Every other layer runs as `layer.apply(x, { training: false })`, nested models as their own plan.
 *
 * The result equals `model.apply(x, { training: false })` up to float rounding (the folded weights are
 * computed once, in float32). The plan copies the weights it folds at compile time: compile again after
 * the model's weights change, and dispose it when done.
 */
import * as tf from '@tensorflow/tfjs';

/** A compiled model: `predict(x)` for inputs of the model's input shape, `[batch, ...]`. */
export interface InferencePlan {
  /** The model's output for `x` (`[batch, ...inputShape]`); the caller disposes it. Runs in its own tidy. */
  predict(x: tf.Tensor): tf.Tensor;
  /** How many BatchNormalization layers were folded and activations fused (for logs and tests). */
  readonly folded: { batchNorms: number; activations: number };
  /** Frees the folded weights. */
  dispose(): void;
}

type Layer = tf.layers.Layer;
type Sym = tf.SymbolicTensor;
interface Node {
  inputTensors: Sym[];
  outputTensors: Sym[];
}
interface Step {
  inputs: number[];
  output: number;
  run(xs: tf.Tensor[]): tf.Tensor;
}

const FUSABLE_ACTIVATIONS = new Set(['relu', 'relu6']);

/** The activation a ReLU or Activation layer applies, when a fused kernel can apply it instead. */
function fusableActivation(layer: Layer): 'relu' | 'relu6' | undefined {
  const c = layer.getConfig();
  if (layer.getClassName() === 'ReLU') {
    if (c['maxValue'] == null) return 'relu';
    return c['maxValue'] === 6 ? 'relu6' : undefined;
  }
  if (layer.getClassName() === 'Activation' && FUSABLE_ACTIVATIONS.has(String(c['activation'])))
    return c['activation'] as 'relu' | 'relu6';
  return undefined;
}

/** A Conv2D or DepthwiseConv2D whose output a BatchNormalization may be folded into. */
function foldableConv(layer: Layer): boolean {
  const name = layer.getClassName();
  if (name !== 'Conv2D' && name !== 'DepthwiseConv2D') return false;
  const c = layer.getConfig();
  return c['dataFormat'] !== 'channelsFirst' && (c['activation'] ?? 'linear') === 'linear';
}

/** A BatchNormalization over the last axis of a 4-D tensor. */
function lastAxisBatchNorm(layer: Layer): boolean {
  if (layer.getClassName() !== 'BatchNormalization') return false;
  const axis = layer.getConfig()['axis'];
  return axis === -1 || axis === 3;
}

const pair = (v: unknown): [number, number] => (Array.isArray(v) ? [v[0], v[1]] : [Number(v), Number(v)]);

/** The convolution with the BatchNormalization folded in, and `activation` fused. */
function foldedConv(
  conv: Layer,
  bn: Layer,
  activation: 'linear' | 'relu' | 'relu6',
): Step['run'] & {
  weights: tf.Tensor[];
} {
  const cc = conv.getConfig();
  const bc = bn.getConfig();
  const cw = conv.getWeights();
  const bw = bn.getWeights();
  const depthwise = conv.getClassName() === 'DepthwiseConv2D';
  const [filter, bias] = tf.tidy(() => {
    const kernel = cw[0]!;
    let i = 0;
    const outC = depthwise ? kernel.shape[2]! * kernel.shape[3]! : kernel.shape[3]!;
    const gamma = bc['scale'] === false ? tf.ones([outC]) : bw[i++]!;
    const beta = bc['center'] === false ? tf.zeros([outC]) : bw[i++]!;
    const [mean, variance] = [bw[i]!, bw[i + 1]!];
    const s = gamma.div(variance.add(Number(bc['epsilon'] ?? 1e-3)).sqrt());
    // A depthwise kernel [h, w, in, multiplier] has output channel in * multiplier + m.
    const scaled = depthwise ? kernel.mul(s.reshape([kernel.shape[2]!, kernel.shape[3]!])) : kernel.mul(s);
    const b0 = cc['useBias'] ? cw[1]! : tf.zeros([outC]);
    return [tf.keep(scaled), tf.keep(b0.sub(mean).mul(s).add(beta))];
  });
  const strides = pair(cc['strides']);
  const dilations = pair(cc['dilationRate'] ?? 1);
  const pad = cc['padding'] === 'same' ? 'same' : 'valid';
  // relu6 on XNNPACK's fused kernels measured as fast as our conv kernel's relu plus a clip.
  const run = ([x]: tf.Tensor[]): tf.Tensor => {
    const args = { x: x as tf.Tensor4D, bias, strides, pad, dilations, activation } as const;
    return depthwise
      ? tf.fused.depthwiseConv2d({ ...args, filter: filter as tf.Tensor4D })
      : tf.fused.conv2d({ ...args, filter: filter as tf.Tensor4D });
  };
  return Object.assign(run, { weights: [filter, bias] });
}

/**
 * Compiles `model` for inference.
 * @throws Error if the model's graph cannot be walked from its inputs (it never can for a model tfjs built).
 */
export function compileInference(model: tf.LayersModel): InferencePlan {
  const owned: tf.Tensor[] = [];
  const folded = { batchNorms: 0, activations: 0 };
  const steps = planSteps(model, owned, folded);
  return {
    folded,
    predict: (x) => tf.tidy(() => runSteps(model, steps, x)),
    dispose() {
      tf.dispose(owned);
      owned.length = 0;
    },
  };
}

/** Runs a (one-input, one-output) model's steps on `x`: its output. */
function runSteps(model: tf.LayersModel, steps: Step[], x: tf.Tensor): tf.Tensor {
  const values = new Map<number, tf.Tensor>([[model.inputs[0]!.id, x]]);
  for (const s of steps) values.set(s.output, s.run(s.inputs.map((id) => values.get(id)!)));
  return values.get(model.outputs[0]!.id)!;
}

/** The model's nodes in the order they run: each layer call whose inputs are all known by then. */
function walk(model: tf.LayersModel): { layer: Layer; node: Node }[] {
  const known = new Set(model.inputs.map((t) => t.id));
  const order: { layer: Layer; node: Node }[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    for (const node of layer.inboundNodes as unknown as Node[]) {
      const ins = node.inputTensors;
      if (!ins.every((t) => known.has(t.id)) || node.outputTensors.every((t) => known.has(t.id))) continue;
      order.push({ layer, node });
      for (const t of node.outputTensors) known.add(t.id);
    }
  }
  for (const t of model.outputs)
    if (!known.has(t.id)) throw new Error(`cannot compile ${model.name}: output ${t.name} is not reached`);
  return order;
}

function planSteps(model: tf.LayersModel, owned: tf.Tensor[], folded: InferencePlan['folded']): Step[] {
  if (model.inputs.length !== 1 || model.outputs.length !== 1)
    throw new Error(`cannot compile ${model.name}: only models with one input and one output`);
  const order = walk(model);
  const readers = new Map<number, number>();
  for (const { node } of order)
    for (const t of node.inputTensors) readers.set(t.id, (readers.get(t.id) ?? 0) + 1);
  for (const t of model.outputs) readers.set(t.id, (readers.get(t.id) ?? 0) + 1);
  /** The single node reading `id`, when exactly one does and the tensor is no model output. */
  const onlyReader = (id: number) => {
    if (readers.get(id) !== 1) return undefined;
    return order.find(({ node }) => node.inputTensors.some((t) => t.id === id));
  };

  const steps: Step[] = [];
  const skip = new Set<number>();
  order.forEach(({ layer, node }, i) => {
    if (skip.has(i)) return;
    const out = node.outputTensors[0]!;
    const inputs = node.inputTensors.map((t) => t.id);
    if (foldableConv(layer) && node.outputTensors.length === 1) {
      const bnCall = onlyReader(out.id);
      if (bnCall && lastAxisBatchNorm(bnCall.layer)) {
        const bnOut = bnCall.node.outputTensors[0]!;
        const actCall = onlyReader(bnOut.id);
        const activation = actCall ? fusableActivation(actCall.layer) : undefined;
        const last = activation ? actCall! : bnCall;
        const run = foldedConv(layer, bnCall.layer, activation ?? 'linear');
        owned.push(...run.weights);
        folded.batchNorms++;
        skip.add(order.indexOf(bnCall));
        if (activation) {
          folded.activations++;
          skip.add(order.indexOf(actCall!));
        }
        steps.push({ inputs, output: last.node.outputTensors[0]!.id, run });
        return;
      }
    }
    if (layer instanceof tf.LayersModel && layer.inputs.length === 1 && layer.outputs.length === 1) {
      const inner = planSteps(layer, owned, folded);
      steps.push({ inputs, output: out.id, run: ([x]) => runSteps(layer, inner, x!) });
      return;
    }
    if (node.outputTensors.length !== 1)
      throw new Error(`cannot compile ${model.name}: layer ${layer.name} has several outputs`);
    steps.push({
      inputs,
      output: out.id,
      run: (xs) => layer.apply(xs.length === 1 ? xs[0]! : xs, { training: false }) as tf.Tensor,
    });
  });
  return steps;
}

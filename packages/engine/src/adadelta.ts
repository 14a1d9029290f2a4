/**
 * Adadelta as Keras/TF and PyTorch compute it. tfjs 4.22's AdadeltaOptimizer divides by the
 * accumulated squared gradient *before* adding the current step's, so its first step is a plain SGD
 * step of size lr (1.0 in the Keras recipe), which blows a conv net up (loss ~12 after one epoch).
 */
import * as tf from '@tensorflow/tfjs';

/** A fused step that a backend may register (wasm-kernels.ts does); used where present. */
export const ADADELTA_KERNEL = 'MlqAdadelta';

/** tfjs does not export this type from its main entry. */
type NamedTensor = { name: string; tensor: tf.Tensor };

interface Slots {
  grad: tf.Variable;
  delta: tf.Variable;
}

export class KerasAdadelta extends tf.Optimizer {
  static readonly className = 'KerasAdadelta';
  private readonly slots = new Map<string, Slots>();

  private readonly lr: number;
  private readonly rho: number;
  private readonly eps: number;
  constructor(lr: number, rho = 0.95, eps = 1e-7) {
    super();
    this.lr = lr;
    this.rho = rho;
    this.eps = eps;
  }

  private slotOf(name: string, v: tf.Variable): Slots {
    let slot = this.slots.get(name);
    if (!slot) {
      slot = { grad: tf.zerosLike(v).variable(false), delta: tf.zerosLike(v).variable(false) };
      this.slots.set(name, slot);
    }
    return slot;
  }

  override applyGradients(grads: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const list = Array.isArray(grads) ? grads.map((g) => [g.name, g.tensor] as const) : Object.entries(grads);
    for (const [name, g] of list) {
      const v = tf.engine().registeredVariables[name];
      if (v === undefined) continue;
      const { grad, delta } = this.slotOf(name, v);
      if (v.dtype === 'float32' && tf.getKernel(ADADELTA_KERNEL, tf.getBackend()) !== undefined) {
        // One fused pass (wasm): the same arithmetic as below.
        const inputs = { v, g, accGrad: grad, accDelta: delta };
        const attrs = { lr: this.lr, rho: this.rho, eps: this.eps };
        const [nv, ng, nd] = tf.engine().runKernel(ADADELTA_KERNEL, inputs, attrs) as tf.Tensor[];
        v.assign(nv!);
        grad.assign(ng!);
        delta.assign(nd!);
        tf.dispose([nv!, ng!, nd!]);
        continue;
      }
      tf.tidy(() => {
        const accGrad = grad.mul(this.rho).add(g.square().mul(1 - this.rho));
        const update = delta.add(this.eps).sqrt().div(accGrad.add(this.eps).sqrt()).mul(g);
        delta.assign(delta.mul(this.rho).add(update.square().mul(1 - this.rho)));
        grad.assign(accGrad);
        v.assign(v.sub(update.mul(this.lr)));
      });
    }
    this.incrementIterations();
  }

  /** The accumulators, for checkpoints: `<variable>/accum_grad` and `<variable>/accum_delta`. */
  override async getWeights(): Promise<NamedTensor[]> {
    const out: NamedTensor[] = [await this.saveIterations()];
    for (const [name, s] of this.slots) {
      out.push(
        { name: `${name}/accum_grad`, tensor: s.grad },
        { name: `${name}/accum_delta`, tensor: s.delta },
      );
    }
    return out;
  }

  override async setWeights(weights: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weights);
    for (const { name, tensor } of rest) {
      const m = /^(.*)\/accum_(grad|delta)$/.exec(name);
      const v = m ? tf.engine().registeredVariables[m[1]!] : undefined;
      if (!m || !v) continue;
      const slot = this.slotOf(m[1]!, v);
      (m[2] === 'grad' ? slot.grad : slot.delta).assign(tensor);
    }
  }

  override dispose(): void {
    super.dispose();
    for (const s of this.slots.values()) tf.dispose([s.grad, s.delta]);
    this.slots.clear();
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.lr, rho: this.rho, epsilon: this.eps };
  }
}

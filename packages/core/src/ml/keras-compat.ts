/**
 * What differs only in spelling between the model.json files people bring and what tfjs 4 reads.
 * tfjs' layers format is Keras 2's model config; Keras 3 (and the tensorflowjs converter run under it)
 * writes the same graph with other words:
 *
 * - InputLayer `batch_shape` for Keras 2's `batch_input_shape` (keras/src/layers/core/input_layer.py);
 * - `dtype` as a DTypePolicy object `{"class_name": "DTypePolicy", "config": {"name": "float32"}}`
 *   for the plain dtype string (keras/src/dtype_policies/dtype_policy.py); a `mixed_*` policy keeps
 *   float32 variables;
 * - a Functional model's `inbound_nodes` as `[{"args": [...tensors], "kwargs": {}}]`, each tensor a
 *   `{"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, index]}}`, for Keras 2's
 *   `[[[layer, node, index, kwargs], ...]]`; and `input_layers` / `output_layers` as one
 *   `[layer, node, index]` triple when there is one (keras/src/models/functional.py).
 *
 * `kerasToTfjsTopology` rewrites those in place; anything else is left for tfjs to accept or refuse.
 */

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Keras 3's node references (tensors with a `keras_history`) in an `args` value, in order. */
function historyOf(v: unknown, out: unknown[][]): void {
  if (Array.isArray(v)) for (const x of v) historyOf(x, out);
  else if (isObj(v)) {
    const h = isObj(v.config) ? v.config.keras_history : undefined;
    if (v.class_name === '__keras_tensor__' && Array.isArray(h)) out.push([...h, {}]);
  }
}

/** A Keras 3 inbound node (`{"args", "kwargs"}`) as Keras 2's list of `[layer, node, index, kwargs]`. */
function inboundNode(node: unknown): unknown {
  if (!isObj(node) || !('args' in node)) return node;
  const refs: unknown[][] = [];
  historyOf(node.args, refs);
  return refs;
}

/** `[name, node, index]` alone → `[[name, node, index]]`. */
function tripleList(v: unknown): unknown {
  return Array.isArray(v) && typeof v[0] === 'string' ? [v] : v;
}

function dtypeName(d: unknown): unknown {
  if (!isObj(d) || !isObj(d.config) || typeof d.config.name !== 'string') return d;
  return d.config.name.startsWith('mixed_') ? 'float32' : d.config.name;
}

/** Rewrites one layer (or model) entry `{"class_name", "config"}` and everything inside it. */
function rewrite(entry: unknown): void {
  if (Array.isArray(entry)) return entry.forEach(rewrite);
  if (!isObj(entry)) return;
  const config = entry.config;
  if (isObj(config)) {
    if ('batch_shape' in config && !('batch_input_shape' in config)) {
      config.batch_input_shape = config.batch_shape;
      delete config.batch_shape;
    }
    if ('dtype' in config) config.dtype = dtypeName(config.dtype);
    if ('input_layers' in config) config.input_layers = tripleList(config.input_layers);
    if ('output_layers' in config) config.output_layers = tripleList(config.output_layers);
    if (Array.isArray(config.layers)) config.layers.forEach(rewrite);
  }
  if (Array.isArray(entry.inbound_nodes)) entry.inbound_nodes = entry.inbound_nodes.map(inboundNode);
}

/**
 * Rewrites a model.json `modelTopology` (Keras 2 or 3) in place into what tfjs reads. Returns it.
 * The topology is `{"class_name": "Sequential" | "Model" | "Functional", "config": ...}`, possibly
 * wrapped as `{"model_config": ..., "keras_version", "backend"}`.
 */
export function kerasToTfjsTopology(topology: unknown): unknown {
  const model = isObj(topology) && 'model_config' in topology ? topology.model_config : topology;
  if (isObj(model) && model.class_name === 'Functional') model.class_name = 'Model';
  rewrite(model);
  return topology;
}

/** The `batch_input_shape` arrays of a topology's layers (after `kerasToTfjsTopology`). */
export function inputShapesOf(topology: unknown): (number | null)[][] {
  const out: (number | null)[][] = [];
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!isObj(v)) return;
    if (isObj(v.config) && Array.isArray(v.config.batch_input_shape))
      out.push(v.config.batch_input_shape as (number | null)[]);
    if (isObj(v.config) && Array.isArray(v.config.layers)) visit(v.config.layers);
    if ('model_config' in v) visit(v.model_config);
  };
  visit(topology);
  return out;
}

/**
 * Gives a model whose one input has unknown (null) dimensions the concrete `shape` of the data (no
 * batch dimension), where every known dimension agrees: a null dimension matches any size, as in
 * Keras. The model then has a fixed input (and can be served). Returns whether it changed anything.
 */
export function fixUnknownInputDims(topology: unknown, shape: readonly number[]): boolean {
  const inputs = inputShapesOf(topology);
  if (inputs.length !== 1) return false;
  const dims = inputs[0]!;
  const rest = dims.slice(1);
  if (!rest.includes(null) || rest.length !== shape.length) return false;
  if (rest.some((d, i) => d !== null && d !== shape[i])) return false;
  dims.splice(1, rest.length, ...shape);
  return true;
}

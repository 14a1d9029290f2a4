/**
 * TensorFlow Serving's REST answers about models (its `GetModelStatus` and `GetModelMetadata` as the
 * REST API prints them): the model-status list and the signature metadata. A model here has one
 * signature, `serving_default`, whose input and output are the LayersModel's only input and output,
 * named after their layers, as a Keras model exported to TF Serving has.
 */
import type { ModelVersion, ModelVersionStatus, SignatureMetadata } from '@mlq/contract';
import type { ModelInfo } from './protocol.ts';
import { SIGNATURE_NAME } from './tensor-input.ts';

/** How a version stands for serving (TF Serving's ManagedState names: AVAILABLE, END, ...). */
export interface VersionState {
  state: 'AVAILABLE' | 'END';
  /** Why the version cannot be served (its last load failed); absent when it can. */
  error?: string;
}

/** TF Serving's `{"model_version_status": [...]}`, one entry per version given, in that order. */
export function modelVersionStatus(versions: { version: number; state: VersionState }[]): {
  model_version_status: ModelVersionStatus[];
} {
  return {
    model_version_status: versions.map(({ version, state }) => ({
      version: String(version),
      state: state.state,
      status: state.error
        ? { error_code: 'FAILED_PRECONDITION', error_message: state.error }
        : { error_code: 'OK', error_message: '' },
    })),
  };
}

/** TensorFlow's DataType enum name of a tfjs dtype. */
export function tfDataType(dtype: string): string {
  const names: Record<string, string> = {
    float32: 'DT_FLOAT',
    int32: 'DT_INT32',
    bool: 'DT_BOOL',
    string: 'DT_STRING',
    complex64: 'DT_COMPLEX64',
  };
  return names[dtype] ?? 'DT_INVALID';
}

/** A TensorInfo: dtype, shape with the batch dimension as -1 (sizes are strings, as int64s in proto JSON). */
function tensorInfo(name: string, dtype: string, shape: readonly number[]) {
  return {
    dtype: tfDataType(dtype),
    tensor_shape: {
      dim: [-1, ...shape].map((d) => ({ size: String(d), name: '' })),
      unknown_rank: false,
    },
    name: `${name}:0`,
  };
}

/** `GET /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata`: the model spec and its signature. */
export function signatureMetadata(v: ModelVersion, info: ModelInfo): SignatureMetadata {
  return {
    model_spec: { name: v.name, signature_name: '', version: String(v.version) },
    metadata: {
      signature_def: {
        signature_def: {
          [SIGNATURE_NAME]: {
            inputs: { [info.inputName]: tensorInfo(info.inputName, info.inputDtype, info.inputShape) },
            outputs: {
              [info.outputName]: tensorInfo(info.outputName, info.outputDtype, info.outputShape),
            },
            method_name: 'tensorflow/serving/predict',
          },
        },
      },
    },
  };
}

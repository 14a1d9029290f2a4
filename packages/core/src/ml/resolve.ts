import { isUri } from '@mlq/contract';
import type { ModelRegistry, ModelVersion } from '../registry/registry.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { loadModel, type LoadedModel, type LoadModelOptions } from './model-io.ts';

export interface ResolvedModel {
  ref: string;
  uri: string;
  /** The registry version, when the reference was a registry reference. */
  version?: ModelVersion;
}

/** Resolves a model reference (`name`, `name@3`, `name@label`, or a URI) to a model.json URI. */
export async function resolveModel(ref: string, registry: ModelRegistry): Promise<ResolvedModel> {
  if (isUri(ref)) return { ref, uri: ref };
  const version = await registry.resolve(ref);
  return { ref, uri: version.uri, version };
}

export async function resolveAndLoad(
  ref: string,
  registry: ModelRegistry,
  store: ArtifactStore,
  dataRoots: readonly string[],
  opts: LoadModelOptions = {},
): Promise<ResolvedModel & { loaded: LoadedModel }> {
  const r = await resolveModel(ref, registry);
  const loaded = await loadModel(r.uri, store, dataRoots, opts);
  if (r.version?.classNames && !loaded.meta.classNames) loaded.meta.classNames = r.version.classNames;
  return { ...r, loaded };
}

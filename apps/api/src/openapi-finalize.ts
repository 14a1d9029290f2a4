/**
 * The last step of building /openapi.json: every operation gets an operationId (kept when a route's
 * entry gives one), derived from its method and path so that it is stable: `GET /v1/jobs/{id}/logs`
 * → `getJobsByIdLogs`, `POST /v1/models/{name}:predict` → `postModelsByNamePredict`.
 */
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const words = (s: string) =>
  s
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map(cap)
    .join('');

/** `getJobsByIdLogs` for `get` `/v1/jobs/{id}/logs` (the API version segment is left out). */
export function operationIdOf(method: string, path: string): string {
  const parts = path
    .split('/')
    .filter((seg) => seg && !/^v\d+$/.test(seg))
    .map((seg) => seg.replace(/\{(\w+)\}/g, (_m, p: string) => `By${cap(p)}`))
    .map(words);
  return method + parts.join('');
}

/** Fills in operationIds, in place; returns the document. */
export function finalizeDocument<D extends { paths: Record<string, object> }>(doc: D): D {
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = (item as Record<string, { operationId?: string } | undefined>)[method];
      if (op && !op.operationId) op.operationId = operationIdOf(method, path);
    }
  }
  return doc;
}

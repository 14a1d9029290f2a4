/**
 * Which scope each route needs: one table, read top to bottom, the first matching rule wins. A route
 * no rule names needs `read` for GET/HEAD and `admin` for anything else, so a new route that changes
 * state is closed until someone gives it a lower scope here.
 */
import type { Scope } from './keys.ts';

/** `public`: no key needed, even with auth on. */
export type Requirement = Scope | 'public';

interface Rule {
  methods: readonly string[];
  path: RegExp;
  need: Requirement;
}

const rules: readonly Rule[] = [
  { methods: ['GET', 'HEAD'], path: /^\/(healthz|openapi\.json)$/, need: 'public' },
  // The Open Inference Protocol's probes, public as /healthz is (Kubernetes probes send no key).
  { methods: ['GET', 'HEAD'], path: /^\/v2\/health\/(live|ready)$/, need: 'public' },
  // Serving reads models, whatever its method: TF Serving's :predict, the Open Inference Protocol's /infer.
  { methods: ['POST'], path: /^\/v1\/models\/[^/]+(\/(versions|labels)\/[^/]+)?:predict$/, need: 'read' },
  { methods: ['POST'], path: /^\/v2\/models\/[^/]+(\/versions\/[^/]+)?\/infer$/, need: 'read' },
  // Jobs: submit, cancel, retry.
  { methods: ['POST'], path: /^\/v1\/jobs\/[^/]+(\/retry)?$/, need: 'submit' },
  { methods: ['DELETE'], path: /^\/v1\/jobs\/[^/]+$/, need: 'submit' },
  // Dataset uploads.
  { methods: ['POST', 'PUT'], path: /^\/v1\/datasets(\/|$)/, need: 'submit' },
  { methods: ['GET', 'HEAD'], path: /^\//, need: 'read' },
  // Everything else (model labels, deletes, Bull Board actions): admin.
];

/** The requirement of `method path` (path without the query string). */
export function requirementOf(method: string, path: string): Requirement {
  const m = method.toUpperCase();
  for (const r of rules) if (r.methods.includes(m) && r.path.test(path)) return r.need;
  return 'admin';
}

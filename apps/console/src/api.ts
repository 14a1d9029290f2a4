/**
 * The console's client of the API: the SDK over the page's own origin. The browser sends the session
 * cookie itself; an answer of 401 (the session expired or its key was removed) goes to the login page.
 */
import { MlqApiError, MlqClient } from '@mlq/sdk';

export const api = new MlqClient({
  baseUrl: location.origin,
  fetch: async (input, init) => {
    const res = await fetch(input, init);
    if (res.status === 401)
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    return res;
  },
});

/** A person-readable message for anything a call threw. */
export function errorText(e: unknown): string {
  if (e instanceof MlqApiError) {
    const details = Array.isArray(e.details)
      ? e.details.map((d) => `${d.field}: ${d.message}`).join('; ')
      : undefined;
    return details ? `${e.message} (${details})` : e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * `@mlq/core/remote`: data and model files from other machines — the egress policy for http(s)://
 * (SSRF defence), the worker's fetch cache of s3:// and http(s):// files, and the scheme dispatch
 * every job reads URIs through.
 */
export * from './egress.ts';
export * from './fetch-cache.ts';
export * from './resolve-uri.ts';

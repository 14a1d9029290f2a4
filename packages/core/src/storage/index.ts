/** `@mlq/core/storage`: the artifact store (file:// or s3://), its key layout, and data URIs. */
export * from './artifact-store.ts';
export * from './data-uri.ts';
export * from './file-store.ts';
export * from './install-claim.ts';
export * from './layout.ts';
export * from './s3-store.ts';
export * from './output-uri.ts';

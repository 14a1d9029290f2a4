/** `@mlq/core/data`: datasets as chunked sources (mnist, csv, jsonl, image folders). */
export * from './dataset.ts';
export * from './open.ts';
export * from './mnist.ts';
export * from './image-decode.ts';
export { csvColumns } from './csv.ts';

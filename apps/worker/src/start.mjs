// `pnpm start:worker` runs this file: it checks the Node version (scripts/require-node.mjs), then starts main.ts.
import { requireNode } from '../../../scripts/require-node.mjs';

requireNode('worker');
await import('./main.ts');

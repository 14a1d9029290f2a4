// What `pnpm start:api` and `pnpm start:worker` run first (apps/*/src/start.mjs): plain JavaScript, which any
// Node loads, where main.ts needs Node >= 22.18 to run TypeScript as is (type stripping). An older Node gets one
// line saying so, not ERR_UNKNOWN_FILE_EXTENSION.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Exits 1 with one line, naming `app`, when this Node cannot run the TypeScript entry points. */
export function requireNode(app) {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major > 22 || (major === 22 && minor >= 18)) return;
  // scripts/lib.sh (demo.sh, test.sh) brings Node 24 there when the machine's node is older.
  const fetched = path.resolve(
    path.dirname(fileURLToPath(import.meta.url)),
    '../.cache/node24/node_modules/node/bin',
  );
  const hint = existsSync(fetched)
    ? `use the Node 24 the scripts fetched: PATH=${fetched}:$PATH`
    : 'install Node 24 (or run scripts/demo.sh once: it fetches one into .cache/node24)';
  console.error(
    `${app}: Node ${process.versions.node} is too old: mlq needs Node >= 22.18 (24 recommended); ${hint}`,
  );
  process.exit(1);
}

#!/usr/bin/env node
// The CLI is TypeScript with erasable syntax only (tsconfig.base.json says so), which Node >= 22.18 runs as is
// (type stripping): the package needs no build step and no TypeScript loader at run time.
// An older Node cannot even load a .ts file (ERR_UNKNOWN_FILE_EXTENSION): this file is JavaScript to say so.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  console.error(
    `mlq: Node ${process.versions.node} is too old: mlq needs Node >= 22.18 (24 recommended), which runs its TypeScript as is`,
  );
  process.exit(1);
}
await import('../src/cli.ts');

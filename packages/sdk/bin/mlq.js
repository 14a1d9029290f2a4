#!/usr/bin/env node
// The CLI is TypeScript with erasable syntax only (tsconfig.base.json says so), which Node >= 22.18 runs as is
// (type stripping): the package needs no build step and no TypeScript loader at run time.
await import('../src/cli.ts');

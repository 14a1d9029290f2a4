import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const wasmDir = fileURLToPath(new URL('../wasm/', import.meta.url));
const hasClang =
  process.env['CC'] !== undefined ||
  (existsSync('/usr/lib') &&
    readdirSync('/usr/lib').some((d) => /^llvm-/.test(d) && existsSync(`/usr/lib/${d}/bin/clang`)));

describe('kernels.wasm', () => {
  // Installs use the committed binary; where a C toolchain exists, prove it is the source's.
  it.skipIf(!hasClang)('is what wasm/build.sh makes of kernels.c', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlq-kernels-'));
    try {
      const out = path.join(dir, 'kernels.wasm');
      const r = spawnSync('bash', [path.join(wasmDir, 'build.sh'), out], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(readFileSync(out).equals(readFileSync(path.join(wasmDir, 'kernels.wasm')))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs nothing from its host but memory it owns: no imports', async () => {
    const mod = await WebAssembly.compile(readFileSync(path.join(wasmDir, 'kernels.wasm')));
    expect(WebAssembly.Module.imports(mod)).toEqual([]);
    const names = WebAssembly.Module.exports(mod).map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining(['conv2d', 'conv2d_backprop_filter', 'matmul', 'max_pool_grad', 'adadelta']),
    );
  });
});

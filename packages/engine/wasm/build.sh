#!/usr/bin/env bash
# Rebuilds kernels.wasm from kernels.c (or writes it to $1). Needs clang and wasm-ld (Debian:
# clang-14 lld-14). The .wasm is committed, so installs never need a C toolchain; a test checks
# that it matches the source where clang is installed.
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")/kernels.wasm}")
cd "$(dirname "$0")"
# Debian's versioned clang finds wasm-ld next to itself in the LLVM directory.
CC=${CC:-$(ls /usr/lib/llvm-*/bin/clang 2>/dev/null | tail -1)}
CC=${CC:-clang}
"$CC" --target=wasm32 -O3 -msimd128 -mmutable-globals -nostdlib -fno-builtin \
  -Wl,--no-entry -Wl,--export-dynamic -Wl,--import-memory -Wl,--initial-memory=1048576 \
  -Wl,--export=__heap_base -Wl,--export=__stack_pointer \
  -Wl,-z,stack-size=65536 -Wl,--stack-first \
  -o "$OUT" kernels.c
echo "$OUT: $(wc -c < "$OUT") bytes"

#!/usr/bin/env bash
# Rebuilds both variants of the kernels from kernels.c: kernels.wasm (128-bit SIMD) and
# kernels-relaxed.wasm (plus relaxed SIMD: fused multiply-add), into this directory or into the
# directory $1. Needs clang and wasm-ld 16 or later (relaxed SIMD's final opcodes; Debian: clang-19
# lld-19). The .wasm files are committed, so installs never need a C toolchain; a test checks that
# they match the source where such a clang is installed.
set -euo pipefail
OUT=$(realpath -m "${1:-$(dirname "$0")}")
cd "$(dirname "$0")"
# Debian's versioned clang finds wasm-ld next to itself in the LLVM directory: take the newest.
CC=${CC:-$(ls -d /usr/lib/llvm-*/bin/clang 2>/dev/null | sort -V | tail -1)}
CC=${CC:-clang}
major=$("$CC" -dumpversion | cut -d. -f1)
if [ "$major" -lt 16 ]; then
  echo "build.sh: $CC is clang $major; relaxed SIMD needs clang 16 or later (Debian: clang-19 lld-19)" >&2
  exit 1
fi
build() {
  "$CC" --target=wasm32 -O3 -msimd128 "$@" -mmutable-globals -nostdlib -fno-builtin \
    -Wl,--no-entry -Wl,--export-dynamic -Wl,--import-memory -Wl,--initial-memory=1048576 \
    -Wl,--export=__heap_base -Wl,--export=__stack_pointer \
    -Wl,-z,stack-size=65536 -Wl,--stack-first \
    kernels.c
}
mkdir -p "$OUT"
build -o "$OUT/kernels.wasm"
build -mrelaxed-simd -o "$OUT/kernels-relaxed.wasm"
for f in kernels.wasm kernels-relaxed.wasm; do echo "$OUT/$f: $(wc -c < "$OUT/$f") bytes"; done

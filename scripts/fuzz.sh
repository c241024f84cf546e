#!/usr/bin/env bash
# Builds the libFuzzer harness for the addon's decode path and runs it for a
# few minutes (FUZZ_SECONDS, default 180). Not part of CI. Needs Debian's clang:
#   apt-get install clang
# Crashes land in build/fuzz/artifacts/; copy each into native/fuzz/regressions/
# and test/native/fuzz-regressions.test.ts replays it on every npm test.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang++ >/dev/null || { echo "clang++ not found: apt-get install clang" >&2; exit 1; }
[ -f build/Release/iaas.node ] || { echo "run npm ci first (it builds the addon and the seed generator)" >&2; exit 1; }

inc=$(node scripts/libvips-paths.cjs includeDir)
lib=$(node scripts/libvips-paths.cjs libDir)
ver=$(node scripts/libvips-paths.cjs vipsVersion)
out=build/fuzz
mkdir -p "$out/corpus" "$out/artifacts"

echo "== building $out/decode_fuzzer (ASan + UBSan + libFuzzer)"
clang++ -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -D_GLIBCXX_USE_CXX11_ABI=1 -I"$inc" -I"$inc/glib-2.0" -I"$lib/glib-2.0/include" \
  native/fuzz/decode_fuzzer.cc native/errors.cc native/sniff.cc native/quality.cc native/load.cc \
  native/deadline.cc native/geometry.cc native/gravity.cc native/animation.cc native/summary.cc native/pipeline.cc \
  native/save.cc native/strip.cc \
  -L"$lib" -l:libvips-cpp.so."$ver" -Wl,-rpath,"$(cd "$lib" && pwd)" -o "$out/decode_fuzzer"

echo "== seeding the corpus with small generated images"
node dist/scripts/fuzz-seeds.js "$out/corpus"
cp native/fuzz/regressions/* "$out/corpus/" 2>/dev/null || true

echo "== fuzzing for ${FUZZ_SECONDS:-180} s"
# leak detection off: libvips keeps process-wide caches that look like leaks at exit.
ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 "$out/decode_fuzzer" "$out/corpus" \
  -max_total_time="${FUZZ_SECONDS:-180}" -max_len=65536 -rss_limit_mb=4096 -timeout=10 \
  -artifact_prefix="$out/artifacts/" -print_final_stats=1

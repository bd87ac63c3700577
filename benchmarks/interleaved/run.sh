#!/usr/bin/env bash
# The launch's closest rows interleaved in one process (see
# launch_interleaved.c): builds it with cc against the C sources and runs
# k = 0, 100, 1000, 3000 and 10000,
# descending and in random order from 1000 up, after the machine's
# calibration (calibrate.c).
#
#   benchmarks/interleaved/run.sh [ROUNDS]      default 301 (101 left single
#                                               rows 5-15% off on a shared
#                                               machine; 301 take 20 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-301}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -O2 -Iinclude -Ibenchmarks/Sources/CLaunchBench/include \
    benchmarks/interleaved/launch_interleaved.c \
    benchmarks/Sources/CLaunchBench/launch_bench.c \
    Sources/CFDRemapKernel/*.c Sources/CFDRemapHost/*.c Sources/CArgdata/*.c \
    -lpthread -o "$tmp/launch_interleaved"
cc -std=c11 -O2 -Ibenchmarks/Sources/CRemapBench/include \
    benchmarks/interleaved/calibrate.c benchmarks/Sources/CRemapBench/remap_bench.c \
    -Iinclude Sources/CFDRemapKernel/*.c -lpthread -o "$tmp/calibrate"
"$tmp/calibrate"
for k in 0 100 1000 3000 10000; do
	"$tmp/launch_interleaved" "$k" "$rounds"
	[ "$k" -ge 1000 ] && "$tmp/launch_interleaved" "$k" "$rounds" random
done

#!/usr/bin/env bash
# Run FDRemap's benchmarks and write the results: benchmarks/results.md,
# benchmarks/scaling.svg, and the results part of benchmarks/RESULTS.md.
#
#   benchmarks/run.sh                      everything (about 20 minutes, and
#                                          the first release build), then the
#                                          interleaved launch harness
#   benchmarks/run.sh --filter 'Remap\.1M\..*'   any package-benchmark
#                                          options are passed through
#
#   benchmarks/run.sh --help               this text; builds and runs nothing
#
# The raw export stays in benchmarks/.results/ (not committed).
set -euo pipefail
for arg in "$@"; do
	case "$arg" in
	-h | --help)
		sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	esac
done
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/.results"
mkdir -p "$out"
rm -f "$out"/*.influx.csv

{
	echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpu:     $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores," \
	    "L2 $(lscpu | sed -n 's/^L2 cache: *//p'), L3 $(lscpu | sed -n 's/^L3 cache: *//p')"
	echo "memory:  $(free -g | awk '/^Mem:/ { print $2 " GiB" }')"
	echo "kernel:  $(uname -sr)"
	echo "THP:     $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
	echo "swift:   $(swift --version 2>/dev/null | head -1)"
	echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
} >"$out/machine.txt"

start=$(date +%s)
swift package --package-path "$here" --allow-writing-to-directory "$out" \
    benchmark --format influx --path "$out" --no-progress "$@"
# The launch's closest rows again, interleaved in one C process, with
# the sources in descending and in random order (a minute).
"$here/interleaved/run.sh" >"$out/interleaved.txt"
echo "run:     $(( ($(date +%s) - start) / 60 )) min; load $(cut -d' ' -f1-3 /proc/loadavg) at the end" \
    >>"$out/machine.txt"
python3 "$here/report.py" "$out"/*.influx.csv "$out/machine.txt" "$out/interleaved.txt"

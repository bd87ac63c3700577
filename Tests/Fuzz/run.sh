#!/usr/bin/env bash
# Build and run the libFuzzer targets: fuzz-kernel (exec copy-in and
# proc_exec against the core's invariants), fuzz-argdata (the decoder),
# fuzz-argdata-swift (Swift's decoding against the C library's reading),
# fuzz-fdrun (fdrun's YAML to argdata).
#
#   Tests/Fuzz/run.sh [SECONDS] [TARGET ...]     default: 60 s, all four
#
# Each target starts from its seed corpus in Tests/Fuzz/<target> (the
# argdata one for argdata-swift) and keeps
# what it finds in .build/fuzz/corpus-<target> (kept between runs; to add
# an input to the seeds, copy it into Tests/Fuzz/<target>).  A crash
# leaves its input in .build/fuzz/ and fails the run.
set -euo pipefail
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
fi
cd "$(dirname "$0")/../.."
seconds=${1:-60}
shift || true
if [ $# -eq 0 ]; then targets=(kernel argdata argdata-swift fdrun); else targets=("$@"); fi

for target in "${targets[@]}"; do
	swift build --scratch-path .build/fuzz --sanitize=fuzzer \
	    --sanitize=address --product "fuzz-$target" >/dev/null
	corpus=.build/fuzz/corpus-$target
	mkdir -p "$corpus"
	dict=()
	[ -f "Tests/Fuzz/$target.dict" ] && dict=(-dict="Tests/Fuzz/$target.dict")
	log=.build/fuzz/fuzz-$target.log
	if ! .build/fuzz/debug/fuzz-$target "${dict[@]}" \
	    -max_total_time="$seconds" -print_final_stats=1 \
	    -artifact_prefix=.build/fuzz/ "$corpus" "Tests/Fuzz/${target%-swift}" \
	    >"$log" 2>&1; then
		tail -50 "$log"
		echo "fuzz-$target: FAILED (input saved under .build/fuzz/)"
		exit 1
	fi
	echo "fuzz-$target: $(grep -E '^stat::number_of_executed_units' "$log" |
	    awk '{print $2}') executions in $seconds s, nothing found"
done

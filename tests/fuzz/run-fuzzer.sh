#!/bin/sh
# run-fuzzer.sh FUZZER SEED_DIR WORK_DIR [libFuzzer options...]
# Run one libFuzzer target for FUZZ_SECONDS (default 30) on a copy of its
# seed corpus (new inputs go to WORK_DIR, never to the source tree).  Exit
# 0 if it found nothing; otherwise 1, with the crashing input saved in
# WORK_DIR and printed in base64 (reproduce: FUZZER WORK_DIR/crash-...).
# meson registers one test per target (suite 'fuzz', -Dfuzz=true builds).
set -u
fuzzer=$1 seeds=$2 work=$3
shift 3
secs=${FUZZ_SECONDS:-30}
rm -rf "$work/corpus"
mkdir -p "$work/corpus" || exit 1
cp "$seeds"/* "$work/corpus/" || exit 1
# CPython's own allocations (never finalized here) are not our leaks
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(dirname "$0")/../lsan.supp:print_suppressions=0}
export LSAN_OPTIONS
"$fuzzer" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 \
	-artifact_prefix="$work/" -print_final_stats=1 "$@" "$work/corpus" \
	>"$work/fuzz.log" 2>&1
rc=$?
grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "$work/fuzz.log"
if [ $rc -ne 0 ]; then
	echo "$(basename "$fuzzer") failed (exit $rc); the end of $work/fuzz.log:"
	grep -v '^"' "$work/fuzz.log" | tail -60
	for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
		[ -f "$f" ] && { echo "input $f (base64):"; base64 "$f" | head -40; }
	done
	exit 1
fi
exit 0

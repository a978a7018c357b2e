#!/usr/bin/env bash
# tests/fuzz/run.sh <fuzz-bin-dir> <seconds> — for each <dir>/fuzz_<name> (libFuzzer binaries,
# built by `make fuzz-build`): replay the committed corpus tests/fuzz/corpus/<name>/, then fuzz
# for <seconds> seconds. New inputs go to a scratch corpus under <dir>/work/<name>/, never into the
# repository; crash/leak/timeout inputs are kept in <dir>/artifacts/<name>/ (add one to the
# corpus once fixed). A tests/fuzz/<name>.dict is used when present.
# Prints "ok - ..." / "FAIL - ..." per step and "N passed, N failed" last; exits 1 on any failure.
# FUZZ_JOBS=N runs N fuzzers' timed runs at once (default 1).
set -uo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 <fuzz-bin-dir> <seconds>" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$(cd "$1" 2>/dev/null && pwd) || { echo "FAIL - fuzz: no directory $1"; echo "0 passed, 1 failed"; exit 1; }
secs=$2
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# libFuzzer's per-input limits; the outer `timeout` is only a safety net.
common=(-timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

passed=0 failed=0
ok()   { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
show_log() { echo "---- last lines of $1"; tail -n 40 "$1" | sed 's/^/    /'; echo "----"; }

shopt -s nullglob
bins=("$dir"/fuzz_*)
if ((${#bins[@]} == 0)); then
	echo "# no fuzz_* binaries in $dir (tests/fuzz/fuzz_*.c not written yet?)"
fi
for bin in "${bins[@]}"; do
	[[ -x $bin && -f $bin ]] || continue
	name=${bin##*/fuzz_}
	corpus=$here/corpus/$name
	logs=$dir/logs/$name work=$dir/work/$name art=$dir/artifacts/$name
	mkdir -p "$logs" "$art"
	rm -rf "$work" && mkdir -p "$work"
	dict=()
	[[ -f $here/$name.dict ]] && dict=(-dict="$here/$name.dict")

	# 1. replay every committed input once (-runs=0: run the given inputs, nothing else)
	seeds=()
	if [[ -d $corpus ]] && [[ -n $(ls -A "$corpus") ]]; then
		seeds=("$corpus")
		n=$(find "$corpus" -type f | wc -l)
		if timeout -k 10 600 "$bin" "${common[@]}" -artifact_prefix="$art/" -runs=0 "$corpus" \
			>"$logs/replay.log" 2>&1; then
			ok "fuzz_$name: corpus replay ($n inputs)"
		else
			fail "fuzz_$name: corpus replay (exit $?; inputs that crash are named in the log)"
			show_log "$logs/replay.log"
		fi
	else
		echo "# fuzz_$name: no corpus at tests/fuzz/corpus/$name/ (replay skipped)"
	fi

	# 2. fuzz for $secs seconds from the corpus; new inputs land in $work only
	((secs > 0)) || continue
	if timeout -k 10 $((secs + 120)) "$bin" "${common[@]}" "${dict[@]}" -artifact_prefix="$art/" \
		-max_total_time="$secs" "$work" "${seeds[@]}" >"$logs/fuzz.log" 2>&1; then
		ok "fuzz_$name: ${secs}s fuzzing ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$logs/fuzz.log" | grep -o '[0-9]*$' || echo '?') execs)"
	else
		fail "fuzz_$name: ${secs}s fuzzing found a failure (exit $?); artifacts in $art/"
		show_log "$logs/fuzz.log"
	fi
done

echo "$passed passed, $failed failed"
((failed == 0))

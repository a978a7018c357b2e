#!/usr/bin/env bash
# tests/run-all.sh <build-dir> — the body of `make test` (which builds everything first).
# Runs each suite in order under a banner, streams its output, reads its own closing
# "N passed, N failed" line, and ends with one line "N passed, N failed" summing them all.
# A suite that exits non-zero without reporting a failure counts 1 failed (a crash, a
# sanitizer report at exit, a timeout). Exit status: 0 only if nothing failed.
#   FUZZ_SECONDS   seconds of fuzzing per fuzzer (default 10)
#   TEST_SUITES    space-separated subset of: unit unit-aarch64 asan-unit fuzz integration
#                  asan-integration system
set -uo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 <build-dir>" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 2
build=$1
[[ $build == /* ]] || build=$repo/$build
logdir=$build/test-logs
mkdir -p "$logdir"
fuzz_seconds=${FUZZ_SECONDS:-10}
suites=${TEST_SUITES:-unit unit-aarch64 asan-unit fuzz integration asan-integration system}

total_pass=0 total_fail=0
results=()
start_all=$SECONDS

# run_suite <name> <timeout-seconds> <command...>
run_suite() {
	local name=$1 limit=$2 log=$logdir/$1.log rc line p=0 f=0 t0=$SECONDS note=
	shift 2
	[[ " $suites " == *" $name "* ]] || return 0
	echo
	echo "==================== $name: $* ===================="
	timeout -k 30 "$limit" "$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^([A-Za-z_-]+: )?[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
	if [[ -n $line ]]; then
		[[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
		if ((rc != 0 && f == 0)); then
			f=1 note=" (exit $rc with no failing case reported: counted 1 failed)"
		fi
	elif ((rc == 0)); then
		p=1 note=" (no summary line; exit 0 counted 1 passed)"
	else
		f=1 note=" (no summary line; exit $rc counted 1 failed)"
	fi
	((rc == 124 || rc == 137)) && note+=" (timed out after ${limit}s)"
	total_pass=$((total_pass + p)) total_fail=$((total_fail + f))
	results+=("$(printf '%-18s %s passed, %s failed  [exit %s, %ss]%s' "$name" "$p" "$f" "$rc" $((SECONDS - t0)) "$note")")
}

skip_suite() {
	[[ " $suites " == *" $1 "* ]] || return 0
	echo
	echo "==================== $1: skipped ($2) ===================="
	results+=("$(printf '%-18s skipped: %s' "$1" "$2")")
}

# 1. unit tests (glibc debug build)
run_suite unit 900 "$build/host/unit_tests"

# 1b. the same unit tests built for the ARM64 board (static musl, aarch64) under qemu-user
run_suite unit-aarch64 1200 qemu-aarch64-static "$build/musl-aarch64/unit_tests"

# 2. the same unit tests under ASan + UBSan (leaks fail too)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
	run_suite asan-unit 1200 "$build/asan/unit_tests"

# 3. fuzz corpus replay + a short fuzz run per fuzzer
run_suite fuzz 1800 bash tests/fuzz/run.sh "$build/fuzz" "$fuzz_seconds"

# 4. integration tests: real S3 clients against the glibc daemon
# 5. a quick integration pass against the ASan+UBSan daemon
if [[ -f tests/integration/run.sh ]]; then
	SFS_BIN=$build/host/storagefsd run_suite integration 3600 bash tests/integration/run.sh all
	SFS_BIN=$build/asan/storagefsd run_suite asan-integration 1800 bash tests/integration/run.sh quick
else
	skip_suite integration "tests/integration/run.sh not present"
	skip_suite asan-integration "tests/integration/run.sh not present"
fi

# 6. system tests: boot the node image in QEMU (TCG) and drive it from outside
run_suite system 1800 bash tests/system/run.sh "$build"

echo
echo "==================== summary ($((SECONDS - start_all))s, logs in $logdir) ===================="
printf '%s\n' "${results[@]}"
echo "$total_pass passed, $total_fail failed"
((total_fail == 0))

#!/usr/bin/env bash
# tests/integration/run.sh [quick|all] — real S3 clients against a real storagefsd on 127.0.0.1.
#
#   SFS_BIN=build/host/storagefsd bash tests/integration/run.sh all     (~10 min on 2 cores)
#   SFS_BIN=build/asan/storagefsd bash tests/integration/run.sh quick   (< 2 min)
#
# For each test script, common.py's harness starts a fresh daemon (free port, two data dirs
# in a mktemp dir, random keys), waits for `ready listen=` in its log, runs the script, then
# SIGTERMs the daemon and checks exit status 0 and a log free of sanitizer reports.
# Scripts print `ok - name` / `FAIL - name: reason` per case; this runner counts them and
# prints `N passed, N failed` as its last line. Other env: SFS_ONLY="test_x.py ..." runs only
# those scripts, SFS_KEEP=1 keeps the temp dirs, SFS_VERBOSE=1 shows every script's stderr.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
mode=${1:-all}
PY=/usr/bin/python3

case $mode in
quick)
	tests=(test_boto3.py test_raw_http.py test_s3cmd.py test_rclone.py test_sigterm.py test_fault.py
		test_join.py test_provd.py test_metrics.py test_map.py test_cluster_api.py test_cluster_s3.py test_tls.py)
	per_test_timeout=150
	export SFS_QUICK=1
	;;
all)
	tests=(test_raw_http.py test_boto3.py test_s3api.py test_awscli.py test_s3cmd.py
		test_rclone.py test_sigterm.py test_fault.py test_replication.py test_join.py test_provd.py test_diskfull.py
		test_metrics.py test_map.py test_cluster_api.py test_cluster_s3.py test_cluster_repair.py
		test_cluster_grow.py test_tls.py test_cluster_netcut.py test_cluster_scale.py)
	per_test_timeout=600
	export SFS_QUICK=0
	;;
*)
	echo "usage: $0 [quick|all]" >&2
	exit 2
	;;
esac
if [[ -n ${SFS_ONLY:-} ]]; then
	read -r -a tests <<<"$SFS_ONLY"
fi

bin=${SFS_BIN:-build/host/storagefsd}
[[ $bin == /* ]] || bin=$repo/$bin
export SFS_BIN=$bin
# The provisioning tools of the same flavour (host or asan), beside the daemon.
export CAIRN_CONTROLLER=${CAIRN_CONTROLLER:-${bin%/*}/cairn-controller}
export CAIRN_NODECTL=${CAIRN_NODECTL:-${bin%/*}/cairn-nodectl}
export CAIRN_PROVD=${CAIRN_PROVD:-${bin%/*}/cairn-provd}
if [[ ! -x $bin ]]; then
	echo "FAIL - run.sh: daemon binary $bin not found (build it first)"
	echo "0 passed, 1 failed"
	exit 1
fi

# The clients, by absolute path (never a pyenv shim). ci/deps.sh installs them in CI.
need=()
[[ -x /usr/bin/aws ]] || need+=(awscli)
[[ -x /usr/bin/s3cmd ]] || need+=(s3cmd)
[[ -x /usr/bin/rclone ]] || need+=(rclone)
[[ -x /usr/bin/curl ]] || need+=(curl)
[[ -x $PY ]] && $PY -c 'import boto3' 2>/dev/null || need+=(python3 python3-boto3)
if ((${#need[@]})); then
	echo "# installing missing clients: ${need[*]}" >&2
	if [[ $(id -u) == 0 ]]; then
		apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
			{ apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
	fi
fi

passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
t_start=$SECONDS
for t in "${tests[@]}"; do
	echo "# === $t ($mode) ==="
	t0=$SECONDS
	$PY "$here/common.py" run "$here/$t" "$per_test_timeout" | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^FAIL - ' "$out")
	if ((rc != 0 && f == 0)); then
		echo "FAIL - $t: harness exited $rc without reporting a failed case"
		f=1
	fi
	if ((p + f == 0)); then
		echo "FAIL - $t: no test case ran"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	echo "# $t: $p passed, $f failed in $((SECONDS - t0))s"
done
echo "# integration ($mode) took $((SECONDS - t_start))s"
echo "$passed passed, $failed failed"
((failed == 0))

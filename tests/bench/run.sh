#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: storagefsd against nginx (GET), fio (PUT vs raw
# write+fsync) and its own idle RSS; then replication: R=3 vs R=1 on three data dirs of one
# filesystem, and the rebuild of an emptied disk against fio's read+write rate, with GET
# latency during it; then a 3-node cluster against one node, and its rebalance when a 4th
# node joins; all on loopback. Prints a ratio table with PASS/MISS per target and
# writes <build>/bench/results.txt. Benchmarks report: a MISS never fails.
#
# Usage: bash tests/bench/run.sh [BUILD_DIR]          (default: build)
# Env:   BENCH_SECONDS (per GET figure, split in two runs; default 10)  BENCH_PUT_SECONDS (PUT runs, default 5)
#        BENCH_REBUILD_GIB (data on the rebuilt disk, default 1; 0 skips the rebuild)
#        SFS_BIN / S3BENCH (binaries to use)   BENCH_KEEP=1 (keep data dirs afterwards)
#        BENCH_ONLY=replication (sections 5-6 only), rebuild (section 6 only) or cluster (7 only)
#        BENCH_CLUSTER_MIB (MiB in the cluster a 4th node joins, default 256; 0 skips the rebalance)
set -uo pipefail

BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "bench: no build dir ${1:-build}" >&2; exit 1; }
B=$BUILD/bench
GET_S=${BENCH_SECONDS:-10}
PUT_S=${BENCH_PUT_SECONDS:-5}
REBUILD_GIB=${BENCH_REBUILD_GIB:-1}
REBUILD_TIMEOUT=${BENCH_REBUILD_TIMEOUT:-900}
S3BENCH=${S3BENCH:-$BUILD/host/s3bench}
AK=benchaccesskey
SK=benchsecretkey0123456789
REGION=us-east-1
BUCKET=bench
RESULTS=$B/results.txt

# The static musl daemon is what ships, so it is the one measured when it has been built.
if [[ -z ${SFS_BIN:-} ]]; then
	if [[ -x $BUILD/musl/storagefsd ]]; then SFS_BIN=$BUILD/musl/storagefsd
	else SFS_BIN=$BUILD/host/storagefsd; fi
fi
# `make bench` only rebuilds the host flavour: a musl binary older than it is likely stale.
if [[ $SFS_BIN == "$BUILD/musl/storagefsd" && $BUILD/host/storagefsd -nt $SFS_BIN ]]; then
	echo "bench: warning: $SFS_BIN is older than build/host/storagefsd (make musl?)" >&2
fi

SFS_PID= NGINX_PID= LOAD_PID=
CL_PIDS=()
cleanup() {
	local p
	for p in "${CL_PIDS[@]}"; do
		[[ -n $p ]] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	[[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
	[[ -n $SFS_PID ]] && kill "$SFS_PID" 2>/dev/null && wait "$SFS_PID" 2>/dev/null
	[[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	# The data is a few GiB of throwaway objects; results.txt and the logs stay.
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$B/data" "$B/www" "$B/fio" "$B/nginx/tmp" "$B/repl" "$B/rebuild" "$B/cluster"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }
out() { echo "$*" | tee -a "$RESULTS"; }

for t in "$S3BENCH" nginx fio wrk python3; do
	command -v "$t" >/dev/null || [[ -x $t ]] || { log "missing $t (make deps; make host)"; exit 1; }
done

rm -rf "$B"
mkdir -p "$B/data" "$B/www/files" "$B/fio" "$B/nginx/tmp"
: >"$RESULTS"

# Two distinct free loopback ports, chosen by the kernel.
read -r SFS_PORT NGINX_PORT < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# field LINE KEY -> value of KEY=value in an s3bench summary line ("" if absent).
field() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
S3="--endpoint 127.0.0.1:$SFS_PORT --access-key $AK --secret-key $SK --region $REGION --bucket $BUCKET"
# want SECTION — BENCH_ONLY picks a subset: "" (all), replication (sections 5-6), rebuild (6).
want() {
	case ${BENCH_ONLY:-} in
	"") return 0 ;;
	replication) [[ $1 == replication || $1 == rebuild ]] ;;
	rebuild) [[ $1 == rebuild ]] ;;
	cluster) [[ $1 == cluster ]] ;;
	*) return 1 ;;
	esac
}
LOAD_MID=-

# sfs_start LOG FLAGS... — storagefsd on SFS_PORT (pid in SFS_PID); waits for its `ready`
# line. Returns 1 (daemon stopped, log tail shown) when it does not come up.
sfs_start() {
	local logf=$1
	shift
	"$SFS_BIN" --listen "127.0.0.1:$SFS_PORT" --access-key "$AK" --secret-key "$SK" \
		--region "$REGION" "$@" 2>"$logf" &
	SFS_PID=$!
	for _ in $(seq 300); do
		grep -q 'ready listen=' "$logf" 2>/dev/null && return 0
		kill -0 "$SFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "storagefsd did not become ready; log tail:"; tail -n 20 "$logf" >&2
	sfs_stop
	return 1
}
sfs_stop() {
	[[ -n $SFS_PID ]] || return 0
	kill "$SFS_PID" 2>/dev/null
	wait "$SFS_PID" 2>/dev/null
	SFS_PID=
}

# bench LABEL ARGS... — one s3bench run; the summary line goes to results (with LABEL) and
# to the variable named LABEL (a failed run leaves it empty, which the table shows as n/a).
bench() {
	local label=$1 line
	shift
	line=$("$S3BENCH" "$@" 2>>"$B/s3bench.err" | tail -n 1)
	out "$(printf '%-16s %s' "$label" "${line:-FAILED (see $B/s3bench.err)}")"
	printf -v "$label" '%s' "$line"
}

out "# Cairn storagefsd benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
out "# host: $(nproc) CPU ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r)"
out "# fs:   $(df -T "$B" | awk 'NR==2 {print $2, $1}')  dir=$B"
# Other work on the machine skews every figure; record it so a noisy table can be told apart.
LOAD=$(cut -d' ' -f1 /proc/loadavg)
out "# load: $LOAD (1-min average before the run)$(awk -v l="$LOAD" -v n="$(nproc)" 'BEGIN { if (l > n / 2) print "  WARNING: machine busy, ratios are noisy" }')"
out "# daemon: $SFS_BIN   client: $S3BENCH   GET 2 x $(awk -v s="$GET_S" 'BEGIN { printf "%g", s / 2 }')s per server and size, PUT ${PUT_S}s/run"
out ""

# mean2 NAME LINE_A LINE_B — NAME := the two runs' mean ops_s, MBps, p50/p99 and summed errors,
# in the summary-line format so the table reads it like a single run.
mean2() {
	local name=$1 a=$2 b=$3 k v r=
	[[ -n $a && -n $b ]] || { printf -v "$name" '%s' "${a:-$b}"; return; }
	for k in ops_s MBps p50_ms p99_ms; do
		v=$(awk -v x="$(field "$a" $k)" -v y="$(field "$b" $k)" -v f="$([[ $k == *_ms ]] && echo %.3f || echo %.1f)" \
			'BEGIN { printf f, (x + y) / 2 }')
		r+="$k=$v "
	done
	r+="errors=$(($(field "$a" errors) + $(field "$b" errors)))"
	printf -v "$name" '%s' "$r"
	out "$(printf '%-16s %s' "$name" "mean: $r")"
}

# fio: sequential write with an fsync after every block, the ceiling for a durable PUT. Run
# right before the PUTs it is compared with (the daemon idle), so both see the same disk
# weather. Time-based (rewriting the 256 MiB file) for as long as a PUT run: a lone 256 MiB
# pass takes well under a second on a fast virtual disk and measured anywhere from 115 to
# 785 MiB/s between runs.
fio_run() {	# bs -> "MiB/s iops"
	fio --name=w --rw=write --bs="$1" --size=256m --fsync=1 --directory="$B/fio" \
		--time_based --runtime="$PUT_S" --unlink=1 --output-format=json 2>>"$B/fio.err" | python3 -c '
import json, sys
w = json.load(sys.stdin)["jobs"][0]["write"]
print("%.1f %.1f" % (w["bw"] / 1024.0, w["iops"]))' 2>>"$B/fio.err"
}

if want base; then
	# --- 1. nginx serving the same bytes as the S3 objects (s3bench mkfiles == prepare) ---
	# Same sizes and counts as the S3 GET runs: 16 x 4 KiB, 16 x 1 MiB, 4 x 64 MiB.
	declare -A NOBJ=([4k]=16 [1m]=16 [64m]=4)
	declare -A GCONC=([4k]=16 [1m]=16 [64m]=4)
	# PUT concurrency sweep; 64 MiB stops at 4: 16 x 64 MiB in flight is 1 GiB, and draining it
	# after the deadline would dominate the run (and its runtime).
	declare -A PCONC=([4k]="1 4 16" [1m]="1 4 16" [64m]="1 2 4")
	for s in 4k 1m 64m; do
		"$S3BENCH" --op mkfiles --dir "$B/www/files" --size $s --objects ${NOBJ[$s]} >/dev/null ||
			{ log "mkfiles $s failed"; exit 1; }
	done
	cat >"$B/nginx.conf" <<EOF
# Written by tests/bench/run.sh: a plain static file server as the GET baseline.
daemon off;
worker_processes 1;
user root;
pid $B/nginx/nginx.pid;
error_log $B/nginx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	keepalive_timeout 120s;
	default_type application/octet-stream;
	client_body_temp_path $B/nginx/tmp/body;
	proxy_temp_path $B/nginx/tmp/proxy;
	fastcgi_temp_path $B/nginx/tmp/fastcgi;
	uwsgi_temp_path $B/nginx/tmp/uwsgi;
	scgi_temp_path $B/nginx/tmp/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $B/www;
	}
}
EOF
	nginx -p "$B" -c nginx.conf -e "$B/nginx/error.log" &
	NGINX_PID=$!
	for _ in $(seq 50); do
		curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/files/obj-4k-0" && break
		sleep 0.1
	done
	if ! curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/files/obj-4k-0"; then
		log "nginx did not come up; see $B/nginx/error.log"; exit 1
	fi

	# --- 2. storagefsd, with the same objects ---
	SFS_OK=0
	RSS_START= RSS_END=
	if [[ ! -x $SFS_BIN ]]; then
		log "no daemon at $SFS_BIN: storagefsd rows are n/a"
	elif sfs_start "$B/storagefsd.log" --data "$B/data"; then
		SFS_OK=1
		sleep 1		# let start-up work (store recovery, thread spawn) settle
		RSS_START=$(rss_kib "$SFS_PID")
	fi
	if ((SFS_OK)); then
		log "storagefsd prepare"
		for s in 4k 1m 64m; do
			bench "prep_$s" $S3 --op prepare --size $s --objects ${NOBJ[$s]} --concurrency 4
		done
	fi

	# --- 3. GETs, interleaved nginx / storagefsd / storagefsd / nginx ---
	# Each figure is the mean of two half-length runs placed symmetrically, so a drift in the
	# machine's background load (shared CI hosts) hits both servers alike.
	log "GETs: nginx vs storagefsd"
	LOAD_MID=$(cut -d' ' -f1 /proc/loadavg)
	HALF=$(awk -v s="$GET_S" 'BEGIN { printf "%g", s / 2 }')
	NG="--endpoint 127.0.0.1:$NGINX_PORT --plain-get --url-prefix /files/ --op get --duration $HALF"
	for s in 4k 1m 64m; do
		load="--size $s --concurrency ${GCONC[$s]} --objects ${NOBJ[$s]}"
		bench "ng_get_${s}_a" $NG $load
		if ((SFS_OK)); then
			bench "sfs_get_${s}_a" $S3 --op get $load --duration $HALF
			bench "sfs_get_${s}_b" $S3 --op get $load --duration $HALF
		fi
		bench "ng_get_${s}_b" $NG $load
		a="ng_get_${s}_a" b="ng_get_${s}_b"
		mean2 "ng_get_$s" "${!a}" "${!b}"
		if ((SFS_OK)); then
			a="sfs_get_${s}_a" b="sfs_get_${s}_b"
			mean2 "sfs_get_$s" "${!a}" "${!b}"
		fi
	done
	# Cross-check of our client against wrk, back to back on the figure most sensitive to
	# client overhead.
	WRK_RPS=$(wrk -t2 -c16 -d"${HALF}s" "http://127.0.0.1:$NGINX_PORT/files/obj-4k-0" 2>>"$B/wrk.err" |
		awk '/^Requests\/sec:/ {print $2}')
	out "wrk-nginx-4k     wrk -t2 -c16 -d${HALF}s Requests/sec=${WRK_RPS:-?}"
	bench ng_get_4k_c $NG --size 4k --concurrency 16 --objects 16
	kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; NGINX_PID=

	if ((SFS_OK)); then
		# One verified pass per size: the runs above only count bytes, this checks them.
		for s in 4k 1m 64m; do
			bench "sfs_verify_$s" $S3 --op get --size $s --concurrency 2 --objects ${NOBJ[$s]} --requests ${NOBJ[$s]} --verify
		done
	fi

	# --- 4. PUTs, each size right after the fio run it is compared with ---
	log "fio + PUTs"
	read -r FIO4K_MBPS FIO4K_IOPS < <(fio_run 4k)
	out "fio-4k           bs=4k fsync=1 MBps=${FIO4K_MBPS:-?} iops=${FIO4K_IOPS:-?}"
	for s in 4k 1m 64m; do
		if [[ $s == 1m ]]; then
			read -r FIO1M_MBPS FIO1M_IOPS < <(fio_run 1m)
			out "fio-1m           bs=1m fsync=1 MBps=${FIO1M_MBPS:-?} iops=${FIO1M_IOPS:-?}"
		fi
		((SFS_OK)) || continue
		for c in ${PCONC[$s]}; do
			bench "sfs_put_${s}_c$c" $S3 --op put --size $s --concurrency $c --objects 16 --duration $PUT_S
		done
	done
	if ((SFS_OK)); then
		# Same load without payload hashing: the gap to the signed run is the server's SHA-256.
		bench sfs_put_64m_unsigned $S3 --op put --size 64m --concurrency 2 --objects 16 --duration $PUT_S --unsigned
		sleep 2		# idle again: connections closed, workers parked
		RSS_END=$(rss_kib "$SFS_PID")
		kill -0 "$SFS_PID" 2>/dev/null || log "storagefsd died during the run; see $B/storagefsd.log"
	fi
	sfs_stop
	rm -rf "$B/data"
fi

# --- 5. replication cost: R=1 vs R=3 over three data dirs on this one filesystem ---
# Each configuration gets fresh dirs and its own daemon, scrubber off (it would read what the
# PUTs write). The headline R=3 runs with W=3, so that every acknowledged PUT has all three
# copies durable and the ratio is comparable with the physical limit (1/3 of the device's
# bandwidth for three copies); the default W=2 (third copy in the background) is shown too.
declare -A RCONF=([r1]="--replicas 1" [r3]="--replicas 3 --write-quorum 3" [r3w2]="--replicas 3")
REP_PCONC="4 16"
if [[ -x $SFS_BIN ]] && want replication; then
	for cf in r1 r3 r3w2; do
		log "replication: $cf (${RCONF[$cf]})"
		rm -rf "$B/repl"
		mkdir -p "$B/repl/d1" "$B/repl/d2" "$B/repl/d3"
		# shellcheck disable=SC2086
		sfs_start "$B/storagefsd-$cf.log" --data "$B/repl/d1" --data "$B/repl/d2" \
			--data "$B/repl/d3" --scrub-budget-pct 0 ${RCONF[$cf]} || continue
		bench "rep_prep_$cf" $S3 --op prepare --size 1m --objects 16 --concurrency 4
		for c in $REP_PCONC; do
			[[ $cf == r3w2 && $c != 16 ]] && continue	# info row: one run
			bench "rep_put_${cf}_c$c" $S3 --op put --size 1m --concurrency $c --objects 16 --duration $PUT_S
		done
		[[ $cf != r3w2 ]] && bench "rep_get_$cf" $S3 --op get --size 1m --concurrency 16 --objects 16 --duration $PUT_S
		sfs_stop
	done
	rm -rf "$B/repl"
fi

# --- 6. rebuild: one of three disks emptied (a replaced disk) while the daemon was down ---
# Fill an R=3 daemon on three dirs with REBUILD_GIB GiB of 1 MiB objects (plus 16 x 4 KiB for
# the latency probe), stop it, empty the first dir (the directory stays: a new disk mounted in
# the same slot), start again with --scrub-budget-pct 100 and time the rebuild from the first
# `store_rebuild_start` to `store_rebuild_done` (log timestamps; daemons that do not log the
# latter: the last disk's `store_scrub_pass_done`). The first disk is the one emptied because
# the scrubber walks the disks in order: its own walk then finds nothing, the other two copy
# everything to it, and the pass ends with the last copy (an emptied last disk would be
# walked again after it was filled). GET 4 KiB (c4) runs
# for exactly the rebuild (SIGUSR1 ends s3bench) and again, idle, right after it.
# The raw rate: fio reads one REBUILD_GIB file and writes another at the same time, 1 MiB
# blocks, fsync at the end (what a rebuild does: read a replica, write the new disk), timed
# by the wall clock; run with the daemon down, right before the rebuild.
log_ts() {	# LOG PATTERN N -> Unix time (s.ms) of the Nth line matching PATTERN, or ""
	local t
	t=$(grep -m "$3" -- "$2" "$1" 2>/dev/null | sed -n "$3s/^ts=\([^ ]*\) .*/\1/p")
	[[ -n $t ]] && date -d "$t" +%s.%3N
}
fio_copy() {	# bytes -> "MiB/s seconds"
	local n=$1 t0 t1
	fio --name=lay --rw=write --bs=1m --size="$n" --filename="$B/fio/src" --end_fsync=1 \
		--output-format=terse >/dev/null 2>>"$B/fio.err" || return 0
	t0=$(date +%s.%N)
	fio --bs=1m --size="$n" --name=r --rw=read --filename="$B/fio/src" \
		--name=w --rw=write --filename="$B/fio/dst" --end_fsync=1 \
		--output-format=json >"$B/fio-copy.json" 2>>"$B/fio.err" || return 0
	t1=$(date +%s.%N)
	rm -f "$B/fio/src" "$B/fio/dst"
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f %.2f", n / 1048576 / (b - a), b - a }'
}
RB=$B/rebuild
RB_S3="--endpoint 127.0.0.1:$SFS_PORT --access-key $AK --secret-key $SK --region $REGION --bucket rebuild"
RB_DIRS=(--data "$RB/d1" --data "$RB/d2" --data "$RB/d3")
RB_SECS= RB_BYTES= RB_MBPS= FIOCP_MBPS= FIOCP_SECS= rb_get_during= rb_get_idle=
if [[ -x $SFS_BIN ]] && ((REBUILD_GIB > 0)) && want rebuild; then
	log "rebuild: filling $REBUILD_GIB GiB at R=3"
	mkdir -p "$RB/d1" "$RB/d2" "$RB/d3"
	if sfs_start "$B/storagefsd-fill.log" "${RB_DIRS[@]}" --replicas 3 --scrub-budget-pct 0; then
		bench rb_prep_4k $RB_S3 --op prepare --size 4k --objects 16 --concurrency 4
		bench rb_prep_1m $RB_S3 --op prepare --size 1m --objects $((REBUILD_GIB * 1024)) --concurrency 4
		sfs_stop
		# A new disk: the old files are moved aside and deleted after the rebuild, so ext4 is
		# not still busy with ~1000 just-freed inodes while the rebuild creates files.
		mv "$RB/d1" "$RB/d1.old" && mkdir "$RB/d1"
		log "rebuild: fio read+write of $REBUILD_GIB GiB"
		read -r FIOCP_MBPS FIOCP_SECS < <(fio_copy $((REBUILD_GIB << 30)))
		out "fio-copy         read+write bs=1m size=${REBUILD_GIB}g end_fsync=1 MBps=${FIOCP_MBPS:-?} secs=${FIOCP_SECS:-?}"
		log "rebuild: start with --scrub-budget-pct 100"
		if sfs_start "$B/storagefsd-rebuild.log" "${RB_DIRS[@]}" --replicas 3 --scrub-budget-pct 100; then
			RBLOG=$B/storagefsd-rebuild.log
			for _ in $(seq 300); do
				grep -q store_rebuild_start "$RBLOG" && break
				sleep 0.1
			done
			"$S3BENCH" $RB_S3 --op get --size 4k --concurrency 4 --objects 16 \
				--duration "$REBUILD_TIMEOUT" >"$B/rebuild-get.out" 2>>"$B/s3bench.err" &
			LOAD_PID=$!
			for _ in $(seq $((REBUILD_TIMEOUT * 10))); do
				grep -q store_rebuild_done "$RBLOG" && break
				(($(grep -c store_scrub_pass_done "$RBLOG") >= 3)) && break
				kill -0 "$SFS_PID" 2>/dev/null || break
				sleep 0.1
			done
			kill -USR1 "$LOAD_PID" 2>/dev/null
			wait "$LOAD_PID" 2>/dev/null
			LOAD_PID=
			rb_get_during=$(tail -n 1 "$B/rebuild-get.out")
			out "$(printf '%-16s %s' rb_get_during "${rb_get_during:-FAILED (see $B/s3bench.err)}")"
			t0=$(log_ts "$RBLOG" store_rebuild_start 1) t1=$(log_ts "$RBLOG" store_rebuild_done 1)
			[[ -n $t1 ]] || t1=$(log_ts "$RBLOG" store_scrub_pass_done 3)
			RB_BYTES=$(du -sb "$RB/d1" | cut -f1)
			if [[ -n $t0 && -n $t1 ]]; then
				RB_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
				RB_MBPS=$(awk -v n="$RB_BYTES" -v s="$RB_SECS" 'BEGIN { if (s > 0) printf "%.1f", n / 1048576 / s }')
			else
				log "rebuild did not finish within ${REBUILD_TIMEOUT}s; see $RBLOG"
			fi
			RB_FILES=$(find "$RB/d1/data" -type f 2>/dev/null | wc -l)
			RB_FIXED=$(grep store_scrub_pass_done "$RBLOG" | grep -o 'repaired=[0-9]*' |
				awk -F= '{ s += $2 } END { print s + 0 }')
			out "rebuild          bytes=$RB_BYTES secs=${RB_SECS:-?} MBps=${RB_MBPS:-?} repaired=$RB_FIXED data_files=$RB_FILES of $((REBUILD_GIB * 1024))"
			bench rb_get_idle $RB_S3 --op get --size 4k --concurrency 4 --objects 16 --duration $PUT_S
			bench rb_verify $RB_S3 --op get --size 1m --concurrency 4 --objects $((REBUILD_GIB * 1024)) --requests $((REBUILD_GIB * 1024)) --verify
			sfs_stop
		fi
		rm -rf "$RB/d1.old"
	fi
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$RB"
fi

# --- 7. cluster: three nodes on loopback against one node; rebalance after a 4th joins ---
# Identities and maps come from tests/bench/cluster.py (openssl test CA, map R=3 W=2 written by
# hand, no controller: a node reads map.json at start). One data dir per node, all on this
# filesystem like the single node's; --cluster-repair-s 0 for the throughput runs (a pass
# would compete with them), --scrub-budget-pct 0 everywhere. Throughput: the single node
# (--replicas 1, one dir) and the cluster, each through its one S3 endpoint (node 1), PUT and
# GET 1 MiB and 4 KiB at c16, BENCH_PUT_SECONDS each. Rebalance: a fresh 3-node cluster
# filled with BENCH_CLUSTER_MIB 1 MiB objects via node 1, every node stopped, the map
# rewritten with a 4th node (version 2), all four started with --cluster-repair-s 1, and the
# time from the last `ready` until every key is held by exactly its 3 owners (cluster.py
# placed, polled each second); moved = the bytes node 4 then holds (du -sb of its dir).
CL=$B/cluster
CL_MIB=${BENCH_CLUSTER_MIB:-256}
CL_TIMEOUT=${BENCH_CLUSTER_TIMEOUT:-300}
CLPY="python3 $(dirname "${BASH_SOURCE[0]}")/cluster.py"
cl_start() {	# K LOG FLAGS... — cluster node K (S3 on CL_S3[K]); waits for `ready`
	local k=$1 logf=$2
	shift 2
	"$SFS_BIN" --listen "127.0.0.1:${CL_S3[$k]}" --access-key "$AK" --secret-key "$SK" \
		--region "$REGION" --data "$CL/node$k/data" --cluster "$CL/node$k/cluster" \
		--internal-listen "127.0.0.1:${CL_IN[$k]}" --scrub-budget-pct 0 "$@" 2>"$logf" &
	CL_PIDS[$k]=$!
	for _ in $(seq 300); do
		grep -q 'ready listen=' "$logf" 2>/dev/null && return 0
		kill -0 "${CL_PIDS[$k]}" 2>/dev/null || break
		sleep 0.1
	done
	log "cluster node $k did not become ready; log tail:"; tail -n 20 "$logf" >&2
	return 1
}
cl_stop() {
	local k
	for k in "${!CL_PIDS[@]}"; do
		kill "${CL_PIDS[$k]}" 2>/dev/null
		wait "${CL_PIDS[$k]}" 2>/dev/null
	done
	CL_PIDS=()
}
# cl_load PREFIX S3ARGS — the four throughput runs of one configuration
cl_load() {
	local pre=$1
	shift
	bench "${pre}_prep_1m" "$@" --op prepare --size 1m --objects 16 --concurrency 4
	bench "${pre}_prep_4k" "$@" --op prepare --size 4k --objects 16 --concurrency 4
	bench "${pre}_put_1m" "$@" --op put --size 1m --concurrency 16 --objects 16 --duration $PUT_S
	bench "${pre}_get_1m" "$@" --op get --size 1m --concurrency 16 --objects 16 --duration $PUT_S
	bench "${pre}_put_4k" "$@" --op put --size 4k --concurrency 16 --objects 16 --duration $PUT_S
	bench "${pre}_get_4k" "$@" --op get --size 4k --concurrency 16 --objects 16 --duration $PUT_S
}
CL_SECS= CL_MOVED= CL_MBPS= CL_KEYS= CL_PUSHED=
if [[ -x $SFS_BIN ]] && want cluster; then
	rm -rf "$CL"
	mkdir -p "$CL/single"
	read -r -a CL_PORTS < <(python3 -c '
import socket
s = [socket.socket() for _ in range(8)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
	CL_S3=([1]=${CL_PORTS[0]} [2]=${CL_PORTS[1]} [3]=${CL_PORTS[2]} [4]=${CL_PORTS[3]})
	CL_IN=([1]=${CL_PORTS[4]} [2]=${CL_PORTS[5]} [3]=${CL_PORTS[6]} [4]=${CL_PORTS[7]})
	CL_S3ARGS="--endpoint 127.0.0.1:${CL_S3[1]} --access-key $AK --secret-key $SK --region $REGION"
	log "cluster: single node"
	if sfs_start "$B/storagefsd-single.log" --data "$CL/single" --replicas 1 --scrub-budget-pct 0; then
		cl_load cl_single $S3
		sfs_stop
	fi
	rm -rf "$CL/single"
	log "cluster: three nodes"
	if $CLPY setup "$CL" 4 >/dev/null 2>>"$B/cluster.err" &&
		$CLPY map "$CL" 1 "${CL_IN[1]}" "${CL_IN[2]}" "${CL_IN[3]}" 2>>"$B/cluster.err"; then
		ok=1
		for k in 1 2 3; do
			mkdir -p "$CL/node$k/data"
			cl_start $k "$B/storagefsd-cl$k.log" --cluster-repair-s 0 || ok=0
		done
		((ok)) && cl_load cl_three $CL_S3ARGS --bucket $BUCKET
		cl_stop
		if ((ok && CL_MIB > 0)); then
			log "cluster: rebalance of $CL_MIB MiB after node 4 joins"
			rm -rf "$CL"/node*/data
			for k in 1 2 3; do
				mkdir -p "$CL/node$k/data"
				cl_start $k "$B/storagefsd-fill$k.log" --cluster-repair-s 0 || ok=0
			done
			((ok)) && bench cl_fill $CL_S3ARGS --bucket rebal --op prepare --size 1m --objects "$CL_MIB" --concurrency 4
			cl_stop
			sleep 1
			$CLPY map "$CL" 2 "${CL_IN[1]}" "${CL_IN[2]}" "${CL_IN[3]}" "${CL_IN[4]}" 2>>"$B/cluster.err" || ok=0
			mkdir -p "$CL/node4/data"
			for k in 1 2 3 4; do
				((ok)) && { cl_start $k "$B/storagefsd-rebal$k.log" --cluster-repair-s 1 || ok=0; }
			done
			t0=$(date +%s.%N)
			placed=
			while ((ok)); do
				placed=$($CLPY placed "$CL" rebal "${CL_IN[1]}" "${CL_IN[2]}" "${CL_IN[3]}" "${CL_IN[4]}" 2>>"$B/cluster.err")
				[[ $placed == misplaced=0\ * ]] && break
				awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$CL_TIMEOUT" 'BEGIN { exit !(b - a > m) }' && break
				sleep 1
			done
			t1=$(date +%s.%N)
			out "cl_rebalance     $placed after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
			if [[ $placed == misplaced=0\ * ]]; then
				CL_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
				CL_MOVED=$(du -sb "$CL/node4/data" | cut -f1)
				CL_MBPS=$(awk -v n="$CL_MOVED" -v s="$CL_SECS" 'BEGIN { if (s > 0) printf "%.1f", n / 1048576 / s }')
				CL_KEYS=$(sed -n 's/.*keys=\([0-9]*\).*/\1/p' <<<"$placed")
			else
				log "rebalance did not finish within ${CL_TIMEOUT}s; see $B/storagefsd-rebal*.log"
			fi
			# What the passes did: pushes and drops per node, bytes pushed in all (a key that
			# moves can be pushed by each of its old holders).
			CL_PUSHED=0
			for k in 1 2 3 4; do
				sums=$(grep cluster_repair_pass "$B/storagefsd-rebal$k.log" | awk '{
					for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] ~ /^(pushed|dropped|bytes)$/) t[kv[1]] += kv[2] }
				} END { printf "%d %d %d", t["pushed"], t["dropped"], t["bytes"] }')
				read -r p d by <<<"$sums"
				out "$(printf '%-16s node %d: pushed=%s dropped=%s bytes=%s' cl_rebal_passes "$k" "$p" "$d" "$by")"
				CL_PUSHED=$((CL_PUSHED + ${by:-0}))
			done
			bench cl_rebal_verify $CL_S3ARGS --bucket rebal --op get --size 1m --concurrency 4 --objects "$CL_MIB" --requests "$CL_MIB" --verify
			cl_stop
		fi
	else
		log "cluster: identities or map failed; see $B/cluster.err"
	fi
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$CL"
fi

# --- 8. the table ---
# ratio A B -> A/B with 2 decimals, or n/a
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() {	# ratio target -> PASS/MISS/n/a
	awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else print (r + 0 >= t + 0) ? "PASS" : "MISS" }'
}
verdict_le() {	# ratio limit -> PASS when ratio <= limit
	awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else print (r + 0 <= t + 0) ? "PASS" : "MISS" }'
}
best_of() {	# key run... -> best value of key over the runs named
	local k=$1 n v best=
	shift
	for n in "$@"; do
		v=$(field "${!n:-}" "$k")
		[[ -n $v ]] && { [[ -z $best ]] || awk -v a="$v" -v b="$best" 'BEGIN{exit !(a>b)}'; } && best=$v
	done
	echo "$best"
}
best_put() {	# size key -> best value of key over the concurrency sweep
	local s=$1 k=$2 c v best=
	for c in ${PCONC[$s]}; do
		local n="sfs_put_${s}_c$c"
		v=$(field "${!n:-}" "$k")
		[[ -n $v ]] && { [[ -z $best ]] || awk -v a="$v" -v b="$best" 'BEGIN{exit !(a>b)}'; } && best=$v
	done
	echo "$best"
}
row() { out "$(printf '%-34s %12s %12s %7s %8s %s' "$@")"; }

if want base; then
	out ""
	out "== storagefsd vs baselines (loopback, $(nproc) CPU; MBps = MiB/s) =="
	row "measure" "storagefsd" "baseline" "ratio" "target" "verdict"
	for s in 4k 1m 64m; do
		a="sfs_get_$s" n="ng_get_$s"
		key=MBps; [[ $s == 4k ]] && key=ops_s
		sv=$(field "${!a:-}" $key) nv=$(field "${!n:-}" $key)
		r=$(ratio "$sv" "$nv")
		case $s in
		4k) row "GET 4 KiB ops/s (c16) vs nginx" "${sv:-n/a}" "${nv:-n/a}" "$r" ">=0.70" "$(verdict "$r" 0.70)" ;;
		1m) row "GET 1 MiB MBps (c16) vs nginx" "${sv:-n/a}" "${nv:-n/a}" "$r" ">=0.90" "$(verdict "$r" 0.90)" ;;
		64m) row "GET 64 MiB MBps (c4) vs nginx" "${sv:-n/a}" "${nv:-n/a}" "$r" "-" "info" ;;
		esac
	done
	for s in 4k 1m 64m; do
		a="sfs_get_$s" n="ng_get_$s"
		row "  p99 ms GET $s (sfs / nginx)" "$(field "${!a:-}" p99_ms)" "$(field "${!n:-}" p99_ms)" "" "-" "info"
	done
	p4=$(best_put 4k ops_s); p1=$(best_put 1m MBps); p64=$(best_put 64m MBps)
	r=$(ratio "$p4" "${FIO4K_IOPS:-}")
	row "PUT 4 KiB ops/s (best c) vs fio 4k" "${p4:-n/a}" "${FIO4K_IOPS:-n/a}" "$r" "-" "info"
	r=$(ratio "$p1" "${FIO1M_MBPS:-}")
	row "PUT 1 MiB MBps (best c) vs fio 1m" "${p1:-n/a}" "${FIO1M_MBPS:-n/a}" "$r" ">=0.80" "$(verdict "$r" 0.80)"
	r=$(ratio "$p64" "${FIO1M_MBPS:-}")
	row "PUT 64 MiB MBps (best c) vs fio 1m" "${p64:-n/a}" "${FIO1M_MBPS:-n/a}" "$r" ">=0.80" "$(verdict "$r" 0.80)"
	un=$(field "${sfs_put_64m_unsigned:-}" MBps)
	row "  PUT 64 MiB MBps UNSIGNED (c2)" "${un:-n/a}" "${FIO1M_MBPS:-n/a}" "$(ratio "$un" "${FIO1M_MBPS:-}")" "-" "info"
	c1=$(field "${sfs_put_1m_c1:-}" MBps)
	row "  PUT 1 MiB MBps (c1) vs fio 1m" "${c1:-n/a}" "${FIO1M_MBPS:-n/a}" "$(ratio "$c1" "${FIO1M_MBPS:-}")" "-" "info"
	rs=$(awk -v k="${RSS_START:-}" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }')
	re=$(awk -v k="${RSS_END:-}" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }')
	row "idle RSS MiB at start" "$rs" "16" "" "<=16" "$(awk -v v="$rs" 'BEGIN { if (v == "n/a") print "n/a"; else print (v + 0 <= 16) ? "PASS" : "MISS" }')"
	row "idle RSS MiB after the run" "$re" "16" "" "<=16" "$(awk -v v="$re" 'BEGIN { if (v == "n/a") print "n/a"; else print (v + 0 <= 16) ? "PASS" : "MISS" }')"
	ngs=$(field "${ng_get_4k_c:-}" ops_s)
	row "client check: s3bench/wrk nginx 4k" "${ngs:-n/a}" "${WRK_RPS:-n/a}" "$(ratio "$ngs" "${WRK_RPS:-}")" ">=0.9" "info"

fi
if want replication || want rebuild; then
out ""
out "== replication: 3 data dirs on one filesystem; rebuild of ${REBUILD_GIB} GiB vs fio =="
row "measure" "storagefsd" "baseline" "ratio" "target" "verdict"
p1=$(best_of MBps rep_put_r1_c4 rep_put_r1_c16) p3=$(best_of MBps rep_put_r3_c4 rep_put_r3_c16)
r=$(ratio "$p3" "$p1")
row "PUT 1 MiB MBps R=3/W=3 vs R=1" "${p3:-n/a}" "${p1:-n/a}" "$r" ">=0.30" "$(verdict "$r" 0.30)"
pw=$(field "${rep_put_r3w2_c16:-}" MBps)
row "  PUT 1 MiB R=3/W=2 (c16) vs R=1" "${pw:-n/a}" "${p1:-n/a}" "$(ratio "$pw" "$p1")" "-" "info"
g1=$(field "${rep_get_r1:-}" MBps) g3=$(field "${rep_get_r3:-}" MBps)
row "GET 1 MiB MBps R=3 vs R=1 (c16)" "${g3:-n/a}" "${g1:-n/a}" "$(ratio "$g3" "$g1")" "-" "info"
r=$(ratio "${RB_MBPS:-}" "${FIOCP_MBPS:-}")
row "rebuild MBps vs fio read+write" "${RB_MBPS:-n/a}" "${FIOCP_MBPS:-n/a}" "$r" ">=0.80" "$(verdict "$r" 0.80)"
row "  rebuild seconds (fio seconds)" "${RB_SECS:-n/a}" "${FIOCP_SECS:-n/a}" "" "-" "info"
pd=$(field "${rb_get_during:-}" p99_ms) pi=$(field "${rb_get_idle:-}" p99_ms)
r=$(ratio "$pd" "$pi")
row "GET 4k p99 ms in rebuild vs idle" "${pd:-n/a}" "${pi:-n/a}" "$r" "<=2.0" "$(verdict_le "$r" 2.0)"
row "  GET 4k ops/s in rebuild vs idle" "$(field "${rb_get_during:-}" ops_s)" "$(field "${rb_get_idle:-}" ops_s)" \
	"$(ratio "$(field "${rb_get_during:-}" ops_s)" "$(field "${rb_get_idle:-}" ops_s)")" "-" "info"
fi
if want cluster; then
	out ""
	out "== cluster: 3 nodes R=3 W=2 on loopback (one S3 endpoint) vs one node; rebalance of ${CL_MIB} MiB =="
	row "measure" "cluster" "single" "ratio" "target" "verdict"
	for m in "put_1m MBps PUT 1 MiB MBps (c16)" "get_1m MBps GET 1 MiB MBps (c16)" \
		"put_4k ops_s PUT 4 KiB ops/s (c16)" "get_4k ops_s GET 4 KiB ops/s (c16)"; do
		read -r run key label <<<"$m"
		a="cl_three_$run" b="cl_single_$run"
		cv=$(field "${!a:-}" "$key") sv=$(field "${!b:-}" "$key")
		row "$label" "${cv:-n/a}" "${sv:-n/a}" "$(ratio "$cv" "$sv")" "-" "info"
	done
	mib() { awk -v n="${1:-}" 'BEGIN { if (n == "") print "n/a"; else printf "%.1f", n / 1048576 }'; }
	row "rebalance: seconds to placed" "${CL_SECS:-n/a}" "" "" "-" "info"
	row "  MiB on node 4 after it" "$(mib "$CL_MOVED")" "" "" "-" "info"
	row "  MiB/s moved to node 4" "${CL_MBPS:-n/a}" "" "" "-" "info"
	row "  MiB pushed by all passes" "$(mib "$CL_PUSHED")" "$(mib "$CL_MOVED")" "$(ratio "${CL_PUSHED:-}" "${CL_MOVED:-}")" "-" "info"
fi
errs=0
for v in ${!sfs_*} ${!ng_*} ${!prep_*} ${!rep_*} ${!rb_*} ${!cl_*}; do
	[[ $v =~ ^(ng|sfs)_get_[0-9a-z]+$ ]] && continue	# means; their runs are counted
	e=$(field "${!v}" errors); ((errs += ${e:-0}))
done
out "load average: $LOAD before, $LOAD_MID at the nginx runs, $(cut -d' ' -f1 /proc/loadavg) at the end (the bench itself adds ~2)"
out "request errors across all runs: $errs$( ((errs)) && echo "  (first errors in $B/s3bench.err)")"
out ""
out "raw lines above; results in $RESULTS"
exit 0

#!/usr/bin/env bash
# tests/bench/run.sh — `make bench`: storagefsd against nginx (GET), fio (PUT vs raw
# write+fsync) and its own idle RSS, all on loopback; prints a ratio table with PASS/MISS
# per target and writes <build>/bench/results.txt. Benchmarks report: a MISS never fails.
#
# Usage: bash tests/bench/run.sh [BUILD_DIR]          (default: build)
# Env:   BENCH_SECONDS (per GET figure, split in two runs; default 10)  BENCH_PUT_SECONDS (PUT runs, default 5)
#        SFS_BIN / S3BENCH (binaries to use)   BENCH_KEEP=1 (keep data dirs afterwards)
set -uo pipefail

BUILD=$(cd "${1:-build}" 2>/dev/null && pwd) || { echo "bench: no build dir ${1:-build}" >&2; exit 1; }
B=$BUILD/bench
GET_S=${BENCH_SECONDS:-10}
PUT_S=${BENCH_PUT_SECONDS:-5}
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

SFS_PID= NGINX_PID=
cleanup() {
	[[ -n $SFS_PID ]] && kill "$SFS_PID" 2>/dev/null && wait "$SFS_PID" 2>/dev/null
	[[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	# The data is ~1.5 GiB of throwaway objects; results.txt and the logs stay.
	[[ ${BENCH_KEEP:-0} == 1 ]] || rm -rf "$B/data" "$B/www" "$B/fio" "$B/nginx/tmp"
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
else
	"$SFS_BIN" --listen "127.0.0.1:$SFS_PORT" --data "$B/data" --access-key "$AK" \
		--secret-key "$SK" --region "$REGION" 2>"$B/storagefsd.log" &
	SFS_PID=$!
	for _ in $(seq 100); do
		grep -q 'ready listen=' "$B/storagefsd.log" 2>/dev/null && { SFS_OK=1; break; }
		kill -0 "$SFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ((SFS_OK)); then
		sleep 1		# let start-up work (store recovery, thread spawn) settle
		RSS_START=$(rss_kib "$SFS_PID")
	else
		log "storagefsd did not become ready; log tail:"; tail -n 20 "$B/storagefsd.log" >&2
	fi
fi
S3="--endpoint 127.0.0.1:$SFS_PORT --access-key $AK --secret-key $SK --region $REGION --bucket $BUCKET"
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

# --- 5. the table ---
# ratio A B -> A/B with 2 decimals, or n/a
ratio() { awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
verdict() {	# ratio target -> PASS/MISS/n/a
	awk -v r="$1" -v t="$2" 'BEGIN { if (r == "n/a") print "n/a"; else print (r + 0 >= t + 0) ? "PASS" : "MISS" }'
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
errs=0
for v in ${!sfs_*} ${!ng_*} ${!prep_*}; do
	[[ $v =~ ^(ng|sfs)_get_[0-9a-z]+$ ]] && continue	# means; their runs are counted
	e=$(field "${!v}" errors); ((errs += ${e:-0}))
done
out "load average: $LOAD before, $LOAD_MID at the nginx runs, $(cut -d' ' -f1 /proc/loadavg) at the end (the bench itself adds ~2)"
out "request errors across all runs: $errs$( ((errs)) && echo "  (first errors in $B/s3bench.err)")"
out ""
out "raw lines above; results in $RESULTS"
exit 0

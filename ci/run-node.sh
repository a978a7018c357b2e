#!/usr/bin/env bash
# ci/run-node.sh <build-dir> — the body of `make run` (until the Xen image lands, a later
# issue): runs the static musl storagefsd on this host in the foreground.
#   data:        <build-dir>/run/disk1 .. disk4
#   endpoint:    http://127.0.0.1:9000        (SFS_LISTEN=host:port to change)
#   credentials: <build-dir>/run/credentials, generated once from /dev/urandom and reused,
#                so the data written in one run can be read in the next.
# Ctrl-C (SIGINT) or SIGTERM stops the daemon.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 <build-dir>" >&2; exit 2; }
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$1
[[ $build == /* ]] || build=$repo/$build
bin=${SFS_BIN:-$build/musl/storagefsd}
listen=${SFS_LISTEN:-127.0.0.1:9000}
region=${SFS_REGION:-us-east-1}
run=$build/run
creds=$run/credentials

[[ -x $bin ]] || { echo "run-node: $bin not built (run: make musl)" >&2; exit 1; }
mkdir -p "$run"/disk{1..4}

# Keys: 20 upper-case alphanumerics (AWS-style access key id) and 40 base64-ish characters.
rand() { tr -dc "$1" </dev/urandom | head -c "$2" || true; }
if [[ ! -s $creds ]]; then
	umask 077
	{
		echo "# storagefsd credentials for \`make run\`, generated $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		echo "AWS_ACCESS_KEY_ID=CAIRN$(rand 'A-Z0-9' 15)"
		echo "AWS_SECRET_ACCESS_KEY=$(rand 'A-Za-z0-9/+' 40)"
	} >"$creds.tmp"
	mv "$creds.tmp" "$creds"
	umask 022
fi
ak=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' "$creds")
sk=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' "$creds")
[[ -n $ak && -n $sk ]] || { echo "run-node: $creds is malformed; delete it to get new keys" >&2; exit 1; }

host=${listen%:*}
port=${listen##*:}
if command -v ss >/dev/null && ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
	echo "run-node: warning: something already listens on port $port" >&2
fi

cat <<MSG
Cairn storage node (host run of the static musl build; the Xen image comes later)
  binary:    $bin
  endpoint:  http://$listen
  region:    $region
  data:      $run/disk{1..4}
  access key $ak
  secret key $sk        (kept in $creds)

Try it from another shell:
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_DEFAULT_REGION=$region /usr/bin/aws --endpoint-url http://$listen s3 mb s3://demo
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_DEFAULT_REGION=$region /usr/bin/aws --endpoint-url http://$listen s3 ls

Ctrl-C stops the node.
MSG
[[ $host == 127.* || $host == localhost || $host == "[::1]" ]] ||
	echo "run-node: note: listening on $host, not loopback" >&2

args=(--listen "$listen" --access-key "$ak" --secret-key "$sk" --region "$region")
for d in "$run"/disk{1..4}; do
	args+=(--data "$d")
done
exec "$bin" "${args[@]}"

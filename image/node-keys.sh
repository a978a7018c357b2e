#!/usr/bin/env bash
# image/node-keys.sh DISK — prints the S3 keys a node keeps on its first data disk
# (/.cairn-node/credentials of the ext4 filesystem in the file DISK), without mounting it.
# After a hard stop (QEMU killed, Ctrl-a x) the journal may hold the latest metadata: then the
# journal is replayed on a sparse scratch copy first. Exit 1 when there are no keys (yet).
set -uo pipefail
disk=${1:?usage: $0 DISK}
[[ -s $disk ]] || exit 1
get() { debugfs -c -R "cat /.cairn-node/credentials" "$1" 2>/dev/null | grep '^AWS_'; }
get "$disk" && exit 0
tmp=$(mktemp "${TMPDIR:-/tmp}/cairn-keys.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp --sparse=always "$disk" "$tmp" && e2fsck -E journal_only -y "$tmp" >/dev/null 2>&1
get "$tmp"

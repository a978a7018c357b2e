#!/usr/bin/env bash
# tests/system/run.sh [BUILD_DIR] — system tests of the node image (tests/system/README.md):
# boots build/image/<board>/disk.img in QEMU (TCG) and tests it from outside. Needs `make image`
# first. Ends with "N passed, N failed". Typical run: ~2-4 minutes (two boots under TCG).
#   BOARD=qemu-x86_64   BOOT_TIMEOUT=180 (seconds allowed for each boot step)
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
[[ $build == /* ]] || build=$repo/$build
export BUILD=$build BOARD=${BOARD:-qemu-x86_64}
for t in qemu-system-x86_64 mkfs.ext4 /usr/bin/python3; do
	command -v "$t" >/dev/null || { echo "system: $t not found (bash ci/deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
[[ -f /usr/share/ovmf/OVMF.fd ]] || { echo "system: OVMF missing (apt-get install ovmf)"; echo "0 passed, 1 failed"; exit 1; }
exec /usr/bin/python3 "$repo/tests/system/test_node.py"

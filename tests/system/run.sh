#!/usr/bin/env bash
# tests/system/run.sh [BUILD_DIR] — system tests of the node image (tests/system/README.md):
# boots build/image/<board>/disk.img in QEMU (TCG) and tests it from outside. Needs `make image`
# first. Ends with "N passed, N failed". Typical run: ~7-10 minutes (eight boots under TCG):
# test_node.py (the disk image, UEFI), test_pxe.py (network boot + join, needs build/host),
# test_seed.py (a node of the disk image seeds the rack: a second VM network-boots from it),
# test_console.py (the maintenance console and cairn-ipmi, with QEMU's simulated BMC).
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
# Each script ends with its own "N passed, N failed"; this sums them into the last line.
passed=0 failed=0
for t in test_node.py test_pxe.py test_seed.py test_console.py; do
	out=$(mktemp)
	/usr/bin/python3 "$repo/tests/system/$t" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	rm -f "$out"
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
		((rc != 0 && f == 0)) && f=1
	else
		p=0 f=1
		echo "system: $t ended without a summary line (exit $rc)"
	fi
	passed=$((passed + p)) failed=$((failed + f))
done
echo "$passed passed, $failed failed"
((failed == 0))

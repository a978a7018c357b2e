#!/usr/bin/env bash
# tests/system/run.sh [BUILD_DIR] — system tests of the node image (tests/system/README.md):
# boots build/image/<board>/disk.img in QEMU (TCG) and tests it from outside. Needs `make image`
# first. Ends with "N passed, N failed". Typical run: ~8-11 minutes (eleven boots under TCG):
# test_node.py (the disk image, UEFI), test_pxe.py (network boot + join, needs build/host),
# test_seed.py (a node of the disk image seeds the rack: a second VM network-boots from it),
# test_console.py (the maintenance console and cairn-ipmi, with QEMU's simulated BMC); then
# the arm64 image (U-Boot -> Xen EFI -> dom0, TCG): test_node.py again, and test_netboot.py (its
# U-Boot network boot), ~1 minute (test_pxe/seed/console are x86-only: BIOS iPXE, an ISA BMC).
#   BOARD=qemu-x86_64   BOOT_TIMEOUT=180 (seconds allowed for each boot step)
#   ARM_BOARD=qemu-arm64 (ARM_BOARD=none skips it)   ARM_BOOT_TIMEOUT=400
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$repo/build}
[[ $build == /* ]] || build=$repo/$build
export BUILD=$build BOARD=${BOARD:-qemu-x86_64}
ARM_BOARD=${ARM_BOARD:-qemu-arm64}
tools="qemu-system-x86_64 mkfs.ext4 /usr/bin/python3"
[[ $ARM_BOARD == none ]] || tools="$tools qemu-system-aarch64"
for t in $tools; do
	command -v "$t" >/dev/null || { echo "system: $t not found (bash ci/deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
done
[[ -f /usr/share/ovmf/OVMF.fd ]] || { echo "system: OVMF missing (apt-get install ovmf)"; echo "0 passed, 1 failed"; exit 1; }
[[ $ARM_BOARD == none || -f /usr/lib/u-boot/qemu_arm64/u-boot.bin ]] ||
	{ echo "system: U-Boot for qemu_arm64 missing (apt-get install u-boot-qemu)"; echo "0 passed, 1 failed"; exit 1; }
# Each script ends with its own "N passed, N failed"; this sums them into the last line.
passed=0 failed=0
# Each run is "[VAR=value ...] script".
runs=(test_node.py test_pxe.py test_seed.py test_console.py)
[[ $ARM_BOARD == none ]] || runs+=("BOARD=$ARM_BOARD BOOT_TIMEOUT=${ARM_BOOT_TIMEOUT:-400} test_node.py"
	"BOARD=$ARM_BOARD BOOT_TIMEOUT=${ARM_BOOT_TIMEOUT:-400} test_netboot.py")
for r in "${runs[@]}"; do
	read -ra words <<<"$r"
	t=${words[-1]}
	out=$(mktemp)
	env "${words[@]:0:${#words[@]}-1}" /usr/bin/python3 "$repo/tests/system/$t" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
	rm -f "$out"
	if [[ $line =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
		p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
		((rc != 0 && f == 0)) && f=1
	else
		p=0 f=1
		echo "system: $r ended without a summary line (exit $rc)"
	fi
	passed=$((passed + p)) failed=$((failed + f))
done
echo "$passed passed, $failed failed"
((failed == 0))

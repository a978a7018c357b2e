#!/usr/bin/env bash
# image/check-repro.sh BOARD BUILD_DIR — builds the image a second time, from the same inputs,
# into a scratch copy of BUILD_DIR/image/BOARD and compares the sha256 of every artifact with
# the first build. Exit 0 when all are identical.
set -euo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 BOARD BUILD_DIR" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=image/lib.sh
. "$REPO/image/lib.sh"
board_load "$1"
BUILD=$2
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
out=$BUILD/image/$BOARD
case $BOARD_PXE in uboot) pxe=(pxe/boot.cmd pxe/boot.scr.uimg) ;; *) pxe=(pxe/boot.ipxe) ;; esac
files=(disk.img disk.img.zst initrd.img pxe/xen pxe/vmlinuz pxe/initrd.img "${pxe[@]}" "$EFI_NAME.cfg")
sums() { (cd "$1" && sha256sum "${files[@]}"); }
[[ -f $out/disk.img ]] || bash "$REPO/image/build.sh" "$BOARD" "$BUILD"
first=$(sums "$out")
# A second build from scratch: same downloaded packages and unpacked trees, fresh outputs.
rm -rf "$out.repro"
mv "$out" "$out.repro"
trap 'rm -rf "$out"; mv "$out.repro" "$out"' EXIT
bash "$REPO/image/build.sh" "$BOARD" "$BUILD" >/dev/null 2>&1
second=$(sums "$out")
if [[ $first == "$second" ]]; then
	echo "image-repro: $BOARD: two builds, identical bytes:"
	echo "$first" | sed 's/^/  /'
else
	echo "image-repro: $BOARD: the builds differ:" >&2
	diff <(echo "$first") <(echo "$second") >&2 || true
	exit 1
fi

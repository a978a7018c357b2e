#!/usr/bin/env bash
# image/build.sh BOARD BUILD_DIR — builds the node image of BOARD (board/BOARD/board.mk) into
# BUILD_DIR/image/BOARD/ (the body of `make image`; see image/README.md):
#   disk.img        GPT disk: ESP (Xen EFI as EFI/BOOT/BOOTX64.EFI + BOOTX64.cfg -- BOOTAA64 on
#                   arm64 --, vmlinuz, initrd.img; EFI/CAIRN/xen + boot.ipxe.in (or boot.scr.uimg):
#                   the rest of the PXE bundle, which a seed node serves, see cairn-seed) and an
#                   empty "cairn-state" partition
#   disk.img.zst    the same, compressed (what would be shipped)
#   initrd.img      the dom0 root filesystem (rootfs/mkinitramfs.sh), rootfs.list its contents
#   pxe/            xen, vmlinuz, initrd.img and boot.ipxe (BOARD_PXE=ipxe: Xen as a multiboot
#                   ELF) or boot.scr.uimg (BOARD_PXE=uboot: a U-Boot script): a network-boot bundle
#   manifest.txt    every component, its Debian version and the sha256 of every artifact
# Inputs: Debian's Xen and kernel of the board's architecture (BOARD_XEN_PKG, BOARD_KERNEL_PKG:
# apt-get download into BUILD_DIR/image/debs, or ci/apt-foreign.sh into debs-<arch> for another
# architecture than the host's; a cache: IMAGE_REFRESH=1 looks for newer ones), busybox and
# storagefsd (static musl for BOARD_ARCH, built by make), rootfs/, hypervisor-config/, board/BOARD/.
# Nothing needs root or a loop device. SOURCE_DATE_EPOCH (default: fixed) pins every timestamp.
# DEPS (default BUILD_DIR/deps; make passes its DEPS=) holds the musl busybox and e2fsprogs.
set -euo pipefail
[[ $# -eq 2 ]] || { sed -n '2,15p' "$0" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=image/lib.sh
. "$REPO/image/lib.sh"
board_load "$1"
BUILD=$2
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000} LC_ALL=C TZ=UTC
IMG=$BUILD/image
OUT=$IMG/$BOARD
DEPS=${DEPS:-$BUILD/deps}
[[ $DEPS == /* ]] || DEPS=$REPO/$DEPS
# The host's own architecture uses apt-get; another one ci/apt-foreign.sh (private apt state).
HOST_DEB_ARCH=$(dpkg --print-architecture)
if [[ $BOARD_DEB_ARCH == "$HOST_DEB_ARCH" ]]; then DEBS=$IMG/debs; else DEBS=$IMG/debs-$BOARD_DEB_ARCH; fi
# Static musl binaries of the board's architecture: build/musl + deps/musl for x86_64,
# build/musl-<arch> + deps/musl-<arch> for the others (make musl-aarch64, ci/build-source-pkgs.sh).
MUSL=musl
[[ $BOARD_ARCH == x86_64 ]] || MUSL=musl-$BOARD_ARCH
BUSYBOX=${BUSYBOX:-$DEPS/$MUSL/bin/busybox}
SFSD=${SFSD:-$BUILD/$MUSL/storagefsd}
# The provisioning tools (firmware/) and e2fsprogs' mke2fs/e2fsck (ci/build-source-pkgs.sh).
CAIRN_BINS=${CAIRN_BINS:-$BUILD/$MUSL/cairn-provd $BUILD/$MUSL/cairn-controller $BUILD/$MUSL/cairn-nodectl $BUILD/$MUSL/cairn-ipmi $DEPS/$MUSL/bin/mke2fs $DEPS/$MUSL/bin/e2fsck}
export CAIRN_BINS
XEN_PKG=${XEN_PKG:-$BOARD_XEN_PKG}
ESP_MIB=${ESP_MIB:-64}
STATE_MIB=${STATE_MIB:-32}
log() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }
t0=$SECONDS
mkdir -p "$DEBS" "$OUT" "$IMG/unpack"
# elf_machine FILE: the ELF e_machine field (62 x86-64, 183 aarch64).
elf_machine() { od -An -tu2 -j18 -N2 "$1" | tr -d ' '; }
case $BOARD_ARCH in x86_64) machine=62 ;; aarch64) machine=183 ;; esac
for f in "$BUSYBOX" "$SFSD" $CAIRN_BINS; do
	[[ -x $f ]] || die "$f not built (make deps $MUSL)"
	[[ $(elf_machine "$f") == "$machine" ]] || die "$f is not an $BOARD_ARCH program"
done
tools="dpkg-deb zstd mkfs.vfat mcopy mmd sgdisk python3"
[[ $BOARD_PXE == uboot ]] && tools="$tools mkimage"
for t in $tools; do
	command -v "$t" >/dev/null || die "$t not found (run: bash ci/deps.sh)"
done

# --- 1. Debian packages: Xen and the kernel (apt-get download, cached) ---------------------
# newest_deb NAME-GLOB: the newest cached .deb matching.
newest_deb() {
	local f best= bestv= v
	for f in "$DEBS"/$1_*.deb; do
		[[ -e $f ]] || continue
		v=$(dpkg-deb -f "$f" Version)
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then best=$f bestv=$v; fi
	done
	echo "$best"
}
A=$BOARD_DEB_ARCH
kdeb=$(newest_deb "linux-image-[0-9]*-$A")
xdeb=$(newest_deb "$XEN_PKG")
if [[ -z $kdeb || -z $xdeb || -n ${IMAGE_REFRESH:-} ]]; then
	# BOARD_KERNEL_PKG (linux-image-amd64) is the metapackage: it depends on the current
	# linux-image-<abi>-amd64.
	if [[ $A == "$HOST_DEB_ARCH" ]]; then
		kpkg=${KERNEL_PKG:-$(apt-cache depends "$BOARD_KERNEL_PKG" 2>/dev/null | sed -n "s/^ *Depends: \(linux-image-[0-9].*-$A\)\$/\1/p" | head -n1)}
	else
		kpkg=${KERNEL_PKG:-$(REFRESH=${IMAGE_REFRESH:-} bash "$REPO/ci/apt-foreign.sh" --resolve "$DEPS" "$A" "$BOARD_KERNEL_PKG" | grep -m1 "^linux-image-[0-9].*-$A\$" || true)}
	fi
	[[ -n $kpkg ]] || die "cannot resolve $BOARD_KERNEL_PKG (apt-get update needed?)"
	if [[ $A == "$HOST_DEB_ARCH" ]]; then
		log "apt-get download $kpkg $XEN_PKG"
		(cd "$DEBS" && apt-get download -q "$kpkg" "$XEN_PKG" 2>&1 | { grep -v '^W: Download is performed unsandboxed' || true; } >&2) ||
			die "apt-get download failed"
	else
		log "ci/apt-foreign.sh $A $kpkg $XEN_PKG"
		REFRESH=${IMAGE_REFRESH:-} bash "$REPO/ci/apt-foreign.sh" "$DEPS" "$A" "$DEBS" "$kpkg" "$XEN_PKG" || die "apt-foreign.sh failed"
	fi
	kdeb=$(newest_deb "$kpkg")
	xdeb=$(newest_deb "$XEN_PKG")
fi
[[ -n $kdeb && -n $xdeb ]] || die "no kernel/xen package in $DEBS"

# unpack DEB: dpkg-deb -x into $IMG/unpack/<deb name>/ once; prints the directory.
unpack() {
	local d=$IMG/unpack/$(basename "$1" .deb)
	if [[ ! -f $d/.unpacked ]]; then
		rm -rf "$d"
		dpkg-deb -x "$1" "$d"
		touch "$d/.unpacked"
	fi
	echo "$d"
}
KTREE=$(unpack "$kdeb")
XTREE=$(unpack "$xdeb")
KVER=$(ls "$KTREE/lib/modules")
VMLINUZ=$KTREE/boot/vmlinuz-$KVER
XEN_EFI=$(ls "$XTREE"/boot/xen-*-"$A".efi | head -n1)
# Xen for the network boot: amd64 ships it gzipped (the 32-bit multiboot ELF inside), arm64 as
# a plain arm64 Image.
XEN_GZ=$(ls "$XTREE"/boot/xen-*-"$A".gz 2>/dev/null | head -n1 || true)
XEN_RAW=${XEN_EFI%.efi}
[[ -f $VMLINUZ && -f $XEN_EFI && ( -f $XEN_GZ || -f $XEN_RAW ) ]] || die "kernel or Xen files missing in $KTREE / $XTREE"
log "kernel $(dpkg-deb -f "$kdeb" Package) $(dpkg-deb -f "$kdeb" Version), xen $(dpkg-deb -f "$xdeb" Version)"

# install_if_changed SRC DST: keeps DST (and its mtime) when the bytes are the same.
install_if_changed() { if cmp -s "$1" "$2"; then rm -f "$1"; else mv -f "$1" "$2"; fi; }

# --- 2. the root filesystem ----------------------------------------------------------------
board_conf "$BOARD" >"$OUT/board.conf.tmp"
install_if_changed "$OUT/board.conf.tmp" "$OUT/board.conf"
bash "$REPO/rootfs/mkinitramfs.sh" "$OUT/board.conf" "$BUSYBOX" "$SFSD" "$KTREE" "$OUT/initrd.img.new" "$OUT/rootfs.list"
install_if_changed "$OUT/initrd.img.new" "$OUT/initrd.img"

XEN_ARGS=$(xen_args)
DOM0_ARGS=$(dom0_args)

# --- 3. the PXE bundle ---------------------------------------------------------------------
mkdir -p "$OUT/pxe"
if [[ -n $XEN_GZ ]]; then gzip -dc "$XEN_GZ" >"$OUT/pxe/xen.new"; else cp "$XEN_RAW" "$OUT/pxe/xen.new"; fi
install_if_changed "$OUT/pxe/xen.new" "$OUT/pxe/xen"
cp "$VMLINUZ" "$OUT/pxe/vmlinuz.new" && install_if_changed "$OUT/pxe/vmlinuz.new" "$OUT/pxe/vmlinuz"
cp "$OUT/initrd.img" "$OUT/pxe/initrd.img.new" && install_if_changed "$OUT/pxe/initrd.img.new" "$OUT/pxe/initrd.img"
case $BOARD_PXE in
ipxe)
	# boot.ipxe.in: the board's Xen and dom0 command lines filled in; cairn-controller
	# (--boot-dir) fills in the rest per request (@BASE@, and @CAIRN_ARGS@: controller, token, pin).
	sed -e "s|@XEN_ARGS@|$XEN_ARGS|" -e "s|@DOM0_ARGS@|$DOM0_ARGS|" \
		"$REPO/firmware/pxe/boot.ipxe.in" >"$OUT/pxe/boot.ipxe.in.new"
	install_if_changed "$OUT/pxe/boot.ipxe.in.new" "$OUT/pxe/boot.ipxe.in"
	# boot.ipxe: a stand-alone node from plain TFTP/HTTP (no controller: no cairn.* keys).
	base=${PXE_BASE:-tftp://\${next-server\}}
	sed -e '/^# /d' -e "s|@BASE@|$base|g" -e "s| @CAIRN_ARGS@||" "$OUT/pxe/boot.ipxe.in" >"$OUT/pxe/boot.ipxe.new"
	install_if_changed "$OUT/pxe/boot.ipxe.new" "$OUT/pxe/boot.ipxe"
	PXE_SCRIPT=boot.ipxe PXE_ESP=boot.ipxe.in
	;;
uboot)
	# boot.scr.uimg: what U-Boot's DHCP boot (distro boot: bootcmd_dhcp) fetches and runs. Its
	# source, board/BOARD/boot.cmd.in, loads Xen, the kernel and the initramfs over TFTP and
	# writes the device-tree /chosen nodes Xen reads (docs/misc/arm/device-tree/booting.txt).
	sed -e "s|@XEN_ARGS@|$XEN_ARGS|" -e "s|@DOM0_ARGS@|$DOM0_ARGS|" \
		"$REPO/board/$BOARD/boot.cmd.in" >"$OUT/pxe/boot.cmd.new"
	install_if_changed "$OUT/pxe/boot.cmd.new" "$OUT/pxe/boot.cmd"
	# mkimage stamps SOURCE_DATE_EPOCH into the header: reproducible.
	mkimage -q -A arm64 -O linux -T script -C none -n "Cairn network boot" \
		-d "$OUT/pxe/boot.cmd" "$OUT/pxe/boot.scr.uimg.new" >/dev/null
	install_if_changed "$OUT/pxe/boot.scr.uimg.new" "$OUT/pxe/boot.scr.uimg"
	PXE_SCRIPT=boot.scr.uimg PXE_ESP=boot.scr.uimg
	;;
*) die "BOARD_PXE=$BOARD_PXE: ipxe or uboot" ;;
esac
ln -sfn "$BOARD/pxe" "$IMG/pxe.new" && mv -Tf "$IMG/pxe.new" "$IMG/pxe"

# --- 4. the ESP: FAT32 made in a file, filled with mtools ----------------------------------
stage=$OUT/.esp
rm -rf "$stage"
mkdir -p "$stage"
cp "$XEN_EFI" "$stage/$EFI_NAME.EFI"
cp "$VMLINUZ" "$stage/vmlinuz"
cp "$OUT/initrd.img" "$stage/initrd.img"
# What the ESP lacks of the PXE bundle: a node booted from this disk can then serve the bundle
# to the next servers (cairn-seed; rcS mounts the ESP read-only at /boot).
cp "$OUT/pxe/xen" "$stage/xen"
cp "$OUT/pxe/$PXE_ESP" "$stage/$PXE_ESP"
sed -e '/^#/d' -e "s|@XEN_ARGS@|$XEN_ARGS|" -e "s|@DOM0_ARGS@|$DOM0_ARGS|" \
	"$REPO/hypervisor-config/xen.cfg.in" >"$stage/$EFI_NAME.cfg"
cp "$stage/$EFI_NAME.cfg" "$OUT/$EFI_NAME.cfg"
touch -h -d "@$SOURCE_DATE_EPOCH" "$stage"/*
esp=$OUT/esp.img
rm -f "$esp"
# --invariant + a fixed volume id: no clock or random bytes in the boot sector.
mkfs.vfat -C --invariant -i CA1B0001 -n CAIRN-ESP -F 32 "$esp" $((ESP_MIB * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1 MTOOLS_NO_VFAT=0
mmd -i "$esp" ::EFI ::EFI/BOOT ::EFI/CAIRN
# -m keeps the (pinned) modification times; -D o: overwrite without asking.
for f in $EFI_NAME.EFI $EFI_NAME.cfg vmlinuz initrd.img; do
	mcopy -i "$esp" -m -D o "$stage/$f" "::EFI/BOOT/$f"
done
for f in xen $PXE_ESP; do
	mcopy -i "$esp" -m -D o "$stage/$f" "::EFI/CAIRN/$f"
done
esp_used=$(du -cb "$stage"/* | tail -n1 | cut -f1)
rm -rf "$stage"

# --- 5. the GPT disk: ESP + state placeholder, fixed GUIDs ---------------------------------
disk=$OUT/disk.img.new
rm -f "$disk"
total_mib=$((1 + ESP_MIB + STATE_MIB + 1))
truncate -s "${total_mib}M" "$disk"
sgdisk -o -U C41A0000-0000-4000-8000-000000000001 \
	-n 1:2048:+${ESP_MIB}M -t 1:EF00 -c 1:"EFI system" -u 1:C41A0000-0000-4000-8000-0000000000E1 \
	-n 2:0:+${STATE_MIB}M -t 2:8300 -c 2:cairn-state -u 2:C41A0000-0000-4000-8000-0000000000E2 \
	"$disk" >/dev/null
dd if="$esp" of="$disk" bs=1M seek=1 conv=notrunc,sparse status=none
rm -f "$esp"
install_if_changed "$disk" "$OUT/disk.img"
# Recompressed only when disk.img's bytes changed (its sha256 is kept beside the .zst).
dsum=$(sha256sum "$OUT/disk.img" | cut -d' ' -f1)
if [[ ! -f $OUT/disk.img.zst || $(cat "$OUT/.disk.img.zst.src" 2>/dev/null) != "$dsum" ]]; then
	zstd -q -T1 -9 -f "$OUT/disk.img" -o "$OUT/disk.img.zst"
	echo "$dsum" >"$OUT/.disk.img.zst.src"
fi

# --- 6. the manifest -----------------------------------------------------------------------
sha() { sha256sum "$1" | cut -d' ' -f1; }
bbver=$(sed -n 's/^busybox \([^ ]*\) .*/\1/p' "$DEPS/$MUSL/VERSIONS" 2>/dev/null)
{
	echo "# Cairn node image manifest — board $BOARD (written by image/build.sh)"
	echo "# component  version  origin"
	echo "xen         $(dpkg-deb -f "$xdeb" Version)  Debian binary package $(dpkg-deb -f "$xdeb" Package) ($(basename "$xdeb"))"
	echo "linux       $(dpkg-deb -f "$kdeb" Version)  Debian binary package $(dpkg-deb -f "$kdeb" Package) ($(basename "$kdeb")), kernel $KVER"
	echo "busybox     ${bbver:-${BUSYBOX_VERSION:-unknown}}  Debian source package busybox, built with musl-gcc, config rootfs/busybox.config"
	grep -v '^#' "$DEPS/$MUSL/VERSIONS" 2>/dev/null | grep -v '^busybox ' | awk -v m="$MUSL" '{ printf "%-11s %s  %s\n", $1, $2, ($1 ~ /^(musl|gcc|linux-libc-dev)/) ? "Debian toolchain package" : "Debian source package, static musl library (build/deps/" m "/VERSIONS)" }'
	echo "storagefsd  $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)  this repository, static musl"
	echo "kernel modules: $(grep -c '\.ko$' "$OUT/rootfs.list") ($(sed -n 's|.*lib/modules/[^/]*/.*/\([^/]*\)\.ko$|\1|p' "$OUT/rootfs.list" | tr '\n' ' '))"
	echo "xen args:   $XEN_ARGS"
	echo "dom0 args:  $DOM0_ARGS"
	echo "esp:        EFI/BOOT/{$EFI_NAME.EFI,$EFI_NAME.cfg,vmlinuz,initrd.img} EFI/CAIRN/{xen,$PXE_ESP} (= pxe/xen, pxe/$PXE_ESP)"
	echo "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH"
	echo "# sha256  size  artifact"
	for f in disk.img disk.img.zst initrd.img pxe/xen pxe/vmlinuz pxe/$PXE_SCRIPT $EFI_NAME.cfg; do
		printf '%s %10s  %s\n' "$(sha "$OUT/$f")" "$(stat -c %s "$OUT/$f")" "$f"
	done
	printf '%s %10s  %s\n' "$(sha "$XEN_EFI")" "$(stat -c %s "$XEN_EFI")" "EFI/BOOT/$EFI_NAME.EFI (xen)"
	printf '%s %10s  %s\n' "$(sha "$SFSD")" "$(stat -c %s "$SFSD")" "usr/sbin/storagefsd"
	printf '%s %10s  %s\n' "$(sha "$BUSYBOX")" "$(stat -c %s "$BUSYBOX")" "bin/busybox"
	for f in $CAIRN_BINS; do
		printf '%s %10s  %s\n' "$(sha "$f")" "$(stat -c %s "$f")" "usr/sbin/${f##*/}"
	done
} >"$OUT/manifest.txt"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
log "board $BOARD done in $((SECONDS - t0)) s: $OUT"
log "  disk.img     $(mib "$(stat -c %s "$OUT/disk.img")") raw, $(mib "$(du -B1 "$OUT/disk.img" | cut -f1)") allocated; disk.img.zst $(mib "$(stat -c %s "$OUT/disk.img.zst")")"
log "  ESP          $(mib "$esp_used") of files in $ESP_MIB MiB (ESP_MIB)"
log "  initrd.img   $(mib "$(stat -c %s "$OUT/initrd.img")") (zstd; $(grep -c '\.ko$' "$OUT/rootfs.list") modules), vmlinuz $(mib "$(stat -c %s "$VMLINUZ")"), xen.efi $(mib "$(stat -c %s "$XEN_EFI")")"

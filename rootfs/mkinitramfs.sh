#!/usr/bin/env bash
# rootfs/mkinitramfs.sh — assembles the dom0 root filesystem (an initramfs, newc cpio + zstd).
#   usage: mkinitramfs.sh BOARD_CONF BUSYBOX STORAGEFSD KERNEL_TREE OUT [FILELIST]
#     BOARD_CONF  shell file of BOARD_* settings (image/build.sh writes it from board.mk);
#                 installed as /etc/cairn/board.conf
#     BUSYBOX     static musl busybox (ci/build-source-pkgs.sh: build/deps/musl/bin/busybox)
#     STORAGEFSD  static musl storagefsd (build/musl/storagefsd)
#     KERNEL_TREE the unpacked linux-image package (has lib/modules/<version>/)
#     OUT         the compressed initramfs to write (e.g. build/image/qemu-x86_64/initrd.img)
#     FILELIST    optional: write the sorted list of archive members (with sizes) here
#   env CAIRN_BINS: more static musl programs (space-separated paths) installed in /usr/sbin
#                   under their own names (cairn-provd, cairn-controller, mke2fs, e2fsck, ...)
# Contents: rootfs/skel/ (init scripts, inittab, udhcpc script, cairn-* tools), busybox and its
# applet links, storagefsd, and only the board's kernel modules (BOARD_MODULES) plus what they
# depend on. /init is busybox (init applet) reading /etc/inittab.
# Reproducible: rootfs/mkcpio.py writes sorted entries, root:root, mtime SOURCE_DATE_EPOCH;
# zstd is single-threaded (-T1) and stores no timestamps, so the same inputs give the same bytes.
set -euo pipefail
[[ $# -ge 5 ]] || { sed -n '2,9p' "$0" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf=$1 busybox=$2 sfsd=$3 ktree=$4 out=$5 list=${6:-}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
for f in "$conf" "$busybox" "$sfsd"; do [[ -f $f ]] || { echo "mkinitramfs: $f missing" >&2; exit 1; }; done
# shellcheck disable=SC1090
. "$conf"
kver=$(ls "$ktree/lib/modules")
[[ $(wc -w <<<"$kver") -eq 1 ]] || { echo "mkinitramfs: expected one kernel in $ktree/lib/modules, got: $kver" >&2; exit 1; }

stage=$(mktemp -d "${out%/*}/.rootfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc/cairn,proc,sys,dev,run,tmp,root,data,boot,var,mnt,lib/modules}
chmod 700 "$stage/root"
chmod 1777 "$stage/tmp"
ln -s /run "$stage/var/run"
ln -s /tmp "$stage/var/tmp"
cp -a "$here/skel/." "$stage/"
chmod 600 "$stage/etc/shadow"
install -m 0644 "$conf" "$stage/etc/cairn/board.conf"

install -m 0755 "$busybox" "$stage/bin/busybox"
# One symlink per applet, where busybox would install it (/bin, /sbin, /usr/bin, /usr/sbin).
# A busybox of another architecture (the aarch64 image built on x86-64) tells its applets
# under QEMU's user-mode emulator (qemu-user-static).
bb=("$busybox")
case $(uname -m):$(od -An -tu2 -j18 -N2 "$busybox" | tr -d ' ') in
x86_64:183) bb=(qemu-aarch64-static "$busybox") ;;
esac
"${bb[@]}" --list-full | while read -r a; do
	[[ -e $stage/$a || -L $stage/$a ]] && continue
	ln -s /bin/busybox "$stage/$a"
done
ln -s bin/busybox "$stage/init"
install -m 0755 "$sfsd" "$stage/usr/sbin/storagefsd"
for f in ${CAIRN_BINS:-}; do
	[[ -x $f ]] || { echo "mkinitramfs: $f missing" >&2; exit 1; }
	install -m 0755 "$f" "$stage/usr/sbin/${f##*/}"
done

# shellcheck disable=SC2086
python3 "$here/kmods.py" "$ktree/lib/modules/$kver" "$stage/lib/modules/$kver" $BOARD_MODULES >/dev/null
# modprobe also wants these (may be empty).
for f in modules.builtin modules.order; do
	[[ -f $ktree/lib/modules/$kver/$f ]] && cp "$ktree/lib/modules/$kver/$f" "$stage/lib/modules/$kver/"
done

# Normalise permissions: files are 0644 unless executable (then 0755); /etc/shadow and
# /root stay private. (A checkout's umask must not leak into the image.)
find "$stage" -type d ! -path "$stage/tmp" ! -path "$stage/root" -exec chmod 0755 {} +
find "$stage" -type f -perm /111 -exec chmod 0755 {} +
find "$stage" -type f ! -perm /111 ! -path "$stage/etc/shadow" -exec chmod 0644 {} +

python3 "$here/mkcpio.py" "$stage" "$out.cpio" --dev dev/console:c:5:1:600 --dev dev/null:c:1:3:666
if [[ -n $list ]]; then
	(cd "$stage" && find . -mindepth 1 \( -type f -printf '%m %10s %P\n' \) -o \( -type l -printf '%m %10s %P -> %l\n' \) \
		-o \( -type d -printf '%m %10s %P/\n' \) | LC_ALL=C sort -k3) >"$list"
fi
zstd -q -19 -T1 -f --rm "$out.cpio" -o "$out.tmp"
mv "$out.tmp" "$out"

#!/usr/bin/env bash
# image/run-qemu.sh BOARD BUILD_DIR — boots BUILD_DIR/image/BOARD/disk.img in QEMU (the body
# of `make run`; the system tests use it too). The board's firmware (BOARD_QEMU_FIRMWARE: OVMF,
# or U-Boot on arm64) loads Xen's EFI binary from the ESP; Xen starts the dom0 kernel +
# initramfs. Four virtio data disks, user networking.
#   RUN_DIR=DIR        data disks DIR/disk1.img .. disk4.img (default BUILD_DIR/run): sparse
#                      files, made with mkfs.ext4 -L cairn-dataN the first time, then reused
#   DISK_SIZE=8G       size of new data disks
#   S3_PORT=9000       host port forwarded (127.0.0.1 only) to the node's S3 port
#   EXTRA_HOSTFWD="tcp:127.0.0.1:17443-:7443 ..."  more user-network forwards (QEMU's hostfwd=
#                      syntax, space-separated), e.g. a seed node's controller and boot ports
#   NETBOOT=1          no disk image: boot from the network, QEMU's TFTP serving BUILD_DIR/image/
#                      BOARD/pxe/ (BOARD_PXE=uboot: U-Boot's DHCP boot runs boot.scr.uimg; ipxe:
#                      SeaBIOS and QEMU's iPXE ROM run boot.ipxe)
#   KVM=1              use KVM (off by default: Xen inside KVM fails on these machines)
#   SERIAL=stdio       the console on this terminal (Ctrl-a x quits QEMU, Ctrl-a c: monitor);
#   SERIAL=socket:PATH the console on a unix socket (server), copied to SERIAL_LOG if set
#   QEMU_EXTRA="..."   more QEMU arguments
#   DRY_RUN=1          print the QEMU command line and exit
set -euo pipefail
[[ $# -eq 2 ]] || { sed -n '2,20p' "$0" >&2; exit 2; }
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=image/lib.sh
. "$REPO/image/lib.sh"
board_load "$1"
BUILD=$2
[[ $BUILD == /* ]] || BUILD=$REPO/$BUILD
IMG=$BUILD/image/$BOARD/disk.img
RUN_DIR=${RUN_DIR:-$BUILD/run}
DISK_SIZE=${DISK_SIZE:-8G}
S3_PORT=${S3_PORT:-9000}
SERIAL=${SERIAL:-stdio}
PXE_DIR=$BUILD/image/$BOARD/pxe
if [[ -n ${NETBOOT:-} ]]; then
	[[ -d $PXE_DIR ]] || { echo "run-qemu: $PXE_DIR not built (make image)" >&2; exit 1; }
else
	[[ -f $IMG ]] || { echo "run-qemu: $IMG not built (make image)" >&2; exit 1; }
fi
command -v "$BOARD_QEMU" >/dev/null || { echo "run-qemu: $BOARD_QEMU not found (bash ci/deps.sh)" >&2; exit 1; }
mkdir -p "$RUN_DIR"

# Data disks: ext4 made on the host from a sparse file (no root needed), labelled so that
# the node finds them whatever their device names are.
new_disks=0
for i in 1 2 3 4; do
	d=$RUN_DIR/disk$i.img
	if [[ ! -s $d ]]; then
		rm -f "$d"
		truncate -s "$DISK_SIZE" "$d"
		mkfs.ext4 -F -q -L "$BOARD_DATA_LABEL$i" -E lazy_itable_init=1 "$d"
		new_disks=$((new_disks + 1))
	fi
done

accel=(-accel tcg,thread=multi)
cpu=()
[[ -n $BOARD_QEMU_CPU ]] && cpu=(-cpu "$BOARD_QEMU_CPU")
if [[ ${KVM:-0} == 1 ]]; then accel=(-accel kvm); cpu=(-cpu host); fi
case $SERIAL in
stdio) serial=(-nographic -serial mon:stdio) ;;
socket:*)
	serial=(-display none -monitor none
		-chardev "socket,id=con0,path=${SERIAL#socket:},server=on,wait=off${SERIAL_LOG:+,logfile=$SERIAL_LOG}"
		-serial chardev:con0) ;;
*) echo "run-qemu: SERIAL=$SERIAL: use stdio or socket:PATH" >&2; exit 2 ;;
esac
nic=virtio-net-pci
case " $BOARD_MODULES " in *" virtio_net "*) ;; *) nic=e1000e ;; esac
disk_if=virtio
case " $BOARD_MODULES " in *" virtio_blk "*) ;; *) disk_if=ide ;; esac

cmd=("$BOARD_QEMU" -machine "$BOARD_QEMU_MACHINE" "${accel[@]}" "${cpu[@]}" -smp "$BOARD_QEMU_CPUS" -m "$BOARD_QEMU_MEM")
netdev="user,id=n0,hostfwd=tcp:127.0.0.1:$S3_PORT-:$BOARD_S3_PORT"
nicopt=
if [[ -z ${NETBOOT:-} ]]; then
	cmd+=(-bios "$BOARD_QEMU_FIRMWARE"
		-drive "file=$IMG,format=raw,if=none,id=boot,$([[ $disk_if == virtio ]] && echo readonly=on || echo snapshot=on)")
	# (IDE cannot be read-only: there, writes go to a throw-away overlay instead.)
	# bootindex: the firmware tries the image first (no time lost on other boot options).
	if [[ $disk_if == virtio ]]; then cmd+=(-device virtio-blk-pci,drive=boot,bootindex=0)
	else cmd+=(-device ide-hd,drive=boot,bootindex=0); fi
elif [[ $BOARD_PXE == uboot ]]; then
	# U-Boot tries the (unbootable) data disks, then DHCP: boot.scr.uimg from the TFTP server.
	cmd+=(-bios "$BOARD_QEMU_FIRMWARE")
	netdev="$netdev,tftp=$PXE_DIR"
	# U-Boot (Debian's qemu_arm64 build) sends the MAC address of its default environment,
	# 52:52:52:52:52:52, not the NIC's. QEMU's DHCP server gives each MAC its own address and
	# forwards ports to the first one: the kernel must use the same MAC to get 10.0.2.15 too.
	nicopt=,mac=52:52:52:52:52:52
else
	# SeaBIOS (QEMU's default firmware, no -bios) with the NIC's iPXE ROM: boot.ipxe multiboot-
	# loads Xen (OVMF's UEFI network boot could not).
	netdev="$netdev,tftp=$PXE_DIR,bootfile=boot.ipxe"
	nicopt=,bootindex=0
fi
for i in 1 2 3 4; do
	cmd+=(-drive "file=$RUN_DIR/disk$i.img,format=raw,if=$disk_if,cache=writeback")
done
for f in ${EXTRA_HOSTFWD:-}; do netdev="$netdev,hostfwd=$f"; done
# shellcheck disable=SC2206
cmd+=(-netdev "$netdev" -device "$nic,netdev=n0$nicopt"
	$BOARD_QEMU_DEVICES "${serial[@]}" ${QEMU_EXTRA:-})

if [[ -n ${DRY_RUN:-} ]]; then
	printf '%q ' "${cmd[@]}"
	echo
	exit 0
fi
if [[ $SERIAL == stdio ]]; then
	creds=
	((new_disks == 4)) || creds=$(bash "$REPO/image/node-keys.sh" "$RUN_DIR/disk1.img" || true)
	cat <<MSG
Cairn node: board $BOARD, image $([[ -n ${NETBOOT:-} ]] && echo "$PXE_DIR/ over TFTP" || echo "$IMG")
  S3 endpoint  http://127.0.0.1:$S3_PORT   (forwarded to the node's port $BOARD_S3_PORT)
  data disks   $RUN_DIR/disk{1..4}.img (ext4, kept between runs)
MSG
	if [[ -n $creds ]]; then
		echo "  keys (read from disk1's /.cairn-node/credentials; the root password was shown at first boot):"
		sed 's/^/    /' <<<"$creds"
		ak=$(sed -n 's/^AWS_ACCESS_KEY_ID=//p' <<<"$creds")
		sk=$(sed -n 's/^AWS_SECRET_ACCESS_KEY=//p' <<<"$creds")
		echo "  try: AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk AWS_DEFAULT_REGION=$BOARD_S3_REGION /usr/bin/aws --endpoint-url http://127.0.0.1:$S3_PORT s3 ls"
	else
		echo "  keys         first boot: the node generates them and shows them ONCE in the console banner,"
		echo "               with the root password. Later: make node-keys (reads disk1 with debugfs)."
	fi
	echo "  console      this terminal; Ctrl-a x quits QEMU (the data disks are kept). Booting takes ~10-40 s (TCG)."
	echo
fi
exec "${cmd[@]}"

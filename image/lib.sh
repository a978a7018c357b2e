# image/lib.sh — shared by the image scripts (sourced, not run).
# board_conf BOARD: prints board/BOARD/board.mk as shell assignments (BOARD_X='value').
board_conf() {
	local mk=$REPO/board/$1/board.mk
	[[ -f $mk ]] || { echo "image: no board $1 ($mk)" >&2; return 1; }
	sed -n "s/^\(BOARD_[A-Z0-9_]*\)[[:space:]]*:\{0,1\}=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*\$/\1='\2'/p" "$mk"
}
# board_load BOARD: sets the BOARD_* variables in the calling shell, with the defaults of the
# optional ones (board/README.md lists them all).
board_load() {
	local c
	BOARD_DOM0_ARGS= BOARD_XEN_ARGS= BOARD_QEMU_DEVICES= BOARD_QEMU_CPU= BOARD_DEB_ARCH= BOARD_KERNEL_PKG= BOARD_XEN_PKG=
	BOARD_PXE=ipxe
	c=$(board_conf "$1") || return 1
	eval "$c"
	BOARD=$1
	case $BOARD_ARCH in
	x86_64) : "${BOARD_DEB_ARCH:=amd64}"; EFI_ARCH=X64 ;;
	aarch64) : "${BOARD_DEB_ARCH:=arm64}"; EFI_ARCH=AA64 ;;
	*) echo "image: board $1: BOARD_ARCH=$BOARD_ARCH: x86_64 or aarch64" >&2; return 1 ;;
	esac
	: "${BOARD_KERNEL_PKG:=linux-image-$BOARD_DEB_ARCH}" "${BOARD_XEN_PKG:=xen-hypervisor-4.17-$BOARD_DEB_ARCH}"
	# The UEFI removable-media boot file of the architecture, and the Xen config beside it.
	EFI_NAME=BOOT$EFI_ARCH
}
# cmdline FILE: the non-comment words of a hypervisor-config/*.cmdline file, on one line.
cmdline() { sed -e 's/#.*//' "$1" | tr -s ' \t\n' '   ' | sed -e 's/^ //' -e 's/ $//'; }
# xen_args / dom0_args: full command lines for the loaded board.
xen_args() { echo "$BOARD_XEN_CONSOLE dom0_mem=$BOARD_DOM0_MEM dom0_max_vcpus=$BOARD_DOM0_VCPUS $(cmdline "$REPO/hypervisor-config/xen.cmdline")${BOARD_XEN_ARGS:+ $BOARD_XEN_ARGS}"; }
# DOM0_EXTRA_ARGS (environment) is appended for debugging, e.g. initcall_debug.
dom0_args() { echo "console=$BOARD_CONSOLE $(cmdline "$REPO/hypervisor-config/dom0.cmdline")${BOARD_DOM0_ARGS:+ $BOARD_DOM0_ARGS}${DOM0_EXTRA_ARGS:+ $DOM0_EXTRA_ARGS}"; }

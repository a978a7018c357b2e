# image/lib.sh — shared by the image scripts (sourced, not run).
# board_conf BOARD: prints board/BOARD/board.mk as shell assignments (BOARD_X='value').
board_conf() {
	local mk=$REPO/board/$1/board.mk
	[[ -f $mk ]] || { echo "image: no board $1 ($mk)" >&2; return 1; }
	sed -n "s/^\(BOARD_[A-Z0-9_]*\)[[:space:]]*:\{0,1\}=[[:space:]]*\(.*[^[:space:]]\)[[:space:]]*\$/\1='\2'/p" "$mk"
}
# board_load BOARD: sets the BOARD_* variables in the calling shell.
board_load() {
	local c
	BOARD_DOM0_ARGS= BOARD_QEMU_DEVICES=
	c=$(board_conf "$1") || return 1
	eval "$c"
	BOARD=$1
}
# cmdline FILE: the non-comment words of a hypervisor-config/*.cmdline file, on one line.
cmdline() { sed -e 's/#.*//' "$1" | tr -s ' \t\n' '   ' | sed -e 's/^ //' -e 's/ $//'; }
# xen_args / dom0_args: full command lines for the loaded board.
xen_args() { echo "$BOARD_XEN_CONSOLE dom0_mem=$BOARD_DOM0_MEM dom0_max_vcpus=$BOARD_DOM0_VCPUS $(cmdline "$REPO/hypervisor-config/xen.cmdline")"; }
# DOM0_EXTRA_ARGS (environment) is appended for debugging, e.g. initcall_debug.
dom0_args() { echo "console=$BOARD_CONSOLE $(cmdline "$REPO/hypervisor-config/dom0.cmdline")${BOARD_DOM0_ARGS:+ $BOARD_DOM0_ARGS}${DOM0_EXTRA_ARGS:+ $DOM0_EXTRA_ARGS}"; }

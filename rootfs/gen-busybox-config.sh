#!/usr/bin/env bash
# rootfs/gen-busybox-config.sh <busybox-tree> — regenerates rootfs/busybox.config: Debian's
# busybox source, `make allnoconfig`, then every option named in rootfs/busybox.want set to y,
# and `make oldconfig` answering every question it raises with its default. Fails if an
# option asked for did not stay on (a typo or a missing dependency).
# The generated file is checked in; the image build only copies it (never regenerates it).
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 <busybox-source-tree>" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tree=$1
mapfile -t want < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/busybox.want" | grep .)
unset MAKEFLAGS MFLAGS MAKELEVEL || true
make -C "$tree" -s allnoconfig >/dev/null
for w in "${want[@]}"; do
	o=${w%%=*} v=y
	[[ $w == *=* ]] && v=${w#*=}
	sed -i -e "/^# CONFIG_$o is not set\$/d" -e "/^CONFIG_$o=/d" "$tree/.config"
	echo "CONFIG_$o=$v" >>"$tree/.config"
done
# Twice: options enabled in the first pass can reveal new ones (defaults taken each time).
for _ in 1 2; do yes '' | make -C "$tree" -s oldconfig >/dev/null 2>&1 || true; done
# allnoconfig also empties every string and zeroes every number (modprobe's "/lib/modules",
# udhcpc's default script, the password algorithm ...): drop those lines so that oldconfig
# puts back each option's Kconfig default, except the values busybox.want sets.
keep=$(printf '%s\n' "${want[@]}" | sed -n 's/=.*//p' | sed 's/^/CONFIG_/')
grep -E '^CONFIG_[A-Z0-9_]+=(""|0)$' "$tree/.config" | sed 's/=.*//' | grep -vxF "$keep" |
	while read -r o; do sed -i "/^$o=/d" "$tree/.config"; done
yes '' | make -C "$tree" -s oldconfig >/dev/null 2>&1 || true
bad=0
for w in "${want[@]}"; do
	o=${w%%=*} v=y
	[[ $w == *=* ]] && v=${w#*=}
	grep -qx "CONFIG_$o=$v" "$tree/.config" || { echo "gen-busybox-config: CONFIG_$o is not $v" >&2; bad=1; }
done
((bad == 0)) || exit 1
# Drop the timestamp comment so the file only changes when an option does.
grep -v '^# [A-Z][a-z][a-z] [A-Z][a-z][a-z] ' "$tree/.config" >"$here/busybox.config"
echo "rootfs/busybox.config: $(grep -c '=y$' "$here/busybox.config") options on"

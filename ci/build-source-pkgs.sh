#!/usr/bin/env bash
# ci/build-source-pkgs.sh <deps-dir> [aarch64] — builds the C libraries and the tools of the static
# musl binaries from Debian 12's own source packages (never from anywhere else):
#   <deps-dir>/apt/      private apt state (deb-src list, lists, cache); the host's apt is untouched
#   <deps-dir>/src/      downloaded source packages (.dsc + tarballs), kept as a cache (all targets)
#   <deps-dir>/work/     unpacked, Debian-patched trees and build directories
#   <deps-dir>/stamps/   one stamp per finished step: a step whose stamp matches is skipped
#   <deps-dir>/musl/     the result: include/, lib/*.a, bin/ (busybox, mke2fs, e2fsck) and VERSIONS
# With `aarch64` (the ARM64 board) the same packages are cross-built into <deps-dir>/musl-aarch64/
# (work-aarch64/, stamps-aarch64/) with Debian's aarch64-linux-gnu-gcc against Debian's arm64 musl:
#   <deps-dir>/cross-aarch64/   debs/ (musl, musl-dev, linux-libc-dev for arm64, by apt-foreign.sh),
#                               sysroot/ (them unpacked), bin/aarch64-musl-gcc (the compiler wrapper)
# All packages are fetched first (one private `apt-get update` at most), then built in parallel,
# one build_<name> function per package. To add a package: write build_<name> (it gets its .dsc
# in $1, and ends with `record <name> <version> <dsc>`), and list it in PACKAGES.
# DEPS_REFRESH=1 re-reads the archive and fetches newer Debian revisions if any.
set -euo pipefail

PACKAGES=(mbedtls sqlite3 busybox e2fsprogs)

[[ $# -eq 1 || $# -eq 2 ]] || { echo "usage: $0 <deps-dir> [aarch64]" >&2; exit 2; }
mkdir -p "$1"
DEPS=$(cd "$1" && pwd)
CI=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TARGET=${2:-x86_64}
APT="$DEPS/apt" SRC="$DEPS/src"
# Per target: compiler, binutils prefix, kernel UAPI headers, how to run a program (self-test).
case $TARGET in
x86_64)
	WORK="$DEPS/work" STAMPS="$DEPS/stamps" OUT="$DEPS/musl"
	MUSL_CC=${MUSL_CC:-musl-gcc} CC_KEY=${MUSL_CC:-musl-gcc}
	CROSS_PREFIX='' CONFIGURE_HOST=() RUN=()
	KH_INC=/usr/include KH_ASM=/usr/include/$(gcc -dumpmachine)/asm
	;;
aarch64)
	WORK="$DEPS/work-aarch64" STAMPS="$DEPS/stamps-aarch64" OUT="$DEPS/musl-aarch64"
	CROSS="$DEPS/cross-aarch64"
	MUSL_CC=${MUSL_AARCH64_CC:-$CROSS/bin/aarch64-musl-gcc}
	CROSS_PREFIX=aarch64-linux-gnu- CONFIGURE_HOST=(--host=aarch64-linux-gnu) RUN=(qemu-aarch64-static)
	KH_INC=$CROSS/sysroot/usr/include KH_ASM=$CROSS/sysroot/usr/include/aarch64-linux-gnu/asm
	;;
*) echo "$0: unknown target '$TARGET' (x86_64 or aarch64)" >&2; exit 2 ;;
esac
AR=${CROSS_PREFIX}ar STRIP=${CROSS_PREFIX}strip
JOBS=${DEPS_JOBS:-$(nproc)}
# Called from make: do not let our sub-makes see the parent's jobserver flags.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES || true
export LC_ALL=C SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1700000000}

log() { echo "source-pkgs: $*" >&2; }
die() { echo "source-pkgs: error: $*" >&2; exit 1; }

if [[ -n $CROSS_PREFIX ]]; then
	command -v "${CROSS_PREFIX}gcc" >/dev/null || die "${CROSS_PREFIX}gcc not found (run: bash ci/deps.sh)"
	command -v "${RUN[0]}" >/dev/null || die "${RUN[0]} not found (run: bash ci/deps.sh)"
else
	command -v "$MUSL_CC" >/dev/null || die "$MUSL_CC not found (run: bash ci/deps.sh)"
fi
command -v dpkg-source >/dev/null || die "dpkg-source not found (run: bash ci/deps.sh)"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$SRC" "$WORK" "$STAMPS" \
	"$OUT/include" "$OUT/lib"
# One run per target at a time (make deps and the image rules may start it together); the
# fetch, shared by the targets, takes a second lock.
exec 8>"$DEPS/.lock-$TARGET"
flock 8

# --- private apt state -------------------------------------------------------------------
APT_OPTS=(
	-o Dir::State::Lists="$APT/lists"
	-o Dir::Etc::SourceList="$APT/sources.list"
	-o Dir::Etc::SourceParts=-
	-o Dir::Cache="$APT/cache"
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	-o APT::Sandbox::User=root
	-o Acquire::Retries=3
	-q
)

# deb-src lines for the Debian archives the host uses (its deb822 debian.sources, so a
# host mirror is honoured), falling back to deb.debian.org.
write_sources_list() {
	local f=/etc/apt/sources.list.d/debian.sources out
	out=$(awk '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
				n = split(uris, u, " "); m = split(suites, s, " ")
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
					printf "deb-src %s%s %s %s\n", (key != "" ? "[signed-by=" key "] " : ""), u[i], s[j], comps
			}
			types = uris = suites = comps = key = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		{ k = $1; sub(/:$/, "", k); $1 = ""; sub(/^ +/, "") }
		k == "Types" { types = $0 } k == "URIs" { uris = $0 } k == "Suites" { suites = $0 }
		k == "Components" { comps = $0 } k == "Signed-By" { key = $0 }
		END { flush() }' "$f" 2>/dev/null || true)
	if [[ -z $out ]]; then
		local k=/usr/share/keyrings/debian-archive-keyring.gpg
		out="deb-src [signed-by=$k] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$k] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=$k] http://deb.debian.org/debian-security bookworm-security main"
	fi
	printf '%s\n' "$out" >"$APT/sources.list.new"
	mv "$APT/sources.list.new" "$APT/sources.list"
}

APT_UPDATED=
apt_update() {
	[[ -n $APT_UPDATED ]] && return 0
	write_sources_list
	log "apt-get update (private deb-src lists in $APT)"
	apt-get "${APT_OPTS[@]}" update >"$APT/update.log" 2>&1 || { cat "$APT/update.log" >&2; die "apt-get update failed"; }
	APT_UPDATED=1
}

# fetch <srcpkg>: makes sure $SRC holds a source package of <srcpkg>; sets DSC to its .dsc
# (the newest one there). Only touches the network when none is cached or DEPS_REFRESH=1.
# (Not called in $(...): apt_update must remember it ran.)
fetch() {
	local pkg=$1 dsc
	dsc=$(newest_dsc "$pkg")
	if [[ -z $dsc || -n ${DEPS_REFRESH:-} ]]; then
		apt_update
		log "apt-get source --download-only $pkg"
		(cd "$SRC" && apt-get "${APT_OPTS[@]}" source --download-only "$pkg") >"$SRC/$pkg.fetch.log" 2>&1 ||
			{ cat "$SRC/$pkg.fetch.log" >&2; die "apt-get source $pkg failed"; }
		dsc=$(newest_dsc "$pkg")
		[[ -n $dsc ]] || die "no .dsc for $pkg after apt-get source"
	fi
	DSC=$dsc
}

newest_dsc() {
	local f best='' bestv='' v
	for f in "$SRC/$1"_*.dsc; do
		[[ -e $f ]] || continue
		v=$(dsc_field "$f" Version)
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then best=$f bestv=$v; fi
	done
	echo "$best"
}

dsc_field() { sed -n "s/^$2: *//p" "$1" | head -n1; }

# unpack <dsc> <dir>: Debian's tree with Debian's patches applied (dpkg-source -x).
unpack() {
	local dsc=$1 dir=$2
	rm -rf "$dir" "$dir.tmp"
	dpkg-source -x "$dsc" "$dir.tmp" >"$dir.unpack.log" 2>&1 ||
		{ cat "$dir.unpack.log" >&2; die "dpkg-source -x $dsc failed"; }
	mv "$dir.tmp" "$dir"
}

# A step is skipped when its stamp holds the same key (version + flags + this script's step).
stamp_ok() { [[ -f $STAMPS/$1 && $(cat "$STAMPS/$1") == "$2" ]]; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1"; }

# --- mbedtls: libmbedcrypto.a, libmbedx509.a, libmbedtls.a ------------------------------
MBEDTLS_CFLAGS="-O2 -fno-plt -ffunction-sections -fdata-sections"
build_mbedtls() {
	local dsc=$1 ver dir key
	ver=$(dsc_field "$dsc" Version)
	key="mbedtls $ver cc=$CC_KEY cflags=$MBEDTLS_CFLAGS"
	if stamp_ok mbedtls "$key" && [[ -f $OUT/lib/libmbedcrypto.a ]]; then
		log "mbedtls $ver: up to date"
		record mbedtls "$ver" "$dsc"
		return 0
	fi
	log "mbedtls $ver: unpack + build with $MUSL_CC"
	dir="$WORK/mbedtls"
	unpack "$dsc" "$dir"
	# Upstream's default config.h with Debian's patches. Debian's debian/rules additionally turns
	# on MBEDTLS_THREADING_C/_PTHREAD (and HAVEGE, MD2, MD4, ...) for its shared libraries; we do
	# not: nothing here shares an mbedtls context between threads, so no mutexes are needed.
	make -C "$dir/library" -j"$JOBS" CC="$MUSL_CC" AR="$AR" CFLAGS="$MBEDTLS_CFLAGS" \
		static >"$dir.build.log" 2>&1 || { tail -n 40 "$dir.build.log" >&2; die "mbedtls build failed"; }
	rm -rf "$OUT/include/mbedtls" "$OUT/include/psa"
	cp -r "$dir/include/mbedtls" "$dir/include/psa" "$OUT/include/"
	cp "$dir/library/libmbedcrypto.a" "$dir/library/libmbedx509.a" "$dir/library/libmbedtls.a" "$OUT/lib/"
	stamp_set mbedtls "$key"
	log "mbedtls $ver: built"
	record mbedtls "$ver" "$dsc"
}

# --- sqlite3: the amalgamation (needs tclsh), compiled with musl into libsqlite3.a ---------
SQLITE_DEFS="-DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_DQS=0 \
-DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_OMIT_DEPRECATED \
-DHAVE_USLEEP=1 -DHAVE_FDATASYNC=1 -DHAVE_LOCALTIME_R=1 -DHAVE_GMTIME_R=1"
SQLITE_CFLAGS="-O2 -fno-plt -ffunction-sections -fdata-sections"
build_sqlite3() {
	local dsc=$1 ver dir key
	ver=$(dsc_field "$dsc" Version)
	dir="$WORK/sqlite3"
	key="sqlite3 $ver amalgamation"
	if ! stamp_ok sqlite3-amalgamation "$key" || [[ ! -f $dir/bld/sqlite3.c ]]; then
		log "sqlite3 $ver: unpack + configure + make sqlite3.c (host gcc + tclsh)"
		command -v tclsh >/dev/null || die "tclsh not found (run: bash ci/deps.sh)"
		unpack "$dsc" "$dir"
		mkdir -p "$dir/bld"
		(cd "$dir/bld" && ../configure --disable-tcl --disable-readline --disable-load-extension \
			>"$dir.configure.log" 2>&1) || { tail -n 40 "$dir.configure.log" >&2; die "sqlite3 configure failed"; }
		make -C "$dir/bld" sqlite3.c >"$dir.amalgamation.log" 2>&1 ||
			{ tail -n 40 "$dir.amalgamation.log" >&2; die "sqlite3 make sqlite3.c failed"; }
		stamp_set sqlite3-amalgamation "$key"
		rm -f "$STAMPS/sqlite3"
	fi
	key="sqlite3 $ver cc=$CC_KEY cflags=$SQLITE_CFLAGS defs=$SQLITE_DEFS"
	if stamp_ok sqlite3 "$key" && [[ -f $OUT/lib/libsqlite3.a ]]; then
		log "sqlite3 $ver: up to date"
	else
		log "sqlite3 $ver: compile sqlite3.c with $MUSL_CC"
		# shellcheck disable=SC2086
		"$MUSL_CC" $SQLITE_CFLAGS $SQLITE_DEFS -c "$dir/bld/sqlite3.c" -o "$dir/bld/sqlite3.musl.o"
		rm -f "$dir/bld/libsqlite3.a"
		"$AR" rcs "$dir/bld/libsqlite3.a" "$dir/bld/sqlite3.musl.o"
		cp "$dir/bld/sqlite3.h" "$dir/bld/sqlite3ext.h" "$OUT/include/"
		cp "$dir/bld/libsqlite3.a" "$OUT/lib/"
		stamp_set sqlite3 "$key"
		log "sqlite3 $ver: built"
	fi
	record sqlite3 "$ver" "$dsc"
}

# kernel_headers <dir> <name>...: <dir> gets symlinks to the target's kernel UAPI headers
# (<name> = linux, asm-generic, mtd, ...; asm/ always), for an `-isystem <dir>`: musl's specs
# leave out /usr/include, and the tools below need only these from it.
kernel_headers() {
	local kh=$1 n
	shift
	mkdir -p "$kh"
	for n in "$@"; do ln -sfn "$KH_INC/$n" "$kh/$n"; done
	ln -sfn "$KH_ASM" "$kh/asm"
}

# --- busybox: the node image's userland, static with musl, config rootfs/busybox.config ----
# (added by the image engineer; the config is generated by rootfs/gen-busybox-config.sh)
BUSYBOX_CONFIG=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/rootfs/busybox.config
build_busybox() {
	local dsc=$1 ver dir key kh
	ver=$(dsc_field "$dsc" Version)
	[[ -f $BUSYBOX_CONFIG ]] || die "busybox: $BUSYBOX_CONFIG missing"
	key="busybox $ver tag=cairn cc=$CC_KEY config=$(sha256sum <"$BUSYBOX_CONFIG" | cut -c1-16) sde=$SOURCE_DATE_EPOCH"
	if stamp_ok busybox "$key" && [[ -x $OUT/bin/busybox ]]; then
		log "busybox $ver: up to date"
		record busybox "$ver" "$dsc"
		return 0
	fi
	log "busybox $ver: unpack + build with $MUSL_CC (static)"
	dir="$WORK/busybox"
	unpack "$dsc" "$dir"
	# musl-gcc's specs leave out /usr/include; busybox needs only the kernel's UAPI headers.
	kh="$WORK/busybox-kernel-headers"
	kernel_headers "$kh" linux asm-generic mtd
	cp "$BUSYBOX_CONFIG" "$dir/.config"
	local cross=()
	[[ -z $CROSS_PREFIX ]] || cross=(CROSS_COMPILE="$CROSS_PREFIX")
	(cd "$dir" && { yes '' || true; } | make oldconfig >"$dir.build.log" 2>&1 &&
		make -j"$JOBS" "${cross[@]}" CC="$MUSL_CC" HOSTCC=gcc EXTRA_CFLAGS="-isystem $kh" \
			BB_EXTRA_VERSION="Debian $ver, Cairn" busybox >>"$dir.build.log" 2>&1) ||
		{ tail -n 40 "$dir.build.log" >&2; die "busybox build failed"; }
	mkdir -p "$OUT/bin"
	cp "$dir/busybox" "$OUT/bin/busybox.new"
	mv "$OUT/bin/busybox.new" "$OUT/bin/busybox"
	stamp_set busybox "$key"
	log "busybox $ver: built ($(stat -c %s "$OUT/bin/busybox") bytes)"
	record busybox "$ver" "$dsc"
}

# --- e2fsprogs: mke2fs and e2fsck for the image (the agent formats blank data disks; boot
# checks them), static with musl, e2fsprogs' own libuuid/libblkid (util-linux's are glibc) ---
build_e2fsprogs() {
	local dsc=$1 ver dir key kh
	ver=$(dsc_field "$dsc" Version)
	key="e2fsprogs $ver tag=cairn1 cc=$CC_KEY sde=$SOURCE_DATE_EPOCH"
	if stamp_ok e2fsprogs "$key" && [[ -x $OUT/bin/mke2fs && -x $OUT/bin/e2fsck ]]; then
		log "e2fsprogs $ver: up to date"
		record e2fsprogs "$ver" "$dsc"
		return 0
	fi
	log "e2fsprogs $ver: unpack + build mke2fs, e2fsck with $MUSL_CC (static)"
	dir="$WORK/e2fsprogs"
	unpack "$dsc" "$dir"
	kh="$WORK/e2fsprogs-kernel-headers"
	mkdir -p "$dir/bld"
	kernel_headers "$kh" linux asm-generic
	(cd "$dir/bld" && CC="$MUSL_CC" CFLAGS="-O2 -isystem $kh" LDFLAGS=-static \
		../configure "${CONFIGURE_HOST[@]}" --disable-nls --disable-fsck --disable-uuidd --disable-e2initrd-helper \
			--disable-fuse2fs --disable-defrag --disable-imager --disable-debugfs --disable-tdb \
			--disable-backtrace --without-libarchive --enable-libuuid --enable-libblkid \
			>"$dir.build.log" 2>&1 &&
		make -j"$JOBS" libs >>"$dir.build.log" 2>&1 &&
		make -C misc -j"$JOBS" mke2fs >>"$dir.build.log" 2>&1 &&
		make -C e2fsck -j"$JOBS" e2fsck >>"$dir.build.log" 2>&1) ||
		{ tail -n 40 "$dir.build.log" >&2; die "e2fsprogs build failed"; }
	mkdir -p "$OUT/bin"
	"$STRIP" -o "$OUT/bin/mke2fs.new" "$dir/bld/misc/mke2fs"
	"$STRIP" -o "$OUT/bin/e2fsck.new" "$dir/bld/e2fsck/e2fsck"
	mv "$OUT/bin/mke2fs.new" "$OUT/bin/mke2fs"
	mv "$OUT/bin/e2fsck.new" "$OUT/bin/e2fsck"
	stamp_set e2fsprogs "$key"
	log "e2fsprogs $ver: built (mke2fs $(stat -c %s "$OUT/bin/mke2fs") bytes, e2fsck $(stat -c %s "$OUT/bin/e2fsck") bytes)"
	record e2fsprogs "$ver" "$dsc"
}

# --- aarch64 toolchain: Debian's cross gcc + Debian's arm64 musl, like musl-gcc on x86 -------
# musl-dev's own musl-gcc.specs (paths moved into the sysroot) makes aarch64-linux-gnu-gcc see
# only musl's headers and link only musl's crt files and libc.a (plus libgcc): no glibc.
newest_deb() {
	local f best='' bestv='' v
	for f in "$CROSS/debs/$1"_*_arm64.deb; do
		[[ -e $f ]] || continue
		v=$(dpkg-deb -f "$f" Version)
		if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then best=$f bestv=$v; fi
	done
	[[ -n $best ]] || die "no $1 .deb in $CROSS/debs"
	echo "$best"
}

setup_cross_aarch64() {
	local pkgs=(musl musl-dev linux-libc-dev) debs=() p key root=$CROSS/sysroot
	REFRESH=${DEPS_REFRESH:-} bash "$CI/apt-foreign.sh" "$DEPS" arm64 "$CROSS/debs" "${pkgs[@]}"
	for p in "${pkgs[@]}"; do debs+=("$(newest_deb "$p")"); done
	key="cross-aarch64 wrapper=1 gcc=$(dpkg-query -W -f='${Version}' gcc-12-aarch64-linux-gnu 2>/dev/null) $(basename -a "${debs[@]}" | tr '\n' ' ')"
	# (the wrapper holds absolute paths: a moved tree makes it again)
	if stamp_ok cross-aarch64 "$key" && [[ -x $MUSL_CC ]] &&
		grep -qF "$CROSS/musl-gcc.specs" "$CROSS/bin/aarch64-musl-gcc" 2>/dev/null; then
		return 0
	fi
	log "aarch64 toolchain: unpack ${debs[*]##*/} into $root"
	rm -rf "$root" "$root.tmp"
	mkdir -p "$root.tmp" "$CROSS/bin"
	for p in "${debs[@]}"; do dpkg-deb -x "$p" "$root.tmp"; done
	# its aarch64-linux-musl-gcc points into /usr/lib: ours is bin/aarch64-musl-gcc
	rm -f "$root.tmp/usr/bin/aarch64-linux-musl-gcc"
	mv "$root.tmp" "$root"
	sed -e "s|/usr/include/aarch64-linux-musl|$root/usr/include/aarch64-linux-musl|g" \
		-e "s|/usr/lib/aarch64-linux-musl|$root/usr/lib/aarch64-linux-musl|g" \
		"$root/usr/lib/aarch64-linux-musl/musl-gcc.specs" >"$CROSS/musl-gcc.specs"
	grep -q "$root/usr/lib/aarch64-linux-musl/crti.o" "$CROSS/musl-gcc.specs" ||
		die "aarch64 toolchain: unexpected musl-gcc.specs in musl-dev"
	cat >"$CROSS/bin/aarch64-musl-gcc.new" <<-EOF
	#!/bin/sh
	# Generated by ci/build-source-pkgs.sh: Debian's aarch64 cross gcc against Debian's arm64 musl
	# only (musl-dev's musl-gcc.specs with its paths moved to $root).
	exec "\${REALGCC:-aarch64-linux-gnu-gcc}" "\$@" -specs "$CROSS/musl-gcc.specs"
	EOF
	chmod +x "$CROSS/bin/aarch64-musl-gcc.new"
	mv "$CROSS/bin/aarch64-musl-gcc.new" "$CROSS/bin/aarch64-musl-gcc"
	for p in "${debs[@]}"; do
		echo "$(dpkg-deb -f "$p" Package):arm64 $(dpkg-deb -f "$p" Version) $(basename "$p")"
	done >"$CROSS/VERSIONS"
	stamp_set cross-aarch64 "$key"
}

# --- main ---------------------------------------------------------------------------------
if [[ $TARGET == aarch64 ]]; then
	setup_cross_aarch64
	# In the steps' stamps: another arm64 musl, kernel headers or cross gcc rebuilds them.
	CC_KEY="$MUSL_CC toolchain=$(sha256sum <"$STAMPS/cross-aarch64" | cut -c1-12)"
fi
# record <name> <version> <dsc>: the line for VERSIONS (builds run in subshells: via a file).
record() { echo "$1 $2 $(basename "$3")" >"$STAMPS/$1.version"; }

declare -A DSCS=()
exec 7>"$APT/fetch.lock"
flock 7
for p in "${PACKAGES[@]}"; do
	fetch "$p"
	DSCS[$p]=$DSC
done
exec 7>&-

# Builds are independent: run them at once (sqlite3.c is one long single-threaded compile).
declare -A PIDS=()
# timed <name> <dsc>: build_<name>, logging how long it took when it did build.
timed() {
	local t0=$SECONDS
	"build_$1" "$2" || return
	((SECONDS - t0 < 2)) || log "$1: $((SECONDS - t0)) s"
}
for p in "${PACKAGES[@]}"; do
	rm -f "$STAMPS/$p.version"
	if [[ -n ${DEPS_SERIAL:-} ]]; then
		timed "$p" "${DSCS[$p]}" || die "build failed: $p (log in $WORK/$p*.log)"
		continue
	fi
	timed "$p" "${DSCS[$p]}" &
	PIDS[$p]=$!
done
failed=()
for p in "${!PIDS[@]}"; do
	wait "${PIDS[$p]}" || failed+=("$p")
done
((${#failed[@]} == 0)) || die "build failed: ${failed[*]} (logs in $WORK/*.log)"

VERSIONS=()
for p in "${PACKAGES[@]}"; do
	VERSIONS+=("$(cat "$STAMPS/$p.version")")
done
{
	echo "# Static musl libraries built from Debian 12 source packages by ci/build-source-pkgs.sh"
	[[ $TARGET == x86_64 ]] || echo "# target: $TARGET"
	echo "# <source package> <Debian version> <.dsc>"
	printf '%s\n' "${VERSIONS[@]}"
	echo "# toolchain"
	if [[ $TARGET == x86_64 ]]; then
		echo "musl $(dpkg-query -W -f='${Version}' musl-dev 2>/dev/null || echo unknown)"
		echo "gcc $(dpkg-query -W -f='${Version}' gcc-12 2>/dev/null || echo unknown)"
	else
		cat "$CROSS/VERSIONS"
		echo "gcc-12-aarch64-linux-gnu $(dpkg-query -W -f='${Version}' gcc-12-aarch64-linux-gnu 2>/dev/null || echo unknown)"
	fi
} >"$OUT/VERSIONS.new"
if cmp -s "$OUT/VERSIONS.new" "$OUT/VERSIONS" 2>/dev/null; then
	rm -f "$OUT/VERSIONS.new"
else
	mv "$OUT/VERSIONS.new" "$OUT/VERSIONS"
fi

# Self-test (once per set of libraries): a static musl program hashes with mbedtls and runs SQL.
selftest() {
	local key t=$WORK/selftest
	key="$(cat "$OUT/VERSIONS") $(cd "$OUT/lib" && stat -c '%n:%s:%Y' ./*.a | tr '\n' ' ')"
	stamp_ok selftest "$key" && return 0
	mkdir -p "$t"
	cat >"$t/t.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <mbedtls/sha256.h>
#include <sqlite3.h>
int main(void)
{
	unsigned char h[32];
	char hex[65], *err = NULL;
	sqlite3 *db;
	if (mbedtls_sha256_ret((const unsigned char *)"abc", 3, h, 0) != 0)
		return 1;
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", h[i]);
	if (strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0)
		return 2;
	if (sqlite3_open(":memory:", &db) != SQLITE_OK || !sqlite3_threadsafe())
		return 3;
	if (sqlite3_exec(db, "CREATE TABLE t(k TEXT PRIMARY KEY, v INT); INSERT INTO t VALUES('a', 1);"
			 "SELECT v FROM t WHERE k = 'a';", NULL, NULL, &err) != SQLITE_OK)
		return 4;
	sqlite3_close(db);
	puts("ok");
	return 0;
}
C
	"$MUSL_CC" -static -O1 -I"$OUT/include" "$t/t.c" -o "$t/t" -L"$OUT/lib" -lmbedcrypto -lsqlite3 -lpthread -lm ||
		die "self-test: linking against $OUT/lib failed"
	local out rc=0
	out=$("${RUN[@]}" "$t/t") || rc=$?
	[[ $out == ok && $rc == 0 ]] || die "self-test: $t/t failed (exit $rc)"
	stamp_set selftest "$key"
	log "self-test passed (static musl $TARGET program: sha256 + sqlite${RUN:+, run by ${RUN[*]}})"
}
selftest
log "done: $(printf '%s; ' "${VERSIONS[@]}")"

#!/usr/bin/env bash
# ci/deps.sh — installs every Debian 12 package the build, the tests, the benchmarks and
# (later) the image need. Idempotent: when all are installed it only runs dpkg-query (~0.1 s).
# Usage: bash ci/deps.sh            (as root; `make deps` calls it)
#        bash ci/deps.sh --list     (print the package list and exit)
set -euo pipefail

PKGS=(
	# compilers: glibc host build, static musl build, clang for libFuzzer + sanitizers
	build-essential musl-tools clang llvm
	libclang-rt-14-dev	# libclang_rt.fuzzer-x86_64.a, asan/ubsan runtimes for clang 14
	# glibc build links Debian's libraries; the musl build compiles Debian's sources
	libmbedtls-dev libsqlite3-dev
	dpkg-dev		# apt-get source / dpkg-source -x
	tcl			# tclsh: sqlite's `make sqlite3.c` (amalgamation)
	# aarch64 image (ARM64 board): cross gcc + binutils; Debian's arm64 musl is unpacked by
	# build-source-pkgs.sh (via apt-foreign.sh), qemu-aarch64-static runs the results in tests
	gcc-aarch64-linux-gnu qemu-user-static
	xz-utils gzip zstd ca-certificates curl
	# tests: S3 clients (use /usr/bin/python3 and /usr/bin/aws, not a pyenv shim)
	python3 python3-boto3 awscli s3cmd rclone valgrind
	openssl			# test_join.py makes CSRs with it
	# benchmarks
	wrk fio nginx-light
	# image + boot tests (later issues)
	qemu-system-x86 qemu-system-arm qemu-utils ovmf ipxe-qemu u-boot-qemu u-boot-tools
	dnsmasq-base		# the dnsmasq binary only; the `dnsmasq` package adds a system service
	cpio mtools dosfstools gdisk
	iproute2		# ip: test_cluster_netcut.py builds its network in namespaces
	e2fsprogs		# mkfs.ext4 for the data disks of `make run` (no root needed), debugfs to read their keys
)

if [[ ${1:-} == --list ]]; then
	printf '%s\n' "${PKGS[@]}"
	exit 0
fi

# Prints the packages of PKGS not installed (one dpkg-query call for all of them).
missing() {
	local -A ok=()
	local p st
	while read -r p st; do
		if [[ $st == installed ]]; then ok[$p]=1; fi
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PKGS[@]}" 2>/dev/null || true)
	for p in "${PKGS[@]}"; do
		if [[ -z ${ok[$p]:-} ]]; then echo "$p"; fi
	done
}

mapfile -t MISSING < <(missing)
if ((${#MISSING[@]} == 0)); then
	echo "deps: all ${#PKGS[@]} Debian packages installed"
	exit 0
fi

if ((EUID != 0)); then
	echo "deps: missing packages: ${MISSING[*]}" >&2
	echo "deps: run as root (or: sudo bash ci/deps.sh)" >&2
	exit 1
fi

echo "deps: installing ${#MISSING[@]} package(s): ${MISSING[*]}"
export DEBIAN_FRONTEND=noninteractive
retry() {
	local n
	for n in 1 2 3; do
		"$@" && return 0
		echo "deps: '$*' failed (try $n of 3)" >&2
		sleep $((n * 5))
	done
	return 1
}
# A fresh machine has no (or stale) package lists: a plain update before any install.
retry apt-get update -q
retry apt-get install -y -q --no-install-recommends "${MISSING[@]}"

mapfile -t STILL < <(missing)
if ((${#STILL[@]})); then
	echo "deps: still missing after install: ${STILL[*]}" >&2
	exit 1
fi
echo "deps: done"

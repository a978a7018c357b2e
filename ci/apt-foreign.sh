#!/usr/bin/env bash
# ci/apt-foreign.sh — downloads binary .debs of ANOTHER Debian architecture (e.g. arm64 kernels,
# Xen, musl) without touching the host's dpkg/apt state: no `dpkg --add-architecture`, a private
# apt state per architecture in <deps-dir>/apt-<arch>/ (its own sources.list, lists, cache, empty
# dpkg status), deb lines following the host's /etc/apt/sources.list.d/debian.sources.
#
#   bash ci/apt-foreign.sh <deps-dir> <debian-arch> <dest-dir> <package>[=<version>]...
#       downloads each package's candidate .deb into <dest-dir> (no dependencies are pulled in).
#       A package with a <package>_*_{<arch>,all}.deb already in <dest-dir> is not downloaded again.
#   bash ci/apt-foreign.sh --resolve <deps-dir> <debian-arch> <package>
#       prints the packages <package> depends on (first alternative), one a line: resolves a
#       metapackage, e.g. linux-image-arm64 -> linux-image-6.1.0-NN-arm64.
#   bash ci/apt-foreign.sh --version <deps-dir> <debian-arch> <package>
#       prints the candidate version of <package>.
# The private `apt-get update` runs only when its lists are missing, or with REFRESH=1
# (which also downloads packages again). Concurrent runs for one <deps-dir>/<arch> serialise.
set -euo pipefail

log() { echo "apt-foreign: $*" >&2; }
die() { echo "apt-foreign: error: $*" >&2; exit 1; }
usage() {
	sed -n 's/^#   //p;s/^#       /    /p' "${BASH_SOURCE[0]}" | sed -n '1,9p' >&2
	exit 2
}

MODE=download
case ${1:-} in
--resolve) MODE=resolve; shift; [[ $# -eq 3 ]] || usage ;;
--version) MODE=version; shift; [[ $# -eq 3 ]] || usage ;;
-h | --help | "") usage ;;
*) [[ $# -ge 4 ]] || usage ;;
esac

mkdir -p "$1"
DEPS=$(cd "$1" && pwd)
ARCH=$2
[[ $ARCH =~ ^[a-z0-9]+$ ]] || die "bad architecture '$ARCH'"
shift 2
A="$DEPS/apt-$ARCH"
export LC_ALL=C

mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/preferences.d" "$A/state"
[[ -e $A/status ]] || : >"$A/status"

# One run at a time per private state (apt's own locks would make a second run fail, not wait).
exec 9>"$A/run.lock"
flock 9

APT_OPTS=(
	-o APT::Architecture="$ARCH"
	-o APT::Architectures="$ARCH"
	-o Dir::State="$A/state"
	-o Dir::State::Lists="$A/lists"
	-o Dir::State::status="$A/status"
	-o Dir::Etc::SourceList="$A/sources.list"
	-o Dir::Etc::SourceParts=-
	-o Dir::Etc::PreferencesParts="$A/preferences.d"
	-o Dir::Etc::Preferences="$A/preferences"
	-o Dir::Cache="$A/cache"
	-o APT::Sandbox::User=root
	-o Acquire::Retries=3
	-o Acquire::Languages=none
	-q
)

# deb lines for the Debian archives the host uses (its deb822 debian.sources, so a host mirror
# is honoured), falling back to deb.debian.org. Same parsing as build-source-pkgs.sh (deb-src).
write_sources_list() {
	local f=/etc/apt/sources.list.d/debian.sources out
	out=$(awk -v arch="$ARCH" '
		function flush() {
			if (types ~ /(^| )deb( |$)/ && uris != "" && suites != "") {
				n = split(uris, u, " "); m = split(suites, s, " ")
				opt = "arch=" arch (key != "" ? " signed-by=" key : "")
				for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
					printf "deb [%s] %s %s %s\n", opt, u[i], s[j], comps
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
		out="deb [arch=$ARCH signed-by=$k] http://deb.debian.org/debian bookworm main
deb [arch=$ARCH signed-by=$k] http://deb.debian.org/debian bookworm-updates main
deb [arch=$ARCH signed-by=$k] http://deb.debian.org/debian-security bookworm-security main"
	fi
	printf '%s\n' "$out" >"$A/sources.list.new"
	mv "$A/sources.list.new" "$A/sources.list"
}

# Lists are "there" when at least one Packages file was fetched for the current sources.list.
apt_update() {
	if [[ -z ${REFRESH:-} && -f $A/sources.list && -f $A/updated ]] &&
		compgen -G "$A/lists/*_Packages*" >/dev/null; then
		return 0
	fi
	write_sources_list
	log "apt-get update (private $ARCH lists in $A)"
	rm -f "$A/updated"
	apt-get "${APT_OPTS[@]}" update >"$A/update.log" 2>&1 || { cat "$A/update.log" >&2; die "apt-get update failed"; }
	: >"$A/updated"
}

# cached <dest> <package>: true when a .deb of <package> for $ARCH (or all) is in <dest>.
cached() {
	compgen -G "$1/$2_*_$ARCH.deb" >/dev/null || compgen -G "$1/$2_*_all.deb" >/dev/null
}

case $MODE in
resolve)
	apt_update
	deps=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "$1" 2>/dev/null |
		sed -n 's/^Depends: //p' | head -n1 || true)
	[[ -n $deps ]] || die "$1: no such package for $ARCH, or it has no Depends"
	# "a (>= 1), b | c" -> a, b (first alternative, no version, no :any)
	tr ',' '\n' <<<"$deps" | sed 's/|.*//; s/(.*//; s/:.*//; s/^ *//; s/ *$//' | sed '/^$/d'
	;;
version)
	apt_update
	v=$(apt-cache "${APT_OPTS[@]}" policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p' || true)
	[[ -n $v && $v != "(none)" ]] || die "$1: no candidate for $ARCH"
	echo "$v"
	;;
download)
	DEST=$1
	shift
	mkdir -p "$DEST"
	DEST=$(cd "$DEST" && pwd)
	want=()
	for p in "$@"; do
		if [[ -n ${REFRESH:-} ]] || ! cached "$DEST" "${p%%=*}"; then want+=("$p"); fi
	done
	if ((${#want[@]} == 0)); then
		log "all $# package(s) already in $DEST"
		exit 0
	fi
	apt_update
	log "apt-get download (${ARCH}): ${want[*]} -> $DEST"
	(cd "$DEST" && apt-get "${APT_OPTS[@]}" download "${want[@]}") >"$A/download.log" 2>&1 ||
		{ cat "$A/download.log" >&2; die "apt-get download failed"; }
	for p in "${want[@]}"; do
		cached "$DEST" "${p%%=*}" || die "$p: no .deb in $DEST after download"
	done
	log "downloaded: $(cd "$DEST" && for p in "${want[@]}"; do ls "${p%%=*}"_*.deb; done | tr '\n' ' ')"
	;;
esac

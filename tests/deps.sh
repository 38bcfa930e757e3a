# deps.sh - sourced by ./test.sh and ./demo.sh: install the Debian 12
# packages fcgi-pm needs, with apt-get, only when something is missing (so
# reruns start at once).  POSIX sh.

# To build: compiler, meson, the three libraries; check for the unit tests.
FCGI_PM_BUILD_PKGS="meson ninja-build pkg-config gcc libc6-dev libfcgi-dev libconfuse-dev check libpython3-dev python3"
# To run the demo and the integration tests: nginx, Django 3.2, lxml, Flask, curl.
FCGI_PM_RUN_PKGS="nginx-light python3-django python3-lxml python3-flask curl"
# The other web servers the integration tests drive, and iproute2 (ip netns)
# for the scale-out test (each test skips if what it needs is missing;
# ./demo.sh does not need them).
FCGI_PM_WEB_PKGS="lighttpd apache2 caddy iproute2"
# CI's extra steps (FCGI_PM_FULL=1 ./test.sh): the libFuzzer targets need
# clang and its runtime; the valgrind test needs valgrind.
FCGI_PM_FUZZ_PKGS="clang libclang-rt-14-dev"
FCGI_PM_CHECK_PKGS="valgrind"

# pkg_missing PKG...: print the packages that are not installed.
pkg_missing() {
	for p in "$@"; do
		case $p in
		nginx-light)	# any nginx flavour will do
			[ -x /usr/sbin/nginx ] && continue ;;
		caddy)		# also fine from caddy's own repository or a binary
			command -v caddy >/dev/null 2>&1 && continue ;;
		esac
		s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) || s=
		case $s in
		ii*) ;;
		*) printf '%s ' "$p" ;;
		esac
	done
}

# ensure_packages PKG...: apt-get install what is missing (as root, or via sudo).
ensure_packages() {
	missing=$(pkg_missing "$@")
	[ -z "$missing" ] && return 0
	echo "==> installing: $missing"
	if [ "$(id -u)" -eq 0 ]; then
		sudo=
	elif command -v sudo >/dev/null 2>&1; then
		sudo=sudo
	else
		echo "error: missing packages ($missing) and not root; run: apt-get install -y $missing" >&2
		return 1
	fi
	# shellcheck disable=SC2086
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
}

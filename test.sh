#!/bin/sh
# ./test.sh - install what is missing, build fcgi-pm into a fresh build dir,
# run the whole suite (check unit tests + integration tests with a real
# nginx), and end with "N passed, M failed" counted from every TAP line.
#
#   ./test.sh                        build/ with the default options
#   ./test.sh -Dsanitize=true        extra meson options (ASan + UBSan build)
#   MESON_OPTIONS="-Dsanitize=true" ./test.sh     the same, from the environment
#   BUILD_DIR=build-asan ./test.sh   another build dir
#   MESON_TEST_ARGS="--suite integration" ./test.sh   extra `meson test` arguments
#
# Exit status 0 only if nothing failed.
set -u
cd "$(dirname "$0")" || exit 1
. tests/deps.sh

BUILD_DIR=${BUILD_DIR:-build}
MESON_OPTIONS=${MESON_OPTIONS:-}
MESON_TEST_ARGS=${MESON_TEST_ARGS:-}

# sanitizer builds: CPython's own allocations at exit are not our leaks
LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}
export LSAN_OPTIONS

ensure_packages $FCGI_PM_BUILD_PKGS $FCGI_PM_RUN_PKGS $FCGI_PM_WEB_PKGS || {
	echo "0 passed, 1 failed"; exit 1; }

# A fresh build dir every time.  Not `meson setup --wipe`: it would keep the
# options of the previous run (a sanitizer build would stay one).
if [ -d "$BUILD_DIR" ]; then
	if [ -d "$BUILD_DIR/meson-private" ] || [ -z "$(ls -A "$BUILD_DIR")" ]; then
		rm -rf "$BUILD_DIR"
	else
		echo "error: $BUILD_DIR exists and is not a meson build dir; not removing it" >&2
		echo "0 passed, 1 failed"
		exit 1
	fi
fi
echo "==> meson setup $BUILD_DIR $MESON_OPTIONS $*"
# shellcheck disable=SC2086
if ! meson setup "$BUILD_DIR" $MESON_OPTIONS "$@"; then
	echo "meson setup failed"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "==> ninja -C $BUILD_DIR"
if ! ninja -C "$BUILD_DIR"; then
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi
echo "==> meson test -C $BUILD_DIR"
# shellcheck disable=SC2086
meson test -C "$BUILD_DIR" --print-errorlogs $MESON_TEST_ARGS </dev/null
/usr/bin/python3 tests/count-results.py "$BUILD_DIR/meson-logs/testlog.json"

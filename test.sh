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
#   FCGI_PM_FULL=1 ./test.sh         also (as .ci/run does) the whole suite in
#                                    an ASan+UBSan build ($BUILD_DIR-asan) and
#                                    each libFuzzer target for FUZZ_SECONDS
#                                    (default 30) in a clang build ($BUILD_DIR-fuzz)
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

ensure_packages $FCGI_PM_BUILD_PKGS $FCGI_PM_RUN_PKGS $FCGI_PM_WEB_PKGS $FCGI_PM_CHECK_PKGS || {
	echo "0 passed, 1 failed"; exit 1; }

# Some tests run workers and web servers as other users (nobody, www-data),
# who must be able to read the tree and run the binaries.  A clone in a
# private place (e.g. /root, mode 0700) is not readable: run from a
# world-readable copy in /tmp instead (removed when everything passed).
if [ "$(id -u)" -eq 0 ] && [ -z "${FCGI_PM_TREE_COPY:-}" ] &&
    ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
	test -r "$(pwd)/meson.build" -a -x "$(pwd)" 2>/dev/null; then
	copy=$(mktemp -d /tmp/fcgi-pm-tree.XXXXXX) || exit 1
	echo "==> $(pwd) is not readable by other users: testing a copy in $copy"
	tar -C . --exclude='./build*' -cf - . | tar -C "$copy" -xf - &&
	    chmod -R a+rX "$copy" || { echo "0 passed, 1 failed"; exit 1; }
	FCGI_PM_TREE_COPY=1 "$copy/test.sh" "$@"
	rc=$?
	if [ $rc -eq 0 ]; then rm -rf "$copy"; fi
	exit $rc
fi

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
LOGS="$BUILD_DIR/meson-logs/testlog.json"

# fresh_build DIR OPTIONS...: a new meson build dir (removed first, as above).
fresh_build() {
	d=$1; shift
	echo "==> meson setup $d $*"
	rm -rf "$d" && meson setup "$d" "$@" || { rm -rf "$d"; return 1; }
}

if [ "${FCGI_PM_FULL:-}" = 1 ]; then
	# The whole suite again with ASan + UBSan: the harness fails tests whose
	# logs hold sanitizer reports.  A failed build leaves no testlog, which
	# count-results.py counts as a failure.
	if fresh_build "$BUILD_DIR-asan" -Dsanitize=true && ninja -C "$BUILD_DIR-asan"; then
		echo "==> meson test -C $BUILD_DIR-asan"
		# shellcheck disable=SC2086
		meson test -C "$BUILD_DIR-asan" --print-errorlogs $MESON_TEST_ARGS </dev/null
	fi
	LOGS="$LOGS $BUILD_DIR-asan/meson-logs/testlog.json"
	# libFuzzer targets (clang): only they are built in this dir.
	if ensure_packages $FCGI_PM_FUZZ_PKGS &&
	    (CC=clang; export CC; fresh_build "$BUILD_DIR-fuzz" -Dfuzz=true -Dtests=disabled) &&
	    ninja -C "$BUILD_DIR-fuzz" tests/fuzz/fuzz_fcgi tests/fuzz/fuzz_environ tests/fuzz/fuzz_conf; then
		echo "==> meson test -C $BUILD_DIR-fuzz --suite fuzz (${FUZZ_SECONDS:-30} s each)"
		meson test -C "$BUILD_DIR-fuzz" --no-rebuild --suite fuzz --print-errorlogs </dev/null
	fi
	LOGS="$LOGS $BUILD_DIR-fuzz/meson-logs/testlog.json"
fi
# shellcheck disable=SC2086
/usr/bin/python3 tests/count-results.py $LOGS

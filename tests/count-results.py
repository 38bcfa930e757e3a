#!/usr/bin/python3
"""count-results.py - the closing line of ./test.sh and .ci/run.

Reads meson's testlog.json (one JSON object per test) and counts every TAP
line of every test: "ok N" passes, "not ok N" fails ("# SKIP" and "# TODO"
lines are counted apart).  A test that ended badly (FAIL, TIMEOUT, ERROR,
crash) without any "not ok" line counts as one more failure, so a test that
crashed before printing TAP is never lost; a non-TAP test counts once, by
its result.  Prints the failures' names, then "N passed, M failed"; exits 0
only if M == 0.

usage: count-results.py [BUILD_DIR/meson-logs/testlog.json ...]

With several testlogs (./test.sh in CI: the normal build, the sanitizer
build, the fuzzers) everything is summed into the one closing line; a
testlog that is missing (its build failed) counts as one failure.
"""
import json
import re
import sys

TAP = re.compile(r"^(not ok|ok)\b(.*)$")
DIRECTIVE = re.compile(r"#\s*(skip|todo)\b", re.I)
BAD = {"FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"}


def main():
    paths = sys.argv[1:] or ["build/meson-logs/testlog.json"]
    passed = failed = skipped = 0
    failures = []
    lines = []
    for path in paths:
        # names of the extra builds' tests carry the build dir
        tag = "" if path == paths[0] else path.split("/meson-logs/")[0] + ": "
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError as e:
            failed += 1
            failures.append("%scannot read %s: %s (build or setup failed?)" % (tag, path, e))
            continue
        lines += [(tag, l) for l in text.splitlines()]
    for tag, line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        name, result = tag + t.get("name", "?"), t.get("result", "?")
        out = t.get("stdout") or ""
        t_pass = t_fail = t_skip = 0
        for l in out.splitlines():
            m = TAP.match(l.strip())
            if not m:
                continue
            d = DIRECTIVE.search(m.group(2))
            if d:
                t_skip += 1
            elif m.group(1) == "ok":
                t_pass += 1
            else:
                t_fail += 1
                failures.append("%s: %s" % (name, l.strip()))
        if t_pass + t_fail + t_skip == 0:
            # no TAP at all: exit-code test, or a TAP test that crashed early
            if result == "OK" or result == "EXPECTEDFAIL":
                t_pass = 1
            elif result == "SKIP":
                t_skip = 1
            else:
                t_fail = 1
                failures.append("%s: %s (no TAP output)" % (name, result))
        elif result in BAD and t_fail == 0:
            t_fail = 1
            failures.append("%s: %s after %d ok lines (crash, timeout or bad plan)"
                            % (name, result, t_pass))
        passed += t_pass
        failed += t_fail
        skipped += t_skip
    if failures:
        print("failed:")
        for f in failures:
            print("  " + f)
    if skipped:
        print("%d skipped" % skipped)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# fcgi-pm side-by-side benchmark (not part of the test suite's pass/fail).
#   tests/bench/run.sh            full run: 10 s per cell, 3 rounds
#   tests/bench/run.sh --quick    smoke run: 2 s per cell, 3 rounds
#   tests/bench/run.sh --help     all options
# Installs what is missing with apt-get (as root), builds fcgi-pm into
# build-bench/, writes tests/bench/results.{md,png,json}.
#   tests/bench/run.sh --memory   what one more worker costs, with and without
#                                 preload (memory.py, writes tests/bench/memory.md)
if [ "$1" = "--memory" ]; then
    shift
    exec /usr/bin/python3 "$(dirname "$0")/memory.py" "$@"
fi
exec /usr/bin/python3 "$(dirname "$0")/bench.py" "$@"

#!/usr/bin/python3
"""Split a worker's CPU profile into the application's share and the
server's own (everything but the app): protocol, environ, gateway, and the
kernel work of its syscalls.

    perf record -F 499 --call-graph dwarf,16384 -o perf.data -p WORKER_PID -- sleep 10
    perf script -i perf.data -F comm,tid,ip,sym,dso | tests/bench/perf_split.py

A sample is the application's when Python code runs in it: a
_PyEval_EvalFrameDefault frame between the leaf and the server's request
handler (fcgi-pm: wsgi_handle; uWSGI: no frame of its own needed, its loop
is C).  Everything else is the server's own, listed by the syscall it was
in (if any) and the first server function above the leaf.  Multiply the
shares by the worker's CPU per request (bench.py's "CPU µs/req") for µs.
"""
import collections
import sys

HANDLERS = {"wsgi_handle", "request_thread", "serve"}   # fcgi-pm's request path


def samples(lines):
    """Yield the frames [(symbol, dso)] of each sample, leaf first."""
    frames = None
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = None
        elif not line[0].isspace():
            frames = []
        elif frames is not None:
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and " (" in parts[1]:
                sym, dso = parts[1].rsplit(" (", 1)
                frames.append((sym, dso.rstrip(")")))
    if frames:
        yield frames


def in_app(frames):
    for sym, _ in frames:
        if sym in HANDLERS:
            return False
        if sym == "_PyEval_EvalFrameDefault":
            return True
    return False


def own_key(frames):
    prefixes = ("__x64_sys_", "__do_sys_", "____sys_", "__sys_")
    syscall = next((s for s, _ in frames if s.startswith(prefixes)), None)
    kernel = "kernel" in frames[0][1]
    server = next((s for s, d in frames if "fcgi-pm-worker" in d or "uwsgi" in d), "?")
    if syscall:
        for p in prefixes:
            syscall = syscall.replace(p, "")
        return "kernel: %s in %s" % (syscall, server)
    return ("kernel (no syscall) in " if kernel else "user: ") + server


def split(lines):
    """(samples, the app's samples, Counter of the server's own by key)."""
    app = 0
    own = collections.Counter()
    for frames in samples(lines):
        if in_app(frames):
            app += 1
        else:
            own[own_key(frames)] += 1
    return app + sum(own.values()), app, own


def main():
    total, app, own = split(sys.stdin)
    if total == 0:
        sys.exit("no samples")
    print("samples %d: application %.1f%%, server's own %.1f%%"
          % (total, 100.0 * app / total, 100.0 * sum(own.values()) / total))
    for key, n in own.most_common(20):
        print("  %5.2f%%  %s" % (100.0 * n / total, key))


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:     # | head
        pass

"""hostile - a WSGI app for the hostile-input, chaos and valgrind tests.

Every response iterable has a close() that appends "close TAG\\n" to
$HOSTILE_DIR/closes (TAG from the query string), so a test can prove that
close() ran after the web server went away or aborted the request.

Routes (PATH_INFO):
  /pid             the worker's pid
  /read            reads wsgi.input to its end; answers "LEN SUM"
  /stream?n=N      N chunks of 64 KiB, 10 ms apart
  /readlater       reads wsgi.input while the response is iterated
  /slow?s=S        sleeps S seconds, then answers
  /segv            the worker dies of SIGSEGV (ctypes)
  /leak?mb=N       keeps N MiB more for the life of the process
  /hang            never answers (sleeps for an hour)
  anything else    "ok"
"""
import os
import time
from urllib.parse import parse_qs

_kept = []


class Body:
    def __init__(self, chunks, tag):
        self.chunks = chunks
        self.tag = tag

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        d = os.environ.get("HOSTILE_DIR")
        if d and self.tag:
            with open(os.path.join(d, "closes"), "a") as f:
                f.write("close %s\n" % self.tag)


def stream(n):
    chunk = b"s" * 65536
    for _ in range(n):
        yield chunk
        time.sleep(0.01)


def read_later(inp):
    n = 0
    while True:
        b = inp.read(4096)
        if not b:
            break
        n += len(b)
    yield b"read %d" % n


def application(environ, start_response):
    q = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    tag = q.get("tag", "")
    path = environ.get("PATH_INFO", "")
    headers = [("Content-Type", "text/plain")]
    if path == "/pid":
        chunks = [str(os.getpid()).encode()]
    elif path == "/read":
        data = environ["wsgi.input"].read()
        chunks = [("%d %d" % (len(data), sum(data))).encode()]
    elif path == "/stream":
        chunks = stream(int(q.get("n", "100")))
    elif path == "/readlater":
        chunks = read_later(environ["wsgi.input"])
    elif path == "/slow":
        time.sleep(float(q.get("s", "1")))
        chunks = [b"slept"]
    elif path == "/segv":
        import ctypes
        ctypes.string_at(0)
        chunks = [b"unreachable"]
    elif path == "/leak":
        _kept.append(bytearray(int(q.get("mb", "10")) << 20))
        for i in range(0, len(_kept[-1]), 4096):
            _kept[-1][i] = 1          # touch it: RSS, not just address space
        chunks = [b"leaked"]
    elif path == "/hang":
        time.sleep(3600)
        chunks = [b"woke"]
    else:
        chunks = [b"ok"]
    start_response("200 OK", headers)
    return Body(chunks, tag)

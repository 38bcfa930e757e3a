"""through_nginx - the gateway battery driven through a real nginx
(tests/integration/test_gateway.py).

The first segment of PATH_INFO picks the app ("/environ/...", "/input"...),
QUERY_STRING is its argument.  Every app is wrapped in
wsgiref.validate.validator, except the ones that break PEP 3333 on purpose
(bad status, bad headers, no Content-Type): the validator would refuse
those before the gateway sees them, and the gateway's own refusal is what
they test.

Files the apps record into live in the directory named by the pool's
GW_STATE_DIR environment variable.
"""
import hashlib
import io
import json
import os
import sys
import threading
import time
import wsgiref.validate

import _xxsubinterpreters

STATE = os.environ.get("GW_STATE_DIR", "/tmp")
validated = {}          # name -> validator-wrapped app
raw = {}                # name -> app served as is


def app(fn):
    validated[fn.__name__[4:]] = wsgiref.validate.validator(fn)
    return fn


def raw_app(fn):
    raw[fn.__name__[4:]] = fn
    return fn


def text(start_response, body, status="200 OK", extra=()):
    body = body.encode("utf-8") if isinstance(body, str) else body
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))] + list(extra))
    return [body]


def record(name, line):
    """Append LINE to STATE/NAME (one write: lines from threads never mix)."""
    fd = os.open(os.path.join(STATE, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@app
def app_environ(environ, start_response):
    """Every native-string value, the wsgi.* values, the interpreter and thread."""
    out = {k: v for k, v in environ.items() if type(v) is str}
    out["_types_ok"] = all(type(v) is str for k, v in environ.items() if "." not in k)
    out["_wsgi"] = {
        "version": list(environ["wsgi.version"]),
        "url_scheme": environ["wsgi.url_scheme"],
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
        "run_once": environ["wsgi.run_once"],
        "input": all(hasattr(environ["wsgi.input"], m)
                     for m in ("read", "readline", "readlines", "__iter__")),
        "errors": all(hasattr(environ["wsgi.errors"], m)
                      for m in ("write", "writelines", "flush")),
        "file_wrapper": callable(environ["wsgi.file_wrapper"]),
    }
    out["_interp"] = int(_xxsubinterpreters.get_current())
    out["_main_interp"] = int(_xxsubinterpreters.get_main())
    out["_pid"] = os.getpid()
    return text(start_response, json.dumps(out), extra=[("Content-Type-Note", "json")])


@app
def app_input(environ, start_response):
    """Run the wsgi.input operations in QUERY_STRING ("readline:3,read:5,
    readlines:10,iter,readall,len") in order; answer with their results.
    "readall" is read() without a size (the validator insists on one, so
    it is asked of the gateway's own object)."""
    inp = environ["wsgi.input"]
    res = []
    for op in environ["QUERY_STRING"].split(","):
        name, _, arg = op.partition(":")
        if name == "iter":
            res.append([x.decode("latin-1") for x in inp])
            continue
        if name == "len":
            n = 0
            while True:
                b = inp.read(65536)
                if not b:
                    break
                n += len(b)
            res.append(n)
            continue
        if name == "readall":
            v = inp.input.read()
        elif arg:
            v = getattr(inp, name)(int(arg))
        else:
            v = getattr(inp, name)()
        if isinstance(v, list):
            res.append([x.decode("latin-1") for x in v])
        else:
            res.append(v.decode("latin-1"))
    # after all that, the stream is at its end and stays there
    res.append(inp.read(10).decode("latin-1"))
    return text(start_response, json.dumps(res))


@app
def app_upload(environ, start_response):
    """Read the body with read(1 MiB) and answer its length and sha256."""
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    n = 0
    while True:
        b = inp.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    return text(start_response, json.dumps({"length": n, "sha256": h.hexdigest(),
                                            "content_length": environ.get("CONTENT_LENGTH")}))


@raw_app
def app_status(environ, start_response):
    """start_response with a bad status line; the app lets the error through."""
    status = {"nospace": "200OK", "letters": "abc Nope", "newline": "200 OK\nX-Injected: 1",
              "short": "20", "bytes": b"200 OK"}[environ["QUERY_STRING"]]
    start_response(status, [("Content-Type", "text/plain")])
    return [b"should never be seen"]


BAD_HEADERS = {
    "space": [("Bad Name", "x")],
    "colon": [("Bad:Name", "x")],
    "newline": [("X-Ok", "a\nInjected: yes")],
    "crlf": [("X-Ok", "a\r\nInjected: yes")],
    "nul": [("X-Ok", "a\0b")],
    "nonlatin": [("X-Ok", "\u20ac")],
    "status": [("Status", "200 OK")],
}


@raw_app
def app_badheader(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")] + BAD_HEADERS[environ["QUERY_STRING"]])
    return [b"should never be seen"]


@raw_app
def app_badheader_caught(environ, start_response):
    """The app catches the gateway's refusal and answers with what it said."""
    try:
        start_response("200 OK", BAD_HEADERS[environ["QUERY_STRING"]])
    except (ValueError, TypeError) as e:
        return text(start_response, "%s: %s" % (type(e).__name__, e), status="400 Bad Request")
    return [b"accepted"]


class Boom(Exception):
    pass


@app
def app_excinfo(environ, start_response):
    """exc_info before anything was sent replaces the response; after the
    headers went out start_response re-raises it (and the connection is cut)."""
    mode = environ["QUERY_STRING"]
    headers = [("Content-Type", "text/plain")]
    if mode == "after-cl":
        headers.append(("Content-Length", "100"))
    start_response("200 OK", headers)
    try:
        if mode.startswith("after"):
            yield b"part one;"
        raise Boom("excinfo-%s" % mode)
    except Boom:
        try:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                       ("X-Error-Page", "yes")], sys.exc_info())
        except Boom:
            record("excinfo", "reraised %s" % mode)
            raise
        record("excinfo", "replaced %s" % mode)
        yield b"error page"


@app
def app_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"w1;")
    write(b"")
    write(b"w2;")
    return [b"i1;", b"", b"i2"]


@app
def app_lateheaders(environ, start_response):
    """Headers wait for the first non-empty chunk: an exception after an
    empty one still becomes a clean 500, not a 200 cut short."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Late", "yes")])
    yield b""
    yield b""
    raise Boom("late-headers marker")


@app
def app_stream(environ, start_response):
    """Yield, wait for the client to say it has the first chunk (a marker
    file), yield again.  The second chunk names what happened."""
    marker = os.path.join(STATE, environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first chunk;"
    deadline = time.monotonic() + 15
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)
    yield b"second chunk: client had the first" if os.path.exists(marker) else \
        b"second chunk: timed out waiting for the client"


class Recorded:
    """An iterable whose close() appends "close TAG" to STATE/closes.
    Modes: ok, raise (in iteration), closeraise (in close), forever (a
    client that goes away), empty."""

    def __init__(self, tag, mode):
        self.tag, self.mode = tag, mode

    def __iter__(self):
        if self.mode == "empty":
            return
        yield b"one;"
        yield b"two;"
        if self.mode == "raise":
            raise Boom("in iteration " + self.tag)
        if self.mode == "forever":
            record("closes", "streaming " + self.tag)
            for _ in range(3000):           # 60 s at most
                yield b"x" * 4096
                time.sleep(0.02)
            record("closes", "ran out " + self.tag)
        yield b"three"

    def close(self):
        record("closes", "close " + self.tag)
        if self.mode == "closeraise":
            raise Boom("in close " + self.tag)


@app
def app_close(environ, start_response):
    tag, _, mode = environ["QUERY_STRING"].partition(":")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(tag, mode)


@raw_app
def app_close_raw(environ, start_response):
    """The same without the validator (its wrapper would be what we close)."""
    tag, _, mode = environ["QUERY_STRING"].partition(":")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Recorded(tag, mode)


def _file(environ, start_response):
    path, _, block = environ["QUERY_STRING"].partition(":")
    f = open(os.path.join(STATE, path), "rb")
    size = os.fstat(f.fileno()).st_size
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    return environ["wsgi.file_wrapper"](f, int(block or 8192))


validated["file"] = wsgiref.validate.validator(_file)
raw["file_raw"] = _file


class CountingFile(io.FileIO):
    """A file that records, when closed, how often Python read it."""

    def __init__(self, path, tag):
        super().__init__(path, "rb")
        self.tag, self.reads = tag, 0

    def read(self, *args):
        self.reads += 1
        return super().read(*args)

    def close(self):
        # every call is recorded (IOBase's finalizer calls close() only on
        # a file still open)
        record("files", "close %s reads=%d" % (self.tag, self.reads))
        super().close()


def _counted(environ, start_response):
    """wsgi.file_wrapper over a CountingFile: QUERY_STRING "path:tag"."""
    path, _, tag = environ["QUERY_STRING"].partition(":")
    f = CountingFile(os.path.join(STATE, path), tag)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.fstat(f.fileno()).st_size))])
    return environ["wsgi.file_wrapper"](f, 65536)


validated["counted"] = wsgiref.validate.validator(_counted)
raw["counted_raw"] = _counted


@app
def app_head(environ, start_response):
    record("head", environ["REQUEST_METHOD"])
    return text(start_response, "a body of 26 bytes, not 0\n", extra=[("X-Method", environ["REQUEST_METHOD"])])


@app
def app_boom(environ, start_response):
    raise Boom("boom marker " + environ["QUERY_STRING"])


@app
def app_method(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    return text(start_response, json.dumps({"method": environ["REQUEST_METHOD"],
                                            "body": body.decode("latin-1")}))


@app
def app_big(environ, start_response):
    """QUERY_STRING bytes from a generator, in 256 KiB chunks."""
    n = int(environ["QUERY_STRING"])
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(n))])
    return _big(n)


@raw_app
def app_onepiece(environ, start_response):
    """QUERY_STRING "N[;nolength][;tuple]": N bytes as one bytes object in a
    list (or a tuple), the commonest WSGI response: the gateway sends it with
    the end of the response in one write."""
    args = environ["QUERY_STRING"].split(";")
    body = (b"0123456789abcdef" * (int(args[0]) // 16 + 1))[:int(args[0])]
    headers = [("Content-Type", "application/octet-stream")]
    if "nolength" not in args:
        headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return (body,) if "tuple" in args else [body]


def _big(n):
    # a new bytes object each time: a gateway that kept references to the
    # chunks it sent would grow by the size of the response
    pattern = bytearray(b"0123456789abcdef" * 16384)
    while n >= len(pattern):
        yield bytes(pattern)
        n -= len(pattern)
    if n:
        yield bytes(pattern[:n])


@app
def app_sleep(environ, start_response):
    t0 = time.monotonic()
    time.sleep(float(environ["QUERY_STRING"] or "1"))
    return text(start_response, json.dumps({
        "interp": int(_xxsubinterpreters.get_current()),
        "thread": threading.get_ident(),
        "pid": os.getpid(),
        "slept": time.monotonic() - t0}))


@app
def app_errors(environ, start_response):
    """wsgi.errors goes to the pool's log, line by line."""
    err = environ["wsgi.errors"]
    tag = environ["QUERY_STRING"]
    err.write("errors %s: first line\nerrors %s: second " % (tag, tag))
    err.write("line\n")
    err.writelines(["errors %s: from writelines\n" % tag])
    print("errors %s: printed" % tag, file=err)
    err.write("errors %s: unterminated" % tag)
    err.flush()
    return text(start_response, "logged")


@raw_app
def app_nocontenttype(environ, start_response):
    """A 200 without Content-Type is the app's business (the validator objects)."""
    start_response("200 OK", [])
    return [b"no type"]


def application(environ, start_response):
    # "/environ/..." or, where the web server sent the whole path (the
    # /nosplit/ location), "/nosplit/environ/..."
    parts = environ.get("PATH_INFO", "/").split("/") + [""]
    name = parts[1] if parts[1] in raw or parts[1] in validated else parts[2]
    name = name or "environ"
    if name in raw:
        return raw[name](environ, start_response)
    if name in validated:
        return validated[name](environ, start_response)
    return text(start_response, "no app %r\n" % name, status="404 Not Found")

"""battery - the WSGI apps the gateway unit tests (tests/unit/test_wsgi.c) drive.

The X-Test request header (HTTP_X_TEST) picks the app; QUERY_STRING is its
argument.  Bodies are ASCII so the C side can compare exact bytes.
"""
import io
import random
import sys
import threading
import wsgiref.validate

try:
    import _xxsubinterpreters as _subinterp
except ImportError:             # pragma: no cover
    _subinterp = None

closes = 0              # how many times a Closing iterable was closed
local = threading.local()
kept = {}               # references an app keeps after its request (expired test)


def reply(start_response, body, status="200 OK", headers=None):
    start_response(status, headers or [("Content-Type", "text/plain")])
    return [body.encode("latin-1") if isinstance(body, str) else body]


def app_environ(environ, start_response):
    """ascii() of the environ keys named in QUERY_STRING (comma separated)."""
    out = []
    for key in environ["QUERY_STRING"].split(","):
        out.append("%s=%s\n" % (key, ascii(environ.get(key, "<absent>"))))
    return reply(start_response, "".join(out))


def app_types(environ, start_response):
    """Every CGI value a str, the wsgi.* values of the right types."""
    bad = [k for k, v in environ.items() if "." not in k and type(v) is not str]
    out = "bad=%s version=%r run_once=%r multithread=%r multiprocess=%r " \
          "input=%s errors=%s file_wrapper=%s http_cl=%s" % (
              bad, environ["wsgi.version"], environ["wsgi.run_once"],
              environ["wsgi.multithread"], environ["wsgi.multiprocess"],
              all(hasattr(environ["wsgi.input"], m)
                  for m in ("read", "readline", "readlines", "__iter__")),
              all(hasattr(environ["wsgi.errors"], m)
                  for m in ("write", "writelines", "flush")),
              callable(environ["wsgi.file_wrapper"]),
              "HTTP_CONTENT_LENGTH" in environ)
    return reply(start_response, out)


def app_input(environ, start_response):
    """Run the input operations in QUERY_STRING ("readline:3,read") and
    answer with the list of their results."""
    inp = environ["wsgi.input"]
    res = []
    for op in environ["QUERY_STRING"].split(","):
        name, _, arg = op.partition(":")
        if name == "iter":
            res.append(list(inp))
        elif name == "len":         # read(65536) until b"", total length
            n = 0
            while True:
                b = inp.read(65536)
                if not b:
                    break
                n += len(b)
            res.append(n)
        elif arg:
            res.append(getattr(inp, name)(int(arg)))
        else:
            res.append(getattr(inp, name)())
    return reply(start_response, ascii(res))


def app_status(environ, start_response):
    """start_response with the status in QUERY_STRING (latin-1 bytes)."""
    status = environ["QUERY_STRING"].replace("%20", " ").replace("%0A", "\n")
    return reply(start_response, "body", status=status)


BAD_HEADERS = {
    "space": [("Bad Name", "x")],
    "colon": [("Bad:Name", "x")],
    "crlf": [("X-Ok", "a\r\nInjected: yes")],
    "notlist": (("X-Ok", "x"),),
    "notstr": [("X-Ok", 3)],
    "bytes": [(b"X-Ok", b"x")],
    "triple": [("X-Ok", "x", "y")],
    "nonlatin": [("X-Ok", "\u20ac")],
    "status": [("Status", "200 OK")],
    "latin1": [("X-Ok", "caf\xe9")],
}


def app_headers(environ, start_response):
    start_response("200 OK", BAD_HEADERS[environ["QUERY_STRING"]])
    return [b"body"]


class Boom(Exception):
    pass


def app_excinfo(environ, start_response):
    """exc_info before anything was sent: the app's error page replaces the
    first status.  After the headers went out: start_response re-raises."""
    mode = environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        if mode == "after":
            yield b"part"
        raise Boom("kaboom")
    except Boom:
        start_response("500 Oops", [("Content-Type", "text/plain")], sys.exc_info())
        yield b"error page"


def app_again(environ, start_response):
    start_response("200 OK", [])
    try:
        start_response("201 Created", [])
    except Exception as e:
        return [("%s: %s" % (type(e).__name__, e)).encode()]
    return [b"no error"]


def app_write(environ, start_response):
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"a")
    write(b"")
    write(b"b")
    return [b"c", b"", b"d"]


class Closing:
    """An iterable with close(); QUERY_STRING "raise" raises mid-way."""

    def __init__(self, environ, chunks, fail=False):
        self.chunks, self.fail = chunks, fail

    def __iter__(self):
        for c in self.chunks:
            yield c
        if self.fail is True:
            raise Boom("in iteration")

    def close(self):
        global closes
        closes += 1
        if self.fail == "close":
            raise Boom("in close")


def app_close(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    q = environ["QUERY_STRING"]
    return Closing(environ, [b"one", b"two", b"three"],
                   fail=(q == "raise") or (q == "closeraise" and "close"))


def app_closecount(environ, start_response):
    global closes
    if environ["QUERY_STRING"] == "reset":
        closes = 0
    return reply(start_response, str(closes))


class ListResponse(Closing):
    """Like Django's HttpResponse: __iter__ returns iter(a list)."""

    def __iter__(self):
        return iter(self.chunks)


def app_listresponse(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ListResponse(environ, [b"head", b"", b"tail"])


def app_stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b""
    yield b"chunk1"
    yield b"chunk2"
    yield b"chunk3"


def app_empty(environ, start_response):
    start_response("204 No Content", [("X-Empty", "yes")])
    return iter([b"", b""])


def app_boom(environ, start_response):
    raise Boom("before start_response")


def app_none(environ, start_response):
    start_response("200 OK", [])


def app_nostart(environ, start_response):
    return [b"forgot start_response"]


def app_str(environ, start_response):
    start_response("200 OK", [])
    return ["a str, not bytes"]


def app_tlocal(environ, start_response):
    local.n = getattr(local, "n", 0) + 1
    return reply(start_response, "%d %s" % (local.n, threading.current_thread() is threading.main_thread()))


def app_interp(environ, start_response):
    return reply(start_response, "interp=%d main=%d" % (
        _subinterp.get_current(), _subinterp.get_main()))


def app_keep(environ, start_response):
    """First request keeps start_response and wsgi.input; the second uses them."""
    if environ["QUERY_STRING"] == "keep":
        kept["start_response"] = start_response
        kept["input"] = environ["wsgi.input"]
        return reply(start_response, "kept")
    out = []
    for what, call in (("start_response", lambda: kept["start_response"]("200 OK", [])),
                       ("input", lambda: kept["input"].read())):
        try:
            call()
            out.append("%s: no error" % what)
        except Exception as e:
            out.append("%s: %s: %s" % (what, type(e).__name__, e))
    return reply(start_response, "\n".join(out))


def app_file(environ, start_response):
    """wsgi.file_wrapper over a real file (path in QUERY_STRING, skip 2
    bytes first) or over a BytesIO ("bytesio"); "cl" limits Content-Length to 5."""
    q = environ["QUERY_STRING"]
    headers = [("Content-Type", "application/octet-stream")]
    if q == "bytesio":
        f = io.BytesIO(b"0123456789" * 3)
    else:
        path, _, cl = q.partition(";")
        f = open(path, "rb")
        f.read(2)
        if cl:
            headers.append(("Content-Length", cl))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](f, 4)


def app_errors(environ, start_response):
    err = environ["wsgi.errors"]
    err.write("first line\nsecond ")
    err.write("line\n")
    print("printed", file=err)
    err.writelines(["w1\n", "w2\n"])
    err.write("unterminated")
    err.flush()
    return reply(start_response, "logged")


def app_clientgone(environ, start_response):
    """Writes with write() after the client is gone: write() raises."""
    write = start_response("200 OK", [])
    try:
        for _ in range(5):
            write(b"x" * 10)
    except OSError as e:
        kept["gone"] = str(e)
        raise
    return [b"never"]


def app_gonemsg(environ, start_response):
    return reply(start_response, kept.get("gone", "none"))


def _simple(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"].readline()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body) + 3))])
    return [b"ok:" + body]


app_validated = wsgiref.validate.validator(_simple)


def app_validated_file(environ, start_response):
    return wsgiref.validate.validator(app_file)(environ, start_response)


def application(environ, start_response):
    name = environ.get("HTTP_X_TEST", "environ")
    return globals()["app_" + name](environ, start_response)


def app_sys(environ, start_response):
    """How the interpreter was set up: prefix, executable, UTF-8 mode, sys.path."""
    import os
    site = [p for p in sys.path if p.endswith("site-packages")]
    return reply(start_response, "prefix=%s\nexecutable=%s\nutf8=%d\nfsenc=%s\n"
                 "path=%s\nsite=%s\ncwd=%s\nmultithread=%r\n" % (
                     sys.prefix, sys.executable, sys.flags.utf8_mode,
                     sys.getfilesystemencoding(), sys.path[:2], site,
                     os.getcwd(), environ["wsgi.multithread"]))


def app_random(environ, start_response):
    """random.random() and the thread count: a child forked without the
    at-fork hooks repeats its parent's numbers."""
    return reply(start_response, "%r %d" % (random.random(), threading.active_count()))


def app_length(environ, start_response):
    """Content-Length against the body: QUERY_STRING is "CL;status;how"
    where how is "iter" (b"abcdef", b"gh"), "write" (write(b"abcdef")),
    "short" (b"abc") or "empty"."""
    cl, status, how = environ["QUERY_STRING"].split(";")
    write = start_response(status.replace("%20", " "),
                           [("Content-Length", cl)])
    if how == "write":
        write(b"abcdef")
        return []
    body = {"iter": [b"abcdef", b"gh"], "short": [b"abc"], "empty": []}[how]
    return Closing(environ, body)

"""hello - the smallest useful WSGI app for fcgi-pm's integration tests.

Routes (the path is PATH_INFO, so they work at any mount point):
  GET  /...            200, JSON with the interesting environ bits, pid, interpreter id
  POST /...            200, the request body echoed back (Content-Type kept)
  GET  /slow?s=N       sleeps N seconds (float, at most 60) then answers like GET
  GET  /crash          raises RuntimeError (the gateway must answer 500 and log it)
  GET  /env?name=K     the value of os.environ[K] as text (pool `env` reaches the app)
  GET  /big?n=N        N bytes of 'x' (streamed in 64 KiB chunks)
"""
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs

try:
    import _xxsubinterpreters as _subinterp     # CPython 3.11: interpreter ids
except ImportError:                             # pragma: no cover
    _subinterp = None

STARTED = time.time()
ENVIRON_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
                "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT",
                "SERVER_PROTOCOL", "REMOTE_ADDR", "REQUEST_URI", "HTTP_HOST",
                "HTTPS", "REQUEST_START", "wsgi.url_scheme", "wsgi.multithread",
                "wsgi.multiprocess", "wsgi.run_once")


def _interpreter_id():
    if _subinterp is None:
        return None
    try:
        return int(_subinterp.get_current())
    except Exception:                           # pragma: no cover
        return None


def _json(start_response, obj, status="200 OK"):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _read_body(environ):
    try:
        n = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        n = 0
    stream = environ["wsgi.input"]
    chunks = []
    while n > 0:
        c = stream.read(min(n, 65536))
        if not c:
            break
        chunks.append(c)
        n -= len(c)
    return b"".join(chunks)


def _big(n):
    chunk = b"x" * 65536
    while n > 0:
        yield chunk[:n]
        n -= len(chunk)


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    method = environ.get("REQUEST_METHOD", "GET")

    if path.endswith("/crash"):
        raise RuntimeError("hello: /crash was requested")

    if path.endswith("/slow"):
        time.sleep(min(float(query.get("s", ["1"])[0]), 60.0))

    if path.endswith("/env"):
        name = query.get("name", [""])[0]
        body = os.environ.get(name, "").encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    if path.endswith("/big"):
        n = int(query.get("n", ["0"])[0])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n))])
        return _big(n)

    if method == "POST":
        body = _read_body(environ)
        start_response("200 OK", [
            ("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
            ("Content-Length", str(len(body))),
            ("X-Hello-Pid", str(os.getpid()))])
        return [body]

    info = {k: environ.get(k) for k in ENVIRON_KEYS}
    info.update(pid=os.getpid(), interpreter=_interpreter_id(),
                thread=threading.current_thread().name,
                python=sys.version.split()[0], executable=sys.executable,
                cwd=os.getcwd(), uptime=round(time.time() - STARTED, 3))
    return _json(start_response, info)

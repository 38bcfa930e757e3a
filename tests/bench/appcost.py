#!/usr/bin/python3
"""The app's own CPU cost per request, with no server at all: call
benchapp.application directly in a loop (environ built once per call, as
small as a server would pass) and print {"app": µs per request} as JSON.

bench.py subtracts this from each server's CPU per request, which leaves
what the server itself adds (protocol, environ, I/O, process management).
"""
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "app"))
import benchapp  # noqa: E402

POST = b"0123456789abcdef" * 1024
PATHS = {"hello": "/hello", "django": "/django/", "big": "/big", "echo": "/echo"}


def environ(app):
    e = {"REQUEST_METHOD": "POST" if app == "echo" else "GET", "PATH_INFO": PATHS[app],
         "SCRIPT_NAME": "", "QUERY_STRING": "", "SERVER_NAME": "localhost",
         "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1",
         "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
         "wsgi.input": io.BytesIO(POST if app == "echo" else b""), "wsgi.errors": sys.stderr,
         "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False}
    if app == "echo":
        e["CONTENT_LENGTH"] = str(len(POST))
        e["CONTENT_TYPE"] = "application/octet-stream"
    return e


def cost(app, seconds):
    def start_response(status, headers, exc_info=None):
        return None
    for _ in range(50):   # warm-up
        b"".join(benchapp.application(environ(app), start_response))
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        for _ in range(20):
            it = benchapp.application(environ(app), start_response)
            for _chunk in it:
                pass
            if hasattr(it, "close"):
                it.close()
        n += 20
    return (time.process_time() - t0) / n * 1e6


if __name__ == "__main__":
    secs = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    apps = sys.argv[2].split(",") if len(sys.argv) > 2 else list(PATHS)
    print(json.dumps({a: round(cost(a, secs), 2) for a in apps}))

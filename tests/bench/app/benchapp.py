"""The WSGI application every Python server under test runs.

One entry point, routed on PATH_INFO, so each server is started once and
serves all four scenarios:
  /hello    "Hello, World!" (14 bytes)
  /big      a 64 KiB body
  /echo     POST: the request body echoed back
  /django/  a Django 3.2 page rendering a template (benchsite, no database)
"""
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchsite.settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from django.core.wsgi import get_wsgi_application  # noqa: E402

django_app = get_wsgi_application()

HELLO = b"Hello, World!\n"
BIG = (b"0123456789abcdef" * 4096)  # 65536 bytes
assert len(BIG) == 65536


def application(environ, start_response):
    path = environ.get("PATH_INFO") or environ.get("REQUEST_URI", "/").split("?")[0]
    if path == "/hello":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(HELLO)))])
        return [HELLO]
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(BIG)))])
        return [BIG]
    if path == "/echo":
        try:
            n = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            n = 0
        body = environ["wsgi.input"].read(n) if n > 0 else b""
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return django_app(environ, start_response)

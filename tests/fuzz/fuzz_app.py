"""fuzz_app - the WSGI app fuzz_environ drives: it checks what PEP 3333
promises about the environ the gateway built from fuzzed params, reads
wsgi.input in a way chosen by the input, and answers.  A broken promise
calls os.abort(), which libFuzzer reports as a crash with the input."""
import os
import sys

REQUIRED = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING",
            "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL")


def fail(what):
    sys.stderr.write("fuzz_app: %s\n" % what)
    sys.stderr.flush()
    os.abort()


def application(environ, start_response):
    if type(environ) is not dict:
        fail("environ is a %r" % type(environ))
    for k, v in environ.items():
        if type(k) is not str:
            fail("key %r is not str" % (k,))
        if not k.startswith("wsgi."):
            if type(v) is not str:
                fail("%s is a %r, not str" % (k, type(v)))
            v.encode("latin-1")         # native strings: latin-1 only
    for k in REQUIRED:
        if k not in environ and k not in ("SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
                                          "QUERY_STRING"):
            fail("%s missing" % k)
    # SCRIPT_NAME and PATH_INFO are what the web server split (the gateway
    # trusts it, fixing only a SCRIPT_NAME that ends in '/'): no check here
    if environ.get("wsgi.url_scheme") not in ("http", "https"):
        fail("wsgi.url_scheme %r" % environ.get("wsgi.url_scheme"))
    if environ.get("wsgi.version") != (1, 0):
        fail("wsgi.version %r" % (environ.get("wsgi.version"),))
    if "HTTP_CONTENT_TYPE" in environ or "HTTP_CONTENT_LENGTH" in environ:
        fail("HTTP_CONTENT_* in environ")
    inp = environ["wsgi.input"]
    mode = len(environ.get("HTTP_X_MODE", "")) % 4
    if mode == 0:
        body = inp.read()
    elif mode == 1:
        body = b"".join(iter(lambda: inp.read(7), b""))
    elif mode == 2:
        body = b"".join(inp.readlines(100))
        body += inp.read()
    else:
        body = b"".join(inp)
    cl = environ.get("CONTENT_LENGTH", "")
    if cl.isdigit() and cl.isascii() and len(body) > int(cl):
        fail("read %d bytes past CONTENT_LENGTH %s" % (len(body), cl))
    if len(body) == 1:                  # exercise wsgi.errors, rarely (it logs)
        environ["wsgi.errors"].write("fuzz %r\n" % body)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body[:100], environ.get("PATH_INFO", "").encode("latin-1")]

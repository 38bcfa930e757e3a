"""pmapp - views for the process manager's integration tests (test_pm.py).

Routes (on PATH_INFO's last component):
  GET /pid                 200, this worker's pid as text
  GET /sleep?s=N           sleeps N seconds (float) in pm_sleeping_view, then /pid
  GET /spin?s=N            runs Python code for N seconds in pm_spinning_view
                           (holds the GIL: the slowlog must still get a stack)
  GET /grow?mb=N           keeps N more MiB alive in this worker (max_rss)
  GET /inheritable         the fds of this worker (beyond 0-2) that a program
                           it runs would inherit, as text: "3 4"
"""
import os
import time
from urllib.parse import parse_qs

_hoard = []


def _text(start_response, body, status="200 OK"):
    body = body.encode()
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body))),
                            ("X-Pid", str(os.getpid()))])
    return [body]


def pm_sleeping_view(seconds):
    time.sleep(seconds)


def pm_spinning_view(seconds):
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    return n


def _inheritable(fd):
    try:
        return os.get_inheritable(fd)
    except OSError:         # the listdir's own fd, closed by now
        return False


def application(environ, start_response):
    path = environ.get("PATH_INFO", "").rstrip("/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    arg = lambda k, d: float(query.get(k, [d])[0])
    if path.endswith("/sleep"):
        pm_sleeping_view(min(arg("s", "1"), 120.0))
    elif path.endswith("/spin"):
        pm_spinning_view(min(arg("s", "1"), 120.0))
    elif path.endswith("/inheritable"):
        fds = sorted(int(f) for f in os.listdir("/proc/self/fd"))
        inherit = [fd for fd in fds if fd > 2 and _inheritable(fd)]
        return _text(start_response, " ".join(map(str, inherit)) + "\n")
    elif path.endswith("/grow"):
        # touch every page so it counts in the RSS
        _hoard.append(bytearray(b"x" * int(arg("mb", "1") * 1024 * 1024)))
    return _text(start_response, "%d\n" % os.getpid())

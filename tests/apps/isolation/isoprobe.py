"""isoprobe - a WSGI app that reports what a worker process looks like from
inside, for the isolation and preload tests.

Routes (PATH_INFO):
  /info             JSON: pid, uid/gid/groups, umask, cwd, rlimits, sys.path,
                    sys.prefix, the environment, VERSION, the import-time pid
  /import?name=M    JSON: import M; its __file__ and its VALUE attribute
  /print?text=T     print T to stdout and "stderr: T" to stderr, answer "ok"
  /fork?s=N         JSON after sleeping N s: pid, this process's first
                    random.random() (drawn on its first /fork request), the
                    thread count threading sees and the main thread's name

At import time (module level), steered by the environment:
  ISOPROBE_IMPORT_LOG=FILE   append "PID\\n" to FILE (counts the imports)
  ISOPROBE_VERSION_FILE=F    VERSION is F's content (new code on restart)
  ISOPROBE_FAIL=1            raise ImportError (an app that cannot load)
  ISOPROBE_THREAD=1          start a thread (preload must refuse it)
"""
import json
import os
import random
import resource
import sys
import threading
import time
from urllib.parse import parse_qs

IMPORT_PID = os.getpid()

if os.environ.get("ISOPROBE_FAIL") == "1":
    raise ImportError("isoprobe: ISOPROBE_FAIL=1 (a broken deploy)")

if os.environ.get("ISOPROBE_IMPORT_LOG"):
    with open(os.environ["ISOPROBE_IMPORT_LOG"], "a") as _f:
        _f.write("%d\n" % IMPORT_PID)

VERSION = ""
if os.environ.get("ISOPROBE_VERSION_FILE"):
    with open(os.environ["ISOPROBE_VERSION_FILE"]) as _f:
        VERSION = _f.read().strip()

if os.environ.get("ISOPROBE_THREAD") == "1":
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()


FIRST_RANDOM = None


def _status():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def _json(start_response, obj):
    body = json.dumps(obj, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))

    if path.endswith("/import"):
        name = query.get("name", [""])[0]
        try:
            mod = __import__(name)
            res = {"ok": True, "file": getattr(mod, "__file__", None),
                   "value": getattr(mod, "VALUE", None)}
        except Exception as e:
            res = {"ok": False, "error": repr(e)}
        return _json(start_response, res)

    if path.endswith("/fork"):
        global FIRST_RANDOM
        if FIRST_RANDOM is None:
            FIRST_RANDOM = random.random()
        time.sleep(min(float(query.get("s", ["0"])[0]), 30.0))
        return _json(start_response, {
            "pid": os.getpid(), "first_random": FIRST_RANDOM,
            "threads": threading.active_count(),
            "main_thread": threading.main_thread().name,
            "current_is_main": threading.current_thread() is threading.main_thread()})

    if path.endswith("/print"):
        text = query.get("text", [""])[0]
        print(text)
        sys.stderr.write("stderr: %s\n" % text)
        sys.stderr.flush()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    st = _status()
    mask = os.umask(0)
    os.umask(mask)
    info = {
        "pid": os.getpid(),
        "import_pid": IMPORT_PID,
        "version": VERSION,
        "uid": [int(x) for x in st["Uid"].split()],
        "gid": [int(x) for x in st["Gid"].split()],
        "groups": [int(x) for x in st.get("Groups", "").split()],
        "umask": mask,
        "cwd": os.getcwd(),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "sys_path": sys.path,
        "prefix": sys.prefix,
        "environ": dict(os.environ),
        "threads": threading.active_count(),
    }
    return _json(start_response, info)

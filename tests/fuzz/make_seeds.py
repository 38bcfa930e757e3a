#!/usr/bin/python3
"""make_seeds.py - (re)write the small seed corpora in tests/fuzz/corpus/
from the FastCGI client the integration tests use and the example
configurations.  Run from anywhere; the files are committed."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
import fcgiclient as fc     # noqa: E402


def begin(rid, keep=False, role=1):
    return fc.rec(fc.BEGIN, rid, struct.pack("!HB5x", role, 1 if keep else 0))


def req(rid=1, params=None, body=b"", keep=False, eof=True):
    p = {"REQUEST_METHOD": "POST" if body else "GET", "CONTENT_LENGTH": str(len(body)),
         "QUERY_STRING": "a=1", "REQUEST_URI": "/app/x?a=1", "SCRIPT_NAME": "/app/x",
         "DOCUMENT_URI": "/app/x", "SERVER_NAME": "localhost", "SERVER_PORT": "80",
         "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "localhost"}
    p.update(params or {})
    return begin(rid, keep) + fc.params_records(rid, p) + fc.stdin_records(rid, body, eof)


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    d = os.path.join(HERE, "corpus", "fcgi")
    write(d, "get", req())
    write(d, "post", req(body=b"hello=world&x=%ff", params={
        "CONTENT_TYPE": "application/x-www-form-urlencoded", "HTTP_X_MODE": "ab"}))
    write(d, "keep-pipelined", req(1, keep=True) + req(2, keep=True, body=b"abc\ndef\n")
          + req(3))
    write(d, "get-values", fc.rec(fc.GET_VALUES, 0, b"".join(
        fc.nv(n, "") for n in ("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS")))
          + req())
    write(d, "abort", begin(1, True) + fc.params_records(1, {"CONTENT_LENGTH": "100"})
          + fc.rec(fc.STDIN, 1, b"x" * 10) + fc.rec(fc.ABORT, 1) + req(2))
    write(d, "unknown-type", fc.rec(42, 0, b"hi") + fc.rec(fc.DATA, 1, b"d") + req())
    write(d, "unknown-role", begin(1, True, role=2) + fc.params_records(1, {"A": "b"}) + req(2))
    write(d, "mpx", begin(1, True) + fc.params_records(1, {"CONTENT_LENGTH": "3"})
          + fc.rec(fc.STDIN, 1, b"abc") + begin(2) + fc.params_records(2, {})
          + fc.rec(fc.STDIN, 1))
    write(d, "short-body", req(params={"CONTENT_LENGTH": "1000"}, body=b"short"))
    write(d, "latin1-path", req(params={"SCRIPT_NAME": "/caf\xe9/%2F", "PATH_INFO": "/x\xff",
                                        "REQUEST_URI": "/caf%C3%A9/%2F/x%FF?q=\xe9",
                                        "HTTPS": "on", "HTTP_CONTENT_TYPE": "t/x"}))
    write(d, "long-lengths", begin(1) + fc.rec(fc.PARAMS, 1, fc.nv("X" * 200, "v" * 300)
                                             + fc.nv("", "")) + fc.rec(fc.PARAMS, 1)
          + fc.rec(fc.STDIN, 1))

    d = os.path.join(HERE, "corpus", "conf")
    write(d, "example.conf", open(os.path.join(SRC, "etc", "fcgi-pm.conf"), "rb").read())
    write(d, "pool.conf", b"""# main file with a pool
error_log = "stderr"
log_level = debug
pid_file = "/tmp/x.pid"
process_control_timeout = 5s
emergency_restart_threshold = 3
emergency_restart_interval = 1m
pool site {
  listen = "127.0.0.1:9001"
  listen_allowed_clients = {"127.0.0.1", "::1"}
  user = "nobody"
  group = "nogroup"
  umask = 0027
  chdir = "/srv/$pool"
  env = {"A=1", "DJANGO_SETTINGS_MODULE=site.settings"}
  module = "site.wsgi:application"
  python_path = {"/srv/site/src"}
  pm = dynamic
  max_children = 8
  start_servers = 2
  min_spare = 1
  max_spare = 3
  threads = 4
  max_requests = 5000
  max_requests_jitter = 50
  max_rss = 512M
  rlimit_files = 4096
  rlimit_core = 0
  request_terminate_timeout = 60s
  request_slowlog_timeout = 5s
  slowlog = "/tmp/slow.log"
  queue_timeout = 2s
  read_timeout = 30s
  keepalive_timeout = 75s
}
pool other { listen = "/tmp/other.sock"  listen_mode = 0660  module = "o:app"  pm = ondemand
  max_children = 2  process_idle_timeout = 10s  preload = yes  clear_env = no }
""")


if __name__ == "__main__":
    main()

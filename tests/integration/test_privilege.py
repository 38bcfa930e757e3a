"""test_privilege - least privilege, as root (skipped otherwise): the
master makes each pool's socket with its owner and mode before any worker
starts; workers hold no root identity at all (real, effective, saved and
file-system ids, no capabilities, no supplementary groups) and none of the
master's descriptors (other pools' sockets, its log, pid file, status
socket); the status socket refuses users it should; a TCP pool with
listen_allowed_clients closes other peers at once.

test_isolation.py proves the pool's user, group, umask and limits as the
app sees them, and the refusal of root pools without allow_root;
test_sockets.py the socket owner and mode after start-up.  Not repeated.
"""
import grp
import os
import pwd
import socket
import subprocess
import time

import harness
from harness import FcgiPm, Pool, Raw
import fcgiclient as fc

USER, GROUP = "nobody", "nogroup"
HELLO = os.path.join(harness.APPS, "hello")


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)


def fd_targets(pid):
    out = {}
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            out[int(fd)] = os.readlink(os.path.join(d, fd))
        except OSError:
            pass
    return out


def socket_inode(path):
    """The inode of the socket listening at PATH, from /proc/net/unix."""
    with open("/proc/net/unix") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path:
                return parts[6]
    return None


def as_user(user, code, timeout=20):
    """Run python CODE as USER (its own groups); return (status, output)."""
    pw = pwd.getpwnam(user)

    def drop():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    p = subprocess.run([harness.PYTHON, "-c", code], preexec_fn=drop, cwd="/",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


STATUS_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1] if len(sys.argv) > 1 else %r)
s.sendall(%r)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode("utf-8", "replace"))
"""


@harness.unittest.skipUnless(harness.IS_ROOT, "needs root")
class Privilege(harness.TestCase):

    def setUp(self):
        super().setUp()
        try:
            self.pw = pwd.getpwnam(USER)
            self.gr = grp.getgrnam(GROUP)
        except KeyError:
            self.skipTest("no user %s / group %s" % (USER, GROUP))
        self.probe_dir = os.path.join(self.tmp, "probe")
        os.makedirs(self.probe_dir)
        os.chmod(self.probe_dir, 0o777)

    def wrapper(self, socks):
        """A worker_binary that records, as the worker starts, its pool, each
        socket's owner, group and mode and its own ids (one file per worker),
        then execs the real worker."""
        path = os.path.join(self.tmp, "worker-wrapper")
        lines = ["#!/bin/sh", 'pool=; prev=',
                 'for a in "$@"; do [ "$prev" = --pool ] && pool=$a; prev=$a; done',
                 "{ echo \"pool $pool\"; stat -c '%%n %%u %%g %%a' %s; "
                 "echo \"ids $(id -u) $(id -g) $(id -G)\"; } > '%s/at-start.'$$ 2>&1"
                 % (" ".join("'%s'" % x for x in socks), self.probe_dir),
                 'exec "%s" "$@"' % harness.FCGI_PM_WORKER]
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(path, 0o755)
        return path

    def two_pools(self, **main):
        a = Pool("a", "hello:application", python_path=[HELLO], user=USER, group=GROUP,
                 allow_root=None, listen_owner=USER, listen_group=GROUP,
                 listen_mode=Raw("0660"), max_children=2)
        b = Pool("b", "hello:application", python_path=[HELLO], user=USER, group=GROUP,
                 allow_root=None, listen_owner="root", listen_group=GROUP,
                 listen_mode=Raw("0640"), max_children=1)
        a.listen = os.path.join(self.tmp, "a.sock")
        b.listen = os.path.join(self.tmp, "b.sock")
        opts = {"worker_binary": self.wrapper([a.listen, b.listen])}
        opts.update(main)
        return self.fcgi_pm([a, b], main_options=opts)

    def test_sockets_have_owner_and_mode_before_any_worker_starts(self):
        pm = self.two_pools()
        pm.wait_workers(None, 3)
        records = lambda: [os.path.join(self.probe_dir, f) for f in os.listdir(self.probe_dir)]
        harness.wait_until(lambda: len(records()) >= 3, 10, what="the wrappers' records")
        want = {"a": "%s %d %d 660" % (pm.socket("a"), self.pw.pw_uid, self.gr.gr_gid),
                "b": "%s 0 %d 640" % (pm.socket("b"), self.gr.gr_gid)}
        seen = set()
        for r in records():
            text = harness.wait_until(lambda: (lambda t: t if "ids " in t else None)(
                open(r).read()), 5, what="a complete record")
            lines = text.splitlines()
            pool = lines[0].split()[1]
            seen.add(pool)
            # the worker's own socket was there, owned and moded, when it started
            self.assertIn(want[pool], lines, text)
            self.assertEqual(lines[-1].split()[1:],
                             [str(self.pw.pw_uid), str(self.gr.gr_gid), str(self.gr.gr_gid)],
                             text)
        self.assertEqual(seen, {"a", "b"})

    def test_workers_hold_no_root_identity_and_no_capabilities(self):
        pm = self.two_pools()
        pids = pm.wait_workers(None, 3)
        for pid in pids:
            st = proc_status(pid)
            self.assertEqual(st["Uid"].split(), [str(self.pw.pw_uid)] * 4, (pid, st["Uid"]))
            self.assertEqual(st["Gid"].split(), [str(self.gr.gr_gid)] * 4, (pid, st["Gid"]))
            self.assertIn(st["Groups"].split(), ([], [str(self.gr.gr_gid)]), (pid, st["Groups"]))
            self.assertEqual(int(st["CapEff"], 16), 0, (pid, st["CapEff"]))
            self.assertEqual(int(st["CapPrm"], 16), 0, (pid, st["CapPrm"]))

    def test_workers_hold_none_of_the_masters_descriptors(self):
        status = os.path.join(self.tmp, "status.sock")
        pm = self.two_pools(status_socket=status)
        pids_a = pm.wait_workers("a", 2)
        pm.wait_workers(None, 3)
        inode_b = socket_inode(pm.socket("b"))
        inode_st = socket_inode(status)
        self.assertIsNotNone(inode_b)
        for pid in pids_a:
            fds = fd_targets(pid)
            targets = set(fds.values())
            self.assertNotIn("socket:[%s]" % inode_b, targets, "pool b's socket in a worker of a")
            if inode_st:
                self.assertNotIn("socket:[%s]" % inode_st, targets, "the status socket")
            for t in targets:
                self.assertNotIn(self.tmp + "/fcgi-pm.log", t)
                self.assertNotIn("fcgi-pm.pid", t)
            # fd 0 is its own pool's socket
            self.assertEqual(fds[0], "socket:[%s]" % socket_inode(pm.socket("a")))

    def test_status_socket_refuses_users_it_should(self):
        status = os.path.join(self.tmp, "status.sock")
        pm = self.fcgi_pm([harness.hello_pool()], main_options={
            "status_socket": status, "status_mode": Raw("0666")})
        harness.wait_until(lambda: os.path.exists(status), 10, what="the status socket")
        code = STATUS_CLIENT % (status, b"status\n")
        rc, out = as_user("root", code)
        self.assertIn("hello", out)
        rc, out = as_user(USER, code)
        self.assertIn("permission denied", out)
        self.assertNotIn("hello", out.replace("permission", ""))
        pm.wait_log(r"status socket: refused .*nobody")
        # over HTTP too
        rc, out = as_user(USER, STATUS_CLIENT % (status, b"GET /status HTTP/1.0\r\n\r\n"))
        self.assertIn("403", out)

    def test_status_allow_users_may_read_but_not_control(self):
        status = os.path.join(self.tmp, "status.sock")
        pm = self.fcgi_pm([harness.hello_pool()], main_options={
            "status_socket": status, "status_mode": Raw("0666"),
            "status_allow_users": [USER]})
        harness.wait_until(lambda: os.path.exists(status), 10, what="the status socket")
        rc, out = as_user(USER, STATUS_CLIENT % (status, b"status\n"))
        self.assertIn("hello", out)
        for cmd in (b"stop\n", b"reload\n", b"restart\n"):
            rc, out = as_user(USER, STATUS_CLIENT % (status, cmd))
            self.assertIn("permission denied", out, cmd)
        time.sleep(0.3)
        self.assertTrue(pm.proc.running(), "a refused stop stopped the master")

    def test_tcp_pool_closes_peers_not_in_listen_allowed_clients(self):
        port = harness.free_port()
        pm = self.fcgi_pm([harness.hello_pool(listen="127.0.0.1:%d" % port,
                                              listen_allowed_clients=["127.0.0.2"])])
        pm.wait_workers("hello", 2)
        s = socket.create_connection(("127.0.0.1", port), timeout=5,
                                     source_address=("127.0.0.1", 0))
        t0 = time.monotonic()
        s.settimeout(5)
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        self.assertLess(time.monotonic() - t0, 1.0, "not closed at once")
        s.close()
        pm.wait_log(r"connection from 127\.0\.0\.1 refused")
        s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                     source_address=("127.0.0.2", 0))
        fc.request(s, params={"SCRIPT_NAME": "", "PATH_INFO": "/", "REQUEST_URI": "/",
                              "SERVER_NAME": "x", "SERVER_PORT": "80",
                              "SERVER_PROTOCOL": "HTTP/1.1"})
        out, _, _, proto = fc.response(s)
        s.close()
        self.assertEqual(proto, 0)
        self.assertIn(b'"pid"', out)          # hello's JSON answer


if __name__ == "__main__":
    harness.main()

"""./demo.sh --check, the README's first quick-start command, on free ports
with the build dir meson is testing: both sites answer, then it stops
everything and removes its temp dir."""
import glob
import os
import socket
import subprocess

import harness


def two_free_ports():
    """P such that P and P+1 are both free on 127.0.0.1."""
    for _ in range(50):
        p = harness.free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise harness.HarnessError("no two consecutive free ports")


class Demo(harness.TestCase):

    def test_demo_check_serves_both_sites_and_cleans_up(self):
        if not os.access(harness.NGINX, os.X_OK):
            self.skipTest("nginx is not installed")
        before = set(glob.glob("/tmp/fcgi-pm-demo.*"))
        port = two_free_ports()
        env = dict(os.environ, DEMO_PORT=str(port),
                   BUILD_DIR=os.path.relpath(harness.BUILD, harness.SRC))
        log = os.path.join(self.tmp, "demo.log")
        with open(log, "wb") as f:
            p = subprocess.run([os.path.join(harness.SRC, "demo.sh"), "--check"],
                               cwd=harness.SRC, env=env, stdin=subprocess.DEVNULL,
                               stdout=f, stderr=subprocess.STDOUT, timeout=120)
        out = open(log, errors="replace").read()
        self.assertEqual(p.returncode, 0, out[-4000:])
        self.assertIn("demo check: all pages OK", out)
        self.assertIn("http://127.0.0.1:%d/" % port, out)
        self.assertIn("200 http://127.0.0.1:%d/products.xml" % (port + 1), out)
        self.assertEqual(set(glob.glob("/tmp/fcgi-pm-demo.*")) - before, set(),
                         "demo left its temp dir behind")
        for q in (port, port + 1):
            self.assertFalse(harness.can_connect(("127.0.0.1", q)), "port %d still open" % q)


if __name__ == "__main__":
    harness.main()

#!/usr/bin/python3
"""What one more worker costs, with and without preload (issue 7's memory
target), for fcgi-pm, uWSGI and gunicorn behind nginx.

For each server and mode it starts the server with N = 1 and with N = 4
worker processes (1 thread each), alone on the machine's benchmark side
(one server at a time, its own nginx), sends the same warm-up traffic
(Django page, then hello world, twice), and reads every process's PSS and
USS from /proc/PID/smaps_rollup.  It also counts the distinct physical
pages of the server's process tree from /proc/PID/pagemap (root only):
unlike PSS, that does not depend on what else runs on the machine.

    /usr/bin/python3 tests/bench/memory.py [--quick] [--out DIR]
    tests/bench/run.sh --memory [--quick] [--out DIR]

Writes memory.md and memory.json into --out (default tests/bench/).
Reuses bench.py's server classes, nginx config and helpers.
"""
import argparse
import datetime
import glob
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

HERE = bench.HERE
REPO = bench.REPO
PAGE = os.sysconf("SC_PAGE_SIZE")
KEYS = {"fcgi-pm": bench.FcgiPm, "uwsgi": bench.UwsgiNative, "gunicorn": bench.Gunicorn}
MODE_NAMES = {  # (server, preload) -> how that server calls the mode
    ("fcgi-pm", False): "`preload = no`", ("fcgi-pm", True): "`preload = yes`",
    ("uwsgi", False): "`--lazy-apps`", ("uwsgi", True): "default (app loaded in the master)",
    ("gunicorn", False): "default", ("gunicorn", True): "`--preload`",
}
TARGET = 0.40
log = bench.log


# ------------------------------------------------------------ measurement

def smaps_rollup(pid):
    vals = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                vals[k] = int(rest.split()[0])
    return vals


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def pagemap(pid):
    """{virtual page number: PFN} of every present page of PID (root only:
    the PFNs read as 0 otherwise)."""
    out = {}
    with open("/proc/%d/maps" % pid) as maps, open("/proc/%d/pagemap" % pid, "rb") as pm:
        for line in maps:
            rng = line.split()[0]
            if line.rstrip().endswith("[vsyscall]"):
                continue
            lo, hi = (int(x, 16) for x in rng.split("-"))
            n = (hi - lo) // PAGE
            pm.seek(lo // PAGE * 8)
            data = pm.read(n * 8)
            vpn = lo // PAGE
            for i, (e,) in enumerate(struct.iter_unpack("<Q", data)):
                if e >> 63:                 # present
                    pfn = e & ((1 << 55) - 1)
                    if pfn:
                        out[vpn + i] = pfn
    return out


def distinct_kib(pids):
    """Physical memory the tree maps, each page once (KiB); None unless root."""
    if os.geteuid() != 0:
        return None
    pfns = set()
    for p in pids:
        try:
            pfns.update(pagemap(p).values())
        except OSError:
            pass
    return len(pfns) * PAGE // 1024


def classify(server_key, root, pids):
    """pid -> role: master, preload, worker."""
    roles = {}
    for p in pids:
        if p == root:
            roles[p] = "master"
        elif server_key == "fcgi-pm" and "--preload=" in cmdline(p):
            roles[p] = "preload"
        else:
            roles[p] = "worker"
    return roles


def snapshot(server_key, root, pids):
    roles = classify(server_key, root, pids)
    procs = []
    for p in pids:
        try:
            v = smaps_rollup(p)
        except OSError:
            continue
        procs.append({"pid": p, "role": roles[p], "pss": v.get("Pss", 0),
                      "uss": v.get("Private_Clean", 0) + v.get("Private_Dirty", 0),
                      "rss": v.get("Rss", 0), "anon": v.get("Anonymous", 0)})
    return {"procs": procs, "pss": sum(x["pss"] for x in procs),
            "distinct": distinct_kib([x["pid"] for x in procs])}


def wrk(port, path, seconds, conns):
    url = "http://127.0.0.1:%d%s" % (port, path)
    argv = ["wrk", "-t", "1", "-c", str(conns), "-d", "%ds" % seconds, "--timeout", "10s",
            "-s", os.path.join(bench.LUADIR, "report.lua"), url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                       env=dict(os.environ, BENCH_LUA_DIR=bench.LUADIR))
    for line in r.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            res = json.loads(line[len("BENCHJSON "):])
            res["errors"] = (res["status"] + res["connect"] + res["read"] + res["write"]
                             + res["timeout"])
            return res
    raise RuntimeError("wrk failed: " + (r.stderr or r.stdout).strip()[-300:])


def warm_pass(port, workers, a):
    """Django page then hello world; per worker, its share of the Django
    requests estimated from its share of the workers' CPU time."""
    t0 = bench.cpu_ticks(workers)
    d = wrk(port, "/django/", a.django_s, a.connections)
    t1 = bench.cpu_ticks(workers)
    h = wrk(port, "/hello", a.hello_s, a.connections)
    cpu = {p: t1.get(p, 0) - t0.get(p, 0) for p in workers}
    tot = sum(cpu.values())
    est = {p: (d["requests"] * c / tot if tot else 0) for p, c in cpu.items()}
    return {"django": d["requests"], "hello": h["requests"],
            "errors": d["errors"] + h["errors"], "per_worker": est}


# ------------------------------------------------------------------ runs

EXPERIMENTS = {
    "render": "the Django page rendered once at import",
    "nogc": "`gc.disable()` while importing, `gc.enable()` in each worker "
            "(`os.register_at_fork`)",
    "nogc+render": "both: `gc.disable()` while importing, the Django page rendered once "
                   "at import, `gc.enable()` in each worker",
}


def warm_app_dir(tmp, variant):
    """An app dir whose benchapp.py wraps the real one for an experiment:
    'render' renders the Django page once at import (so a preload process
    holds the URLconf, views and compiled templates before it forks);
    'nogc' disables the cyclic GC while importing (no freed holes in the
    parent's arenas for the workers to fill) and re-enables it in each
    worker, which writes gc-PID files into TMP to prove it."""
    d = os.path.join(tmp, "warmapp")
    os.makedirs(d)
    os.symlink(os.path.join(bench.APPDIR, "benchsite"), os.path.join(d, "benchsite"))
    code = ["# written by tests/bench/memory.py: benchapp wrapped for '%s'" % variant,
            "import importlib.util, io, os, gc"]
    if "nogc" in variant:
        code += ["gc.disable()",
                 "def _child():",
                 "    gc.enable()",
                 "    with open(os.path.join(%r, 'gc-%%d' %% os.getpid()), 'w') as f:" % tmp,
                 "        f.write(str(gc.isenabled()))",
                 "os.register_at_fork(after_in_child=_child)"]
    code += ["_spec = importlib.util.spec_from_file_location('benchapp_real', %r)"
             % os.path.join(bench.APPDIR, "benchapp.py"),
             "_real = importlib.util.module_from_spec(_spec)",
             "_spec.loader.exec_module(_real)",
             "application = _real.application"]
    if "render" in variant:
        code += ["_env = {'PATH_INFO': '/django/', 'REQUEST_METHOD': 'GET', "
                 "'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'wsgi.input': io.BytesIO(), "
                 "'wsgi.url_scheme': 'http', 'QUERY_STRING': '', 'HTTP_HOST': 'localhost'}",
                 "b''.join(application(_env, lambda s, h, e=None: None))"]
    with open(os.path.join(d, "benchapp.py"), "w") as f:
        f.write("\n".join(code) + "\n")
    return d


def run_one(a, key, preload, n, warm_app=""):
    """Start KEY with N workers, warm it up, measure, stop.  Returns a dict."""
    bench.WORKERS = n
    ctx = bench.Ctx()
    ctx.args = argparse.Namespace(preload=preload, fcgi_pm_standalone=False,
                                  fcgi_pm_standalone_fallback=False,
                                  upstream_keepalive=4, nginx_workers=2)
    ctx.build_status = a.build_status
    ctx.tmp = tempfile.mkdtemp(prefix="fcgi-pm-memory-")
    ctx.nginx = None
    appdir = bench.APPDIR
    res = {"server": key, "preload": preload, "n": n, "warm_app": warm_app}
    srv = None
    try:
        if warm_app:
            bench.APPDIR = warm_app_dir(ctx.tmp, warm_app)
        srv = KEYS[key](ctx)
        ctx.servers = [srv]
        ctx.servers_by_key = {srv.key: srv}
        srv.start()
        if srv.unavailable:
            raise RuntimeError(srv.unavailable)
        srv.port = a.base_port
        bench.free_port_check([srv.port])
        conf = os.path.join(ctx.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(bench.nginx_conf(ctx))
        errlog = os.path.join(ctx.tmp, "nginx-error.log")
        ctx.nginx = bench.Proc("nginx", ["nginx", "-c", conf, "-p", ctx.tmp, "-e", errlog], ctx.tmp)
        deadline = time.time() + 30
        why = "not started"
        while time.time() < deadline:
            why = bench.check_cell(srv, "django") or bench.check_cell(srv, "hello")
            if not why:
                break
            time.sleep(0.3)
        if why:
            raise RuntimeError("check failed: " + why)
        root = srv.procs[0].pid
        # every worker up (the check above may have been answered by the first)
        deadline = time.time() + 20
        while time.time() < deadline:
            roles = classify(key, root, srv.pids())
            if sum(1 for r in roles.values() if r == "worker") >= n:
                break
            time.sleep(0.2)
        workers = [p for p, r in classify(key, root, srv.pids()).items() if r == "worker"]
        res["workers_seen"] = len(workers)
        res["passes"] = []
        for i in range(a.passes):
            w = warm_pass(srv.port, workers, a)
            time.sleep(0.3)
            snap = snapshot(key, root, srv.pids())
            w.update(snap)
            res["passes"].append(w)
            log("%-8s %-7s N=%d%s pass %d: %d django + %d hello, err %d, min/worker ~%d django; "
                "PSS %.1f MiB, distinct %s MiB"
                % (key, "preload" if preload else "lazy", n, " " + warm_app if warm_app else "",
                   i + 1, w["django"], w["hello"], w["errors"], min(w["per_worker"].values()),
                   snap["pss"] / 1024.0,
                   "%.1f" % (snap["distinct"] / 1024.0) if snap["distinct"] is not None else "-"))
        if a.keep_smaps and key == "fcgi-pm":
            res["smaps"] = collect_smaps(res["passes"][-1]["procs"], ctx.tmp, a, key, preload, n,
                                         warm_app)
        if preload and n == 4:
            res["cow"] = cow_breakdown(key, root, srv.pids())
        if "nogc" in warm_app:
            flags = []
            for fn in glob.glob(os.path.join(ctx.tmp, "gc-*")):
                with open(fn) as f:
                    flags.append(f.read())
            res["gc_enabled_in_children"] = flags
    except Exception as e:  # noqa: BLE001 - the report says why
        res["failed"] = "%s: %s" % (type(e).__name__, e)
        log("%s preload=%s N=%d: %s" % (key, preload, n, res["failed"]))
        if srv and srv.procs:
            log(srv.procs[0].tail(5))
    finally:
        bench.APPDIR = appdir
        if ctx.nginx:
            ctx.nginx.stop(signal.SIGQUIT)
        if srv:
            srv.stop()
        if a.keep_tmp:
            log("kept " + ctx.tmp)
        else:
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    return res


def collect_smaps(procs, tmp, a, key, preload, n, warm_app):
    """Copy /proc/PID/smaps of every process into --smaps-dir (for reading)."""
    d = os.path.join(a.smaps_dir, "%s-%s-n%d%s" % (key, "preload" if preload else "lazy", n,
                                                   "-" + warm_app if warm_app else ""))
    os.makedirs(d, exist_ok=True)
    for x in procs:
        try:
            shutil.copy("/proc/%d/smaps" % x["pid"], os.path.join(d, "%s-%d.smaps" % (x["role"], x["pid"])))
        except OSError:
            pass
    return d


def mapping_name(line):
    parts = line.split(None, 5)
    return parts[5].strip() if len(parts) > 5 else "[anon]"


def cow_breakdown(key, root, pids):
    """For one preloaded worker: its private pages split by where they come
    from.  'copied' = the parent (the process it was forked from: fcgi-pm's
    preload process, uWSGI's master, gunicorn's arbiter) has a page at the
    same address, with another PFN: a shared page the worker wrote to
    (copy-on-write).  'new' = the parent has no page there: memory the
    worker allocated after the fork.  Grouped by mapping.  Root only."""
    if os.geteuid() != 0:
        return None
    roles = classify(key, root, pids)
    parent = [p for p, r in roles.items() if r == "preload"] or [root]
    parent = parent[0]
    workers = sorted(p for p, r in roles.items() if r == "worker")
    if not workers:
        return None
    w = workers[0]
    try:
        ppm = pagemap(parent)
        wpm = pagemap(w)
        others = set()
        for p in pids:
            if p != w:
                others.update(pagemap(p).values())
        maps = []
        with open("/proc/%d/maps" % w) as f:
            for line in f:
                lo, hi = (int(x, 16) // PAGE for x in line.split()[0].split("-"))
                maps.append((lo, hi, mapping_name(line)))
    except OSError:
        return None
    groups = {}
    for lo, hi, name in maps:
        if name.startswith("/"):
            g = os.path.basename(name)
        elif name == "[anon]":
            g = "anonymous (Python arenas, mmap'd heaps)"
        else:
            g = name
        for vpn in range(lo, hi):
            pfn = wpm.get(vpn)
            if pfn is None or pfn in others:
                continue            # absent, or shared with another process of the tree
            kind = "new" if vpn not in ppm else ("copied" if ppm[vpn] != pfn else "same")
            d = groups.setdefault(g, {"copied": 0, "new": 0, "same": 0})
            d[kind] += PAGE // 1024
    return {"worker": w, "parent": parent, "groups": groups}


# ---------------------------------------------------------------- report

def final(res):
    return res["passes"][-1] if res.get("passes") else None


def workers_of(p):
    return [x for x in p["procs"] if x["role"] == "worker"]


def mib(k):
    return "%.1f" % (k / 1024.0) if k is not None else "-"


def analyse(results, key, warm=""):
    """Numbers for one server: the two modes, N=1 and N=4."""
    def get(pre, n, w=""):
        for r in results:
            if r["server"] == key and r["preload"] == pre and r["n"] == n and r["warm_app"] == w \
               and "failed" not in r:
                return r
        return None
    out = {}
    for pre in (False, True):
        w = warm if pre else ""
        r1, r4 = get(pre, 1, w), get(pre, 4, w)
        if not (r1 and r4):
            continue
        f1, f4 = final(r1), final(r4)
        ws4 = workers_of(f4)
        d = {"total1": f1["pss"], "total4": f4["pss"],
             "marginal": (f4["pss"] - f1["pss"]) / 3.0,
             "worker_pss1": sum(x["pss"] for x in workers_of(f1)),
             "worker_pss4": sum(x["pss"] for x in ws4) / len(ws4) if ws4 else None,
             "worker_uss4": sum(x["uss"] for x in ws4) / len(ws4) if ws4 else None,
             "others4": [(x["role"], x["pss"], x["uss"]) for x in f4["procs"] if x["role"] != "worker"],
             "distinct1": f1["distinct"], "distinct4": f4["distinct"],
             "marginal_distinct": ((f4["distinct"] - f1["distinct"]) / 3.0
                                   if f1["distinct"] is not None and f4["distinct"] is not None
                                   else None),
             "drift": f4["pss"] - r4["passes"][0]["pss"] if len(r4["passes"]) > 1 else None,
             "drift_distinct": (f4["distinct"] - r4["passes"][0]["distinct"]
                                if len(r4["passes"]) > 1 and f4["distinct"] is not None
                                else None),
             "min_django": min(min(p["per_worker"].values()) for p in r4["passes"][-1:]),
             "errors": sum(p["errors"] for r in (r1, r4) for p in r["passes"]),
             "cow": r4.get("cow")}
        out[pre] = d
    if False in out and True in out:
        base = out[False]
        out["ratio"] = out[True]["marginal"] / base["marginal"]
        out["ratio_plain"] = out[True]["marginal"] / base["worker_pss4"]
        out["ratio_plain1"] = out[True]["marginal"] / base["worker_pss1"]
        out["ratio_uss"] = out[True]["worker_uss4"] / base["worker_uss4"]
        if base["marginal_distinct"] and out[True]["marginal_distinct"] is not None:
            out["ratio_distinct"] = out[True]["marginal_distinct"] / base["marginal_distinct"]
    return out


def write_report(a, results, started, finished, vers, mach):
    labels = {"fcgi-pm": "fcgi-pm", "uwsgi": "uWSGI (uwsgi protocol)", "gunicorn": "gunicorn sync"}
    L = ["# What one more worker costs: memory with and without preload\n",
         "Issue 7's target: *with `preload = yes`, the PSS of each worker beyond the first "
         "is under 40% of a worker's PSS without preload.* Written by `tests/bench/memory.py` "
         "(see [README-bench.md](README-bench.md#memory-what-one-more-worker-costs)).\n",
         "- date: %s – %s UTC%s" % (started, finished, " (quick run)" if a.quick else ""),
         "- machine: %d CPUs (%s), %d MiB RAM, Linux %s; other work was running on it"
         % (mach["nproc"], mach["cpu"], mach["mem_mib"], mach["kernel"]),
         "- versions: fcgi-pm %s; uWSGI %s; gunicorn %s; nginx %s; Python %s; Django %s"
         % (vers["fcgi-pm"], vers["uWSGI"], vers["gunicorn"], vers["nginx"], vers["Python"],
            vers["Django"]),
         "- command: `%s`" % " ".join(["/usr/bin/python3", "tests/bench/memory.py"] + a.argv),
         "- method: each server alone behind its own nginx, started with N = 1 and N = 4 "
         "worker processes × 1 thread, the app `app/benchapp.py`. Warm-up, %d passes of: wrk "
         "`-c %d` on `GET /django/` for %d s, then `GET /hello` for %d s. Then PSS and USS "
         "(Private_Clean + Private_Dirty) of every process of the server's tree from "
         "`/proc/PID/smaps_rollup`, and the tree's distinct physical pages from "
         "`/proc/PID/pagemap`, after the last pass."
         % (a.passes, a.connections, a.django_s, a.hello_s),
         "- *marginal* = (total(N=4) − total(N=1)) / 3: what each worker beyond the first "
         "adds to the whole tree (with preload this includes nothing of the preload process "
         "or master, which exist in both). PSS splits shared file pages (libpython, libc) "
         "with every process on the machine that maps them, other servers included; the "
         "*distinct pages* column counts each physical page of the tree once and does not.",
         ""]
    an = {k: analyse(results, k) for k in a.servers}
    # main table
    L += ["## Results\n",
          "| server | mode | total PSS N=1 | total PSS N=4 | marginal PSS per worker | "
          "worker PSS (N=1 / mean at N=4) | worker USS (mean at N=4) | other processes at N=4 (PSS / USS) | "
          "distinct pages N=1 → N=4, marginal | min Django req per worker (last pass) |",
          "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for k in a.servers:
        for pre in (False, True):
            d = an[k].get(pre)
            if not d:
                fails = [r["failed"] for r in results if r["server"] == k and r["preload"] == pre
                         and not r["warm_app"] and "failed" in r]
                L.append("| %s | %s | failed: %s |||||||| " % (labels[k], MODE_NAMES[(k, pre)],
                                                              "; ".join(fails) or "not run"))
                continue
            L.append("| %s | %s | %s | %s | **%s** | %s / %s | %s | %s | %s → %s, %s | %.0f |" % (
                labels[k], MODE_NAMES[(k, pre)], mib(d["total1"]), mib(d["total4"]),
                mib(d["marginal"]), mib(d["worker_pss1"]), mib(d["worker_pss4"]),
                mib(d["worker_uss4"]),
                ", ".join("%s %s / %s" % (r, mib(p), mib(u)) for r, p, u in d["others4"]),
                mib(d["distinct1"]), mib(d["distinct4"]), mib(d["marginal_distinct"]),
                d["min_django"]))
    L += ["", "All sizes in MiB. Failed requests during the warm-ups: %s."
          % ", ".join("%s %d" % (labels[k], sum(an[k][p]["errors"] for p in (False, True)
                                                if p in an[k])) for k in a.servers), ""]
    drifts = ["%s %s %+.1f (distinct pages %s)" % (labels[k], "preload" if p else "no preload",
                                                  an[k][p]["drift"] / 1024.0,
                                                  "%+.1f" % (an[k][p]["drift_distinct"] / 1024.0)
                                                  if an[k][p]["drift_distinct"] is not None else "-")
              for k in a.servers for p in (False, True)
              if p in an[k] and an[k][p]["drift"] is not None]
    if drifts:
        L += ["Is the warm-up enough? Total PSS at N=4 after the last pass minus after the "
              "first, MiB: " + ", ".join(drifts) + ". A PSS change without a change in "
              "distinct pages is other processes on the machine starting or stopping that "
              "map the same files (libpython, the uWSGI plugin): PSS moves with them, "
              "distinct pages do not.", ""]
    # ratios
    L += ["## Ratio: one more preloaded worker / one more worker without preload\n",
          "| server | marginal PSS (preload / no preload) | marginal PSS (preload) / plain "
          "worker PSS without preload (mean at N=4; N=1) | worker USS (preload / no preload) | "
          "marginal distinct pages (preload / no preload) |",
          "|---|---:|---:|---:|---:|"]
    for k in a.servers:
        x = an[k]
        if "ratio" not in x:
            L.append("| %s | - | - | - | - |" % labels[k])
            continue
        L.append("| %s | **%.2f** | %.2f; %.2f | %.2f | %s |" % (
            labels[k], x["ratio"], x["ratio_plain"], x["ratio_plain1"], x["ratio_uss"],
            "%.2f" % x["ratio_distinct"] if "ratio_distinct" in x else "-"))
    L.append("")
    fx = an.get("fcgi-pm", {})
    if "ratio" in fx:
        rs = [fx["ratio"], fx["ratio_plain"]] + ([fx["ratio_distinct"]]
                                                  if "ratio_distinct" in fx else [])
        ok = all(r < TARGET for r in rs)
        L += ["**Issue 7 memory target for fcgi-pm: %s** — each worker beyond the first "
              "costs %s MiB PSS with `preload = yes`, %.0f%% of the %s MiB a worker costs "
              "with `preload = no` (same method; %.0f%% of a no-preload worker's plain PSS "
              "of %s MiB at N=4%s). Target: under 40%%%s."
              % ("✔ met" if ok else "✘ not met", mib(fx[True]["marginal"]), 100 * fx["ratio"],
                 mib(fx[False]["marginal"]), 100 * fx["ratio_plain"],
                 mib(fx[False]["worker_pss4"]),
                 "; %.0f%% counted in distinct pages" % (100 * fx["ratio_distinct"])
                 if "ratio_distinct" in fx else "",
                 " by every one of these measures" if ok else
                 "" if all(r >= TARGET for r in rs) else " (not by every measure)"), ""]
    # experiments
    if a.experiments:
        L += ["## Experiments: what the app can do before the fork\n",
              "Not the benchmark's app: a wrapper `benchapp.py` that imports the real one, "
              "with one change each. Only the preload mode is run with it; the ratio divides "
              "by the same no-preload marginal as above.\n",
              "| server | experiment | total PSS N=1 | N=4 | marginal PSS per worker | "
              "worker USS (mean at N=4) | marginal distinct pages | ratio to no-preload "
              "marginal |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for k in a.servers:
            base = an[k].get(False)
            for v in a.experiments:
                d = analyse(results, k, warm=v).get(True)
                if not d:
                    continue
                gcs = [r.get("gc_enabled_in_children") for r in results
                       if r["server"] == k and r["warm_app"] == v and r["n"] == 4]
                note = ""
                if "nogc" in v:
                    flags = gcs[0] if gcs and gcs[0] is not None else []
                    on = flags.count("True")
                    note = " (gc re-enabled in %d forked children)" % on
                    if on < 4:
                        note += (": **the GC stayed off in %d of 4 workers, not comparable** "
                                 "(the server runs no `os.register_at_fork` hooks)" % (4 - on))
                L.append("| %s | %s%s | %s | %s | **%s** | %s | %s | %s |" % (
                    labels[k], EXPERIMENTS[v], note, mib(d["total1"]), mib(d["total4"]),
                    mib(d["marginal"]), mib(d["worker_uss4"]), mib(d["marginal_distinct"]),
                    "%.2f" % (d["marginal"] / base["marginal"]) if base else "-"))
        L.append("")
    # where the private pages of a preloaded worker come from
    cows = [(labels[r["server"]] + (", " + EXPERIMENTS[r["warm_app"]] if r["warm_app"] else ""),
             r["cow"]) for r in results if r.get("cow")]
    if cows:
        L += ["## Where a preloaded worker's private pages come from (N=4, one worker)\n",
              "From `/proc/PID/pagemap` of the worker and of the process it was forked from "
              "(fcgi-pm's preload process, uWSGI's master, gunicorn's arbiter): *copied* = the "
              "parent has a page at the same address and the worker has its own copy "
              "(copy-on-write after a write: reference counts, GC headers, dicts and caches "
              "that grew); *new* = nothing at that address in the parent (allocated after "
              "the fork: new arenas for modules imported and objects built on the first "
              "requests). Objects allocated after the fork into free slots of the parent's "
              "arenas count as *copied*, like reference-count writes. Pages shared with any other process of the tree are not "
              "counted. MiB.\n"]
        for k, c in cows:
            rows = sorted(c["groups"].items(), key=lambda kv: -(kv[1]["copied"] + kv[1]["new"]))
            tot_c = sum(v["copied"] for v in c["groups"].values())
            tot_n = sum(v["new"] for v in c["groups"].values())
            tot_s = sum(v["same"] for v in c["groups"].values())
            L += ["%s (worker %d, parent %d): %s copied + %s new = %s private%s\n"
                  % (k, c["worker"], c["parent"], mib(tot_c), mib(tot_n),
                     mib(tot_c + tot_n),
                     " (+ %s at the parent's PFN but no longer shared with it)" % mib(tot_s)
                     if tot_s else ""),
                  "| mapping | copied | new |", "|---|---:|---:|"]
            for g, v in rows[:8]:
                if v["copied"] + v["new"] < 64:
                    continue
                L.append("| %s | %s | %s |" % (g, mib(v["copied"]), mib(v["new"])))
            L.append("")
    with open(a.md, "w") as f:
        f.write("\n".join(L))
    with open(a.json, "w") as f:
        json.dump({"started": started, "finished": finished, "versions": vers, "machine": mach,
                   "argv": a.argv, "results": results}, f, indent=1, default=str)
    log("wrote " + a.md)


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(prog="tests/bench/memory.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="shorter warm-up (1 pass of 2 s + 1 s)")
    p.add_argument("--servers", default="fcgi-pm,uwsgi,gunicorn")
    p.add_argument("--passes", type=int, default=None, help="warm-up passes (default 2)")
    p.add_argument("--django-s", type=int, default=None, help="seconds of Django per pass (4)")
    p.add_argument("--hello-s", type=int, default=None, help="seconds of hello per pass (1)")
    p.add_argument("--connections", type=int, default=16, help="wrk -c")
    p.add_argument("--experiments", default="render",
                   help="comma list of app experiments run with preload (%s; '' for none; "
                        "default render)" % ", ".join(EXPERIMENTS))
    p.add_argument("--base-port", type=int, default=18300)
    p.add_argument("--build-dir", default=os.path.join(REPO, "build-mem"),
                   help="where fcgi-pm is built (default build-mem/)")
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--keep-tmp", action="store_true")
    p.add_argument("--keep-smaps", metavar="DIR", dest="smaps_dir", default=None,
                   help="copy every fcgi-pm process's /proc/PID/smaps into DIR")
    p.add_argument("--out", default=HERE)
    p.add_argument("--from-json", metavar="FILE",
                   help="no run: write memory.md again from a memory.json (its own options)")
    a = p.parse_args(argv)
    a.argv = argv
    a.servers = [s for s in a.servers.split(",") if s]
    for s in a.servers:
        if s not in KEYS:
            p.error("unknown server %r (one of %s)" % (s, ", ".join(KEYS)))
    if a.passes is None:
        a.passes = 1 if a.quick else 2
    if a.django_s is None:
        a.django_s = 2 if a.quick else 4
    if a.hello_s is None:
        a.hello_s = 1
    a.keep_smaps = a.smaps_dir is not None
    a.experiments = [x for x in a.experiments.split(",") if x]
    for x in a.experiments:
        if x not in EXPERIMENTS:
            p.error("unknown experiment %r (one of %s)" % (x, ", ".join(EXPERIMENTS)))
    a.md = os.path.join(a.out, "memory.md")
    a.json = os.path.join(a.out, "memory.json")
    return a


def main(argv):
    a = parse_args(argv)
    if a.from_json:
        with open(a.from_json) as f:
            d = json.load(f)
        r = parse_args(d["argv"])
        r.md, r.json = a.md, a.json
        write_report(r, d["results"], d["started"], d["finished"], d["versions"], d["machine"])
        return
    signal.signal(signal.SIGTERM, lambda signo, frame: sys.exit(128 + signo))
    bench.BUILD = a.build_dir
    if "fcgi-pm" in a.servers:
        a.build_status = bench.build_fcgi_pm(a)
        log("fcgi-pm (%s): %s" % (a.build_dir, a.build_status))
    else:
        a.build_status = "not requested"
    if os.geteuid() != 0:
        log("not root: no pagemap (distinct pages and copy-on-write columns stay empty)")
    os.makedirs(a.out, exist_ok=True)
    started = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M")
    ctx = bench.Ctx()
    ctx.build_status = a.build_status
    vers = bench.versions(ctx)          # the commit that was built, not one made meanwhile
    results = []
    for k in a.servers:
        for pre in (False, True):
            for n in (1, 4):
                results.append(run_one(a, k, pre, n))
        for v in a.experiments:
            for n in (1, 4):
                results.append(run_one(a, k, True, n, warm_app=v))
    finished = datetime.datetime.utcnow().strftime("%H:%M")
    write_report(a, results, started, finished, vers, bench.machine())


if __name__ == "__main__":
    main(sys.argv[1:])

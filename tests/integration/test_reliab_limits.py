#!/usr/bin/env python3
"""Issue 17, item 11 ("smaller"), with the real binary: a pool's notify flood
reaches miners thinned (always the newest job, counted); a farm restarting
behind one NAT address is not banned with the defaults; a SIGHUP whose
config path blocks (a FIFO) never stalls the loop; at the fd limit refused
miners are logged and counted and the admin server still answers."""
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Proc, check, events, run, start_hashgate, to_yaml  # noqa: E402
from test_hw import wait_for  # noqa: E402
from test_reliab import config, start_pool, stop_all, stratum_hello  # noqa: E402


def healthz(admin):
    with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % admin, timeout=2) as r:
        return r.status


def metric(admin, name, labels=""):
    """A sample's value from /metrics (sum over series matching the label text); None when absent."""
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5).read().decode()
    vals = [float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
            if l.startswith(name) and (l[len(name):].startswith("{") or l[len(name):].startswith(" ")) and labels in l]
    return sum(vals) if vals else None


def test_notify_flood(hashgate):
    """A pool sending a clean job every 5 ms: the miner gets at most about
    four a second (NotifyThrottle's 0.25 s), every one clean, and when the
    flood ends, the pool's last job (never an older one);
    hashgate_pool_jobs_coalesced_total counts what never went out."""
    d = tempfile.mkdtemp(prefix="hashgate-flood-")
    control = os.path.join(d, "control.json")
    with open(control, "w") as f:
        f.write("{}")
    report = os.path.join(d, "pool.json")
    pool = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
                 "--job-interval", "0.005", "--clean-every", "1", "--control", control, "--report", report])
    pool_port = pool.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    gw = None
    try:
        gw, port, admin = start_hashgate(hashgate, d, config([("main", pool_port)], admin={"bind": "127.0.0.1:0"}))
        s, f = stratum_hello(port, "flood.rig")
        notifies = []  # (time received, params)
        while len(notifies) < 12:  # counted in jobs, not seconds
            msg = json.loads(f.readline())
            if msg.get("method") == "mining.notify":
                notifies.append((time.time(), msg["params"]))
        with open(control, "w") as fh:
            fh.write('{"pause_jobs": true}')
        # The pool's last job (the control change sends one more clean job)
        # must reach the miner; then nothing more comes.
        s.settimeout(2.0)
        after = []
        try:
            while True:
                msg = json.loads(f.readline())
                if msg.get("method") == "mining.notify":
                    after.append((time.time(), msg["params"]))
        except (socket.timeout, TimeoutError):
            pass
        coalesced = metric(admin, "hashgate_pool_jobs_coalesced_total", 'pool="main"')
        f.close()
        s.close()
        check(gw.stop() == 0, "hashgate did not exit cleanly")
        pool.stop()
    finally:
        stop_all(gw, pool)
    jobs = json.load(open(report))["jobs"]
    window = notifies[1:]  # from the first notify after authorize (the session's first job came at once)
    t0, t1 = window[0][0], window[-1][0]
    pool_jobs = [j for j in jobs if t0 <= j["issued_at"] <= t1]
    # The miner's spacing is hashgate's 0.25 s give or take delivery jitter.
    check(len(window) - 1 <= (t1 - t0) / 0.25 + 2,
          "%d notifies in %.2f s: the flood was passed through" % (len(window), t1 - t0))
    check(len(pool_jobs) > 3 * len(window),
          "the pool sent only %d jobs while the miner got %d (no flood to thin)" % (len(pool_jobs), len(window)))
    check(all(p[8] is True for _, p in notifies + after), "a notify of the clean flood went out not clean")
    check(after, "the pool's last job never reached the miner after the flood ended")
    last_pool = jobs[-1]
    check(after[-1][1][1] == last_pool["prevhash"] and after[-1][1][2] == last_pool["coinb1"],
          "the miner's last job is not the pool's last one (a stale job was sent last)")
    check(coalesced is not None and coalesced >= len(pool_jobs) - len(window),
          "hashgate_pool_jobs_coalesced_total %s for %d pool jobs, %d sent" % (coalesced, len(pool_jobs), len(window)))
    print("notify flood: %d pool jobs in %.2f s reached the miner as %d; coalesced %d in all; last job is the pool's last"
          % (len(pool_jobs), t1 - t0, len(window), coalesced))


def test_nat_burst(hashgate):
    """520 miners behind one address (127.0.0.1) connect at once with the
    default limits: every one is answered, none refused, the address never
    banned (it was: a bucket of 500 refused the rest and the refusals banned
    it). A config whose cap cannot take such a restart is warned about at
    start, naming the keys and the numbers."""
    d = tempfile.mkdtemp(prefix="hashgate-nat-")
    a, a_port, _ = start_pool(d, "a")
    gw = small = None
    socks = []
    try:
        gw, port, admin = start_hashgate(hashgate, d, config([("main", a_port)], admin={"bind": "127.0.0.1:0"}))
        check(not events(gw.err_lines, "limits_refuse_nat_burst"), "the defaults were warned about")
        for _ in range(520):  # connected first, all at once: the burst
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        sub = (json.dumps({"id": 1, "method": "mining.subscribe", "params": []}) + "\n").encode()
        for s in socks:
            s.sendall(sub)
        answered = 0
        for s in socks:
            try:
                line = s.makefile("rb").readline()
            except OSError:
                line = b""
            answered += bool(line) and json.loads(line).get("id") == 1
        time.sleep(1.2)  # the admin snapshot is taken each second
        rejected = metric(admin, "hashgate_connections_rejected_total")
        connections = metric(admin, "hashgate_connections")
        banned = events(gw.err_lines, "address_banned")
        for s in socks:
            s.close()
        socks = []
        check(gw.stop() == 0, "hashgate did not exit cleanly")
        # A cap of 200 per address: said at start.
        small, _, _ = start_hashgate(hashgate, d, config([("main", a_port)], admin={"bind": "127.0.0.1:0"},
                                                         limits={"max_connections_per_address": 200}))
        warned = events(small.err_lines, "limits_refuse_nat_burst")
        small.stop()
    finally:
        for s in socks:
            s.close()
        stop_all(gw, small, a)
    check(answered == 520, "%d of 520 miners behind one address answered" % answered)
    check(rejected == 0, "hashgate_connections_rejected_total %s in a NAT farm's restart" % rejected)
    check(connections is not None and connections >= 520, "hashgate_connections %s" % connections)
    check(not banned, "the NAT address was banned: %s" % banned[:1])
    check(len(warned) == 1, "no limits_refuse_nat_burst warning for a cap of 200")
    w = warned[0]
    check(w.get("limits.max_connections_per_address") == 200 and w.get("admitted_at_once") == 200 and
          "limits.new_connections_per_second" in w and w.get("level") == "warning",
          "the warning does not name the keys and numbers: %s" % w)
    print("NAT burst: 520 connections from one address answered, 0 refused, no ban; cap 200 warned: %s" % w["advice"])


def test_fd_limit(hashgate):
    """hashgate under a descriptor limit of 160 and 200 miners connecting:
    the ones past the budget are refused with a connection_refused_fd_limit
    line and hashgate_connections_rejected_total{reason="fd_limit"}; /healthz
    still answers; once miners leave, new ones are served again."""
    d = tempfile.mkdtemp(prefix="hashgate-fd-")
    a, a_port, _ = start_pool(d, "a")
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(config([("main", a_port)], admin={"bind": "127.0.0.1:0"})) + "\n")
    gw = Proc(["prlimit", "--nofile=160:160", "--", hashgate, "--config", path])
    socks = []
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        admin = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                             and json.loads(l)["port"])
        for _ in range(200):
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        refused = wait_for(lambda: events(gw.err_lines, "connection_refused_fd_limit"), 15,
                           "a connection_refused_fd_limit line")
        health = healthz(admin)
        time.sleep(1.2)
        counted = metric(admin, "hashgate_connections_rejected_total", 'reason="fd_limit"')
        held = metric(admin, "hashgate_connections")
        for s in socks[:120]:
            s.close()
        del socks[:120]
        # Served again once descriptors are free.
        ok = wait_for(lambda: try_hello(port), 15, "a miner served after others left")
        ok[1].close()
        ok[0].close()
        for s in socks:  # gone before the stop: no drain to wait for
            s.close()
        socks = []
        check(gw.stop() == 0, "hashgate did not exit cleanly")
    finally:
        for s in socks:
            s.close()
        stop_all(gw, a)
    r = refused[0]
    check(r.get("max_open_files") == 160 and r.get("reserved", 0) > 0, "the refusal line: %s" % r)
    check(counted is not None and counted >= 1, "hashgate_connections_rejected_total{reason=fd_limit} = %s" % counted)
    check(held is not None and 0 < held < 160, "hashgate_connections %s under a limit of 160" % held)
    check(health == 200, "/healthz answered %s at the descriptor limit" % health)
    print("fd limit 160: %d miners held, %d refused (counted), /healthz 200, served again after others left"
          % (held, counted))


def try_hello(port):
    try:
        return stratum_hello(port, "after.rig")
    except (OSError, AssertionError):
        return None


def test_sighup_fifo(hashgate):
    """SIGHUP with the config path a FIFO nobody writes: the loop never
    blocks (a new miner is answered, /healthz answers), the reload is
    reported failed after 5 s (config_reload_failed, counted), and applies
    once the FIFO is written."""
    d = tempfile.mkdtemp(prefix="hashgate-fifo-")
    a, a_port, _ = start_pool(d, "a")
    cfg = config([("main", a_port)], admin={"bind": "127.0.0.1:0"})
    gw = None
    path = os.path.join(d, "hashgate.yaml")
    writer = None
    try:
        gw, port, admin = start_hashgate(hashgate, d, cfg)
        text = open(path).read()
        os.remove(path)
        os.mkfifo(path)
        t_hup = time.monotonic()
        gw.p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        s, f = stratum_hello(port, "during.rig")  # the loop answers while the read is blocked
        f.close()
        s.close()
        health = healthz(admin)
        failed = wait_for(lambda: events(gw.err_lines, "config_reload_failed"), 20, "config_reload_failed")
        stalled_after = time.monotonic() - t_hup
        check(not events(gw.err_lines, "config_reloaded"), "reloaded before the FIFO was written")
        s, f = stratum_hello(port, "stalled.rig")
        f.close()
        s.close()
        # Written now: the blocked read completes and applies (log level changed).
        cfg2 = dict(cfg)
        cfg2["logging"] = {"level": "debug", "format": "json"}
        def write():
            with open(path, "w") as f:
                f.write(to_yaml(cfg2) + "\n")
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        wait_for(lambda: events(gw.err_lines, "config_reloaded"), 15, "the FIFO's config applied")
        time.sleep(1.2)
        reloads_failed = metric(admin, "hashgate_config_reloads_total", 'result="failed"')
        reloads_ok = metric(admin, "hashgate_config_reloads_total", 'result="ok"')
        os.remove(path)
        with open(path, "w") as f:
            f.write(text)
        check(gw.stop() == 0, "hashgate did not exit cleanly")
    finally:
        if os.path.exists(path) and not os.path.isfile(path):
            try:  # never leave a blocked reader behind
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        stop_all(gw, a)
    check(health == 200, "/healthz %s while the config read was blocked" % health)
    check("has taken more than" in failed[0].get("error", ""), "the failure does not say why: %s" % failed[0])
    check(stalled_after >= 4.5, "reported failed after %.1f s, before the stall limit" % stalled_after)
    check(reloads_failed == 1 and reloads_ok == 1, "reloads counted failed=%s ok=%s" % (reloads_failed, reloads_ok))
    print("SIGHUP on a FIFO: loop answered miners and /healthz; failed after %.1f s; applied once written" %
          stalled_after)


TESTS = {
    "notify_flood": test_notify_flood,
    "nat_burst": test_nat_burst,
    "fd_limit": test_fd_limit,
    "sighup_fifo": test_sighup_fifo,
}

if __name__ == "__main__":
    run(TESTS)

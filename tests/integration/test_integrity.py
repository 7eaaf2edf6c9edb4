#!/usr/bin/env python3
"""Pool job integrity (issue 21) with the real binary: mock pools whose tip
and coinbase the test steers through a control file, simulated miners, and
a real litecoind on regtest as the reference node.

- stale_tip_moved: a pool held on the old block after the other moved on
  is flagged within the grace and its miners move (stale_action: move).
- together_not_flagged: pools moving to each new block together are never
  flagged.
- payout_dropped: a pool whose coinbase drops the declared payout output
  is refused and failed over, the decoded outputs in the log; the other
  pool is not touched.
- bad_jobs_counted: ntime far off, nbits disagreeing, a malformed coinbase:
  counted per pool and check, logged, nothing breaks.
- litecoind_regtest: a pool that falls behind the node is flagged with the
  node's height; the node stopping is logged and mining goes on.
"""
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "support"))
from harness import PY, SUPPORT, Failure, Proc, check, events, run, start_hashgate, to_yaml  # noqa: E402
import promparse  # noqa: E402

PAYOUT = "76a914" + "ab" * 20 + "88ac"


def http_get(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.read().decode()


def pools_api(admin):
    return {p["name"]: p for p in json.loads(http_get(admin, "/api/v1/pools"))["pools"]}


def write_control(path, **ctl):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(ctl, f)
    os.replace(tmp, path)  # the pool never reads half a file


def start_pool(d, name, control, extra=()):
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--job-interval", "0.5", "--clean-every", "0", "--report", os.path.join(d, name + ".json"),
              "--seed", str(sum(map(ord, name))), "--control", control, "--payout-script", PAYOUT] + list(extra))
    port = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, port


def start_gateway(hashgate, d, pools, integrity):
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": pools,
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "failover": {"connect_timeout_seconds": 3, "job_timeout_seconds": 5, "backoff_initial_seconds": 2,
                     "backoff_max_seconds": 8, "failback_after_seconds": 60, "reconnect_spread_seconds": 1},
        "admin": {"bind": "127.0.0.1:0"},
        "logging": {"level": "info", "format": "json"},
        "integrity": integrity,
    }
    return start_hashgate(hashgate, d, cfg)


def miners(port, report, count, duration):
    return subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--algorithm",
                             "sha256d", "--report", report, "--count", str(count), "--duration", str(duration),
                             "--timeout", "60", "--extranonce-subscribe"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(p):
    _, err = p.communicate(timeout=120)
    check(p.returncode == 0, "sim_miner failed: %s" % err[-1500:])


def integrity_events(gw, pool=None, check_name=None, action=None):
    return [e for e in events(gw.err_lines, "pool_integrity")
            if (pool is None or e.get("pool") == pool) and (check_name is None or e.get("check") == check_name)
            and (action is None or e.get("action") == action)]


def wait_event(gw, pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in events(list(gw.err_lines)):
            if pred(e):
                return e
        time.sleep(0.05)
    return None


def tip(n):
    return "%064x" % (0x1234 * 2 ** 200 + n)


def two_pools(d, primary_extra=None):
    ca, cb = os.path.join(d, "a.ctl"), os.path.join(d, "b.ctl")
    write_control(ca, prevhash=tip(1), height=1000)
    write_control(cb, prevhash=tip(1), height=1000)
    a, a_port = start_pool(d, "a", ca)
    b, b_port = start_pool(d, "b", cb)
    primary = {"name": "primary", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0}
    primary.update(primary_extra or {})
    pools = [primary, {"name": "backup", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 1}]
    return (a, ca), (b, cb), pools


def test_stale_tip_moved(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-integrity-")
    (a, ca), (b, cb), pools = two_pools(d)
    gw, port, admin = start_gateway(hashgate, d, pools, {"stale_grace_seconds": 3, "stale_move_seconds": 6,
                                               "stale_action": "move"})
    try:
        m = miners(port, os.path.join(d, "m.json"), 6, 16)
        time.sleep(3)
        check(not integrity_events(gw), "flagged before anything moved: %s" % integrity_events(gw))
        moved_at = time.time()
        write_control(cb, prevhash=tip(2), height=1001)  # backup moves on; primary stays on tip 1
        flag = wait_event(gw, lambda e: e.get("event") == "pool_integrity" and e.get("check") == "stale_tip"
                          and e.get("action") == "flagged", 10)
        flagged_after = time.time() - moved_at
        check(flag is not None, "the held pool was never flagged")
        print("flagged %.1f s after the other pool moved (grace 3 s): %s" % (flagged_after, flag))
        check(flag["pool"] == "primary", "flagged the wrong pool: %s" % flag)
        check(flag["moved_on"] == "pool backup" and flag["newer_height"] == "1001" and flag["height"] == "1000",
              "evidence: %s" % flag)
        check(3 <= float(flag["lag_seconds"]) <= 4.5, "flagged at lag %s, grace 3 s" % flag["lag_seconds"])
        check(flagged_after <= 5.5, "flagged %.1f s after the move, grace 3 s" % flagged_after)
        api = pools_api(admin)
        deadline = time.monotonic() + 3  # the snapshot is published once a second
        while "stale_tip" not in api["primary"]["integrity_flags"] and time.monotonic() < deadline:
            time.sleep(0.2)
            api = pools_api(admin)
        check("stale_tip" in api["primary"]["integrity_flags"], "/api/v1/pools: %s" % api["primary"])
        check(api["primary"]["height"] == 1001 and api["backup"]["height"] == 1002, "heights: %s" % api)
        check(api["primary"]["tip_lag_blocks"] == 1 and api["primary"]["tip_lag_seconds"] >= 3, "lag: %s" % api)
        check(api["backup"]["integrity_flags"] == [], "backup flagged: %s" % api["backup"])
        fams = promparse.parse(http_get(admin, "/metrics"))
        check(promparse.value(fams, "hashgate_pool_tip_lag_seconds", pool="primary") >= 3, "lag metric")
        check(promparse.value(fams, "hashgate_pool_integrity_events_total", pool="primary", check="stale_tip") == 1,
              "events metric")
        moved = wait_event(gw, lambda e: e.get("event") == "pool_integrity" and e.get("action") == "moved", 10)
        check(moved is not None and moved["pool"] == "primary", "the held pool's miners were not moved")
        lost = wait_event(gw, lambda e: e.get("event") == "pool_disconnected" and "stale_tip" in e.get("reason", ""),
                          5)
        check(lost is not None and lost["pool"] == "primary",
              "the primary was not failed: %s" % [e for e in events(gw.err_lines) if "pool" in e.get("event", "")][-8:])
        check(wait_event(gw, lambda e: e.get("event") == "pool_failover" and e.get("to") == "backup", 5),
              "no failover to the backup")
        finish(m)
    finally:
        gw.stop()
        a.stop()
        b.stop()
    rep = json.load(open(os.path.join(d, "m.json")))["miners"]
    check(all(x["set_extranonce"] >= 1 for x in rep), "a miner was not moved: %s" % [x["set_extranonce"] for x in rep])
    b_rep = json.load(open(os.path.join(d, "b.json")))
    late = [s for s in b_rep["shares"] if s["at"] > moved_at + 6]
    check(len(late) > 0, "the backup got no shares after the move")
    print("backup accepted %d shares after the move" % len(late))


def test_together_not_flagged(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-integrity-")
    (a, ca), (b, cb), pools = two_pools(d)
    gw, port, admin = start_gateway(hashgate, d, pools, {"stale_grace_seconds": 2, "stale_move_seconds": 3,
                                               "stale_action": "move"})
    try:
        m = miners(port, os.path.join(d, "m.json"), 4, 10)
        for n in range(2, 7):
            time.sleep(1.2)
            write_control(cb, prevhash=tip(n), height=999 + n)
            time.sleep(0.5)  # the other pool follows half a second later: well within the grace
            write_control(ca, prevhash=tip(n), height=999 + n)
        time.sleep(4)
        api = pools_api(admin)
        finish(m)
    finally:
        gw.stop()
        a.stop()
        b.stop()
    # Both really moved to the last tip (so a flag could have happened).
    check(api["primary"]["height"] == 1006 and api["backup"]["height"] == 1006, "heights: %s" % api)
    check(api["primary"]["tip"] == tip(6), "tip: %s" % api["primary"]["tip"])
    stale = integrity_events(gw, check_name="stale_tip")
    check(stale == [], "flagged although both moved together: %s" % stale)
    check(not events(gw.err_lines, "pool_failover"), "a pool was failed")
    print("5 blocks, the pools 0.5 s apart each time: no stale_tip")


def test_payout_dropped(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-integrity-")
    rules = {"integrity": {"require_outputs": ["script:" + PAYOUT]}}
    (a, ca), (b, cb), pools = two_pools(d, rules)
    pools[1]["integrity"] = {"lock_outputs": True}
    gw, port, admin = start_gateway(hashgate, d, pools, {"enabled": True})
    try:
        m = miners(port, os.path.join(d, "m.json"), 6, 12)
        time.sleep(4)
        check(not integrity_events(gw), "an unchanged pool was refused: %s" % integrity_events(gw))
        dropped_at = time.time()
        write_control(ca, prevhash=tip(1), height=1000, drop_payout=True)
        ev = wait_event(gw, lambda e: e.get("event") == "pool_integrity" and e.get("action") == "refused", 10)
        check(ev is not None, "the job without the payout was not refused")
        print("refused: %s" % ev)
        check(ev["pool"] == "primary" and ev["check"] == "coinbase_payout", "refused: %s" % ev)
        check(ev["missing"] == "script:" + PAYOUT, "missing: %s" % ev)
        check(ev["outputs"] == "3.12500000->p2wpkh:" + "ee" * 20, "decoded outputs: %s" % ev["outputs"])
        lost = wait_event(gw, lambda e: e.get("event") == "pool_disconnected" and e.get("pool") == "primary", 5)
        check(lost is not None and "coinbase_payout" in lost["reason"], "not failed: %s" % lost)
        check(wait_event(gw, lambda e: e.get("event") == "pool_failover" and e.get("to") == "backup", 5),
              "no failover to the backup")
        finish(m)
    finally:
        gw.stop()
        a.stop()
        b.stop()
    check(integrity_events(gw, pool="backup") == [], "the unchanged backup was flagged")
    rep = json.load(open(os.path.join(d, "m.json")))["miners"]
    check(all(x["set_extranonce"] >= 1 for x in rep), "a miner was not moved")
    a_rep = json.load(open(os.path.join(d, "a.json")))
    check(all(s["at"] < dropped_at + 1 for s in a_rep["shares"]), "shares reached the pool after its bad job")
    check(len(a_rep["shares"]) > 0, "the primary got no shares before the drop")
    b_rep = json.load(open(os.path.join(d, "b.json")))
    check(any(s["at"] > dropped_at for s in b_rep["shares"]), "the backup got no shares after the failover")


def test_bad_jobs_counted(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-integrity-")
    (a, ca), (b, cb), pools = two_pools(d)
    pools[1]["priority"] = 0
    gw, port, admin = start_gateway(hashgate, d, pools, {"ntime_window_seconds": 600})
    try:
        m = miners(port, os.path.join(d, "m.json"), 4, 10)
        time.sleep(2)
        write_control(ca, prevhash=tip(1), height=1000, ntime_offset=7200)
        time.sleep(1)
        write_control(cb, prevhash=tip(1), height=1000, nbits="1d00fffe")
        time.sleep(1)
        write_control(ca, prevhash=tip(1), height=1000, malformed_coinbase=True)
        time.sleep(1.5)
        fams = promparse.parse(http_get(admin, "/metrics"))
        healthz = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % admin, timeout=5).status
        write_control(ca, prevhash=tip(1), height=1000)
        finish(m)
    finally:
        rc = gw.stop()
        a.stop()
        b.stop()
    check(rc == 0, "hashgate exited with %s" % rc)
    check(healthz == 200, "healthz %s" % healthz)

    def n(pool, c):
        return promparse.value(fams, "hashgate_pool_integrity_events_total", pool=pool, check=c)
    print("events: ntime %d nbits %d coinbase_malformed %d" % (n("primary", "ntime"), n("backup", "nbits"),
                                                                n("primary", "coinbase_malformed")))
    check(n("primary", "ntime") >= 1, "ntime not counted")
    check(n("backup", "nbits") >= 1, "nbits not counted")
    check(n("primary", "coinbase_malformed") >= 1, "malformed coinbase not counted")
    check(n("backup", "ntime") == 0 and n("primary", "nbits") == 0, "counted on the wrong pool")
    e = integrity_events(gw, "primary", "ntime")[0]
    check(abs(float(e["offset_seconds"]) - 7200) < 5, "ntime evidence: %s" % e)
    e = integrity_events(gw, "backup", "nbits")[0]
    check(e["nbits"] == "1d00fffe" and e["expected"] == "1d00ffff", "nbits evidence: %s" % e)
    e = integrity_events(gw, "primary", "coinbase_malformed")[0]
    check(e["action"] == "flagged" and e["error"], "malformed evidence: %s" % e)
    rep = json.load(open(os.path.join(d, "m.json")))["miners"]
    check(all(x["accepted"] > 0 for x in rep), "miners stopped getting shares accepted")


# ------------------------------------------------------------------ litecoind

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Node:
    """litecoind -regtest in a temp datadir on 127.0.0.1; RPC with the cookie (urllib, not hashgate's client)."""

    def __init__(self, d):
        self.dir = os.path.join(d, "ltc")
        os.mkdir(self.dir)
        self.rpc_port = free_port()
        self.p = subprocess.Popen(["litecoind", "-regtest", "-datadir=" + self.dir, "-server", "-listen=0",
                                   "-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-rpcport=%d" % self.rpc_port,
                                   "-port=%d" % free_port(), "-disablewallet", "-printtoconsole=0", "-dnsseed=0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.cookie = os.path.join(self.dir, "regtest", ".cookie")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.call("getblockcount")
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)
        raise Failure("litecoind did not answer RPC within 30 s")

    def call(self, method, *params):
        auth = base64.b64encode(open(self.cookie, "rb").read().strip()).decode()
        req = urllib.request.Request("http://127.0.0.1:%d/" % self.rpc_port,
                                     data=json.dumps({"jsonrpc": "1.0", "id": 1, "method": method,
                                                      "params": list(params)}).encode(),
                                     headers={"Authorization": "Basic " + auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            reply = json.loads(r.read())
        if reply.get("error"):
            raise Failure("RPC %s: %s" % (method, reply["error"]))
        return reply["result"]

    def mine(self, n):
        return self.call("generatetodescriptor", n, "raw(51)")

    def tip(self):
        return self.call("getbestblockhash"), self.call("getblockcount")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            self.p.wait(timeout=30)


def test_litecoind_regtest(hashgate):
    if not shutil.which("litecoind"):
        raise Failure("litecoind is not installed (scripts/deps.sh --test installs it)")
    d = tempfile.mkdtemp(prefix="hashgate-integrity-ltc-")
    node = Node(d)
    a = gw = None
    try:
        node.mine(20)
        best, height = node.tip()
        ctl = os.path.join(d, "a.ctl")
        write_control(ctl, prevhash=best, height=height)
        a, a_port = start_pool(d, "a", ctl)
        pools = [{"name": "ltc", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw"}]
        gw, port, admin = start_gateway(hashgate, d, pools, {
            "stale_grace_seconds": 2, "stale_move_seconds": 600,
            "node": {"url": "http://127.0.0.1:%d" % node.rpc_port, "cookie_file": node.cookie,
                     "poll_seconds": 0.3, "timeout_seconds": 1}})
        up = wait_event(gw, lambda e: e.get("event") == "node_up", 10)
        check(up is not None and up["height"] == height, "node_up: %s" % up)
        m = miners(port, os.path.join(d, "m.json"), 4, 16)
        time.sleep(2)
        check(not integrity_events(gw, check_name="stale_tip"), "flagged while on the node's tip")
        # The node moves two blocks on; the pool keeps its old tip.
        node.mine(2)
        behind_at = time.time()
        flag = wait_event(gw, lambda e: e.get("event") == "pool_integrity" and e.get("check") == "stale_tip"
                          and e.get("action") == "flagged", 10)
        check(flag is not None, "the pool behind the node was not flagged")
        print("flagged %.1f s after the node moved: %s" % (time.time() - behind_at, flag))
        check(flag["node_height"] == str(height + 2) and flag["lag_blocks"] == "2", "evidence: %s" % flag)
        check(flag["moved_on"] == "node" and flag["prevhash"] == best, "evidence: %s" % flag)
        api = json.loads(http_get(admin, "/api/v1/pools"))
        check(api["node"]["state"] == "up" and api["node"]["height"] == height + 2, "node: %s" % api["node"])
        check(api["pools"][0]["tip_lag_blocks"] == 2, "lag: %s" % api["pools"][0])
        # The pool catches up: cleared.
        best2, height2 = node.tip()
        write_control(ctl, prevhash=best2, height=height2)
        check(wait_event(gw, lambda e: e.get("event") == "pool_integrity" and e.get("action") == "cleared", 5),
              "the flag did not clear on the node's tip")
        # The node stops: logged; mining goes on.
        node.stop()
        stopped_at = time.time()
        down = wait_event(gw, lambda e: e.get("event") == "node_down", 10)
        check(down is not None, "the node stopping was not logged")
        print("node down: %s" % down)
        finish(m)
        api = json.loads(http_get(admin, "/api/v1/pools"))
        check(api["node"]["state"] == "down", "node state: %s" % api["node"])
        check(api["pools"][0]["state"] == "active", "the pool suffered: %s" % api["pools"][0])
        lost = events(gw.err_lines, "pool_disconnected")
        rc = gw.stop()
        check(rc == 0, "hashgate exited with %s" % rc)
    finally:
        for p in (gw, a):
            if p:
                try:
                    p.stop(timeout=10)
                except Exception:  # noqa: BLE001
                    pass
        node.stop()
    a_rep = json.load(open(os.path.join(d, "a.json")))
    after = [s for s in a_rep["shares"] if s["at"] > stopped_at + 0.5]
    check(len(after) > 0, "no share reached the pool after the node stopped")
    check(not lost, "a pool connection was lost: %s" % lost)
    print("shares accepted by the pool after the node stopped: %d" % len(after))


TESTS = {
    "stale_tip_moved": test_stale_tip_moved,
    "together_not_flagged": test_together_not_flagged,
    "payout_dropped": test_payout_dropped,
    "bad_jobs_counted": test_bad_jobs_counted,
    "litecoind_regtest": test_litecoind_regtest,
}

if __name__ == "__main__":
    run(TESTS)

#!/usr/bin/env python3
"""Firmware compatibility profiles end to end: simulated miners that present
the user agents of real firmware and enforce its limits (sim_miner.py:
--max-extranonce2, --integer-difficulty, --ignore-set-extranonce) mine
through hashgate without losing a share; failover moves each the way its
profile says; a miner that contradicts its profile is caught once."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import PY, SUPPORT, Failure, Proc, Scenario, check, events, run, to_yaml  # noqa: E402

# (user agent, limits sim_miner enforces for it, profile hashgate must pick)
CGMINER_LINEAGE = [
    ("bmminer/2.0.0", ["--max-extranonce2", "8"], "antminer"),
    ("whatsminer/v1.1", ["--max-extranonce2", "8"], "whatsminer"),
    ("cgminer/4.11.1", ["--max-extranonce2", "8", "--firmware", "cgminer"], "avalon"),
    ("2024-05-06-0-fb624381-24.04-plus;bosminer-plus-tuner 0.9.0-fb624381",
     ["--max-extranonce2", "8", "--subscribe-null", "--version-rolling"], "braiins"),
    ("xminer-1.2.6", ["--max-extranonce2", "8"], "vnish"),
    ("PowerPlay-BMS/1.24.0", ["--max-extranonce2", "8"], "epic"),
    ("NiceHash/1.0.0", ["--max-extranonce2", "8", "--extranonce-subscribe"], "nicehash"),
    ("cpuminer/2.5.1", ["--firmware", "minerd"], "cpuminer"),
]


def start_miners(port, d, name, agent, limits, shares=None, duration=None, seed=1, extra=()):
    report = os.path.join(d, "m-%s.json" % name)
    argv = [PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", "2", "--algorithm", "scrypt",
            "--agent", agent, "--worker-prefix", name + ".", "--report", report, "--seed", str(seed),
            "--timeout", "150"] + list(limits) + list(extra)
    argv += ["--duration", str(duration)] if duration else ["--shares", str(shares)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), report


def collect(procs):
    out = {}
    for name, (p, report) in procs.items():
        _, err = p.communicate(timeout=300)
        check(p.returncode == 0, "sim_miner %s failed: %s" % (name, err.decode()[-1500:]))
        with open(report) as f:
            out[name] = json.load(f)["miners"]
    return out


def builtin_agents(hashgate, mode, pool_en2):
    """Every built-in family mines with zero lost shares (pool: pool_en2 bytes
    of extranonce2, a fractional difficulty)."""
    scn = Scenario(hashgate, pool_args=["--difficulty", "0.003", "--extranonce2-size", str(pool_en2),
                                        "--job-interval", "30"],
                   config={"aggregation": {"mode": mode},
                           "vardiff": {"initial": 0.001, "min": 0.0005, "max": 0.004, "target_share_seconds": 1}})
    try:
        procs = {}
        for i, (agent, limits, _) in enumerate(CGMINER_LINEAGE):
            name = "f%d" % i
            procs[name] = start_miners(scn.port, scn.dir, name, agent, limits, shares=3, seed=i + 1)
        # Bitaxe truncates fractional difficulties: it must only be sent
        # integers (>= 1, where a Python scrypt miner finds no share in a
        # test's time: this one checks what it is told, for a while).
        procs["bitaxe"] = start_miners(scn.port, scn.dir, "bitaxe", "bitaxe/BM1370/v2.12.2",
                                       ["--integer-difficulty", "--version-rolling"], duration=6)
        reports = collect(procs)
        evs, pool = scn.finish()
    except Exception:
        scn.abort()
        raise
    # Which profile each got, from the API's view in the log of authorizations.
    for i, (agent, limits, profile) in enumerate(CGMINER_LINEAGE):
        for m in reports["f%d" % i]:
            check(m["lost_shares"] == 0, "%s (%s) lost %d shares (extranonce2 %s bytes)" %
                  (m["worker"], agent, m["lost_shares"], m["extranonce2_size"]))
            check(m["accepted"] == m["submitted"] and m["accepted"] >= 3,
                  "%s (%s): %d submitted, %d accepted, rejected %s" %
                  (m["worker"], agent, m["submitted"], m["accepted"], m["rejected"]))
            if "--max-extranonce2" in limits:
                check(m["extranonce2_size"] <= 8, "%s got %d bytes of extranonce2" % (m["worker"], m["extranonce2_size"]))
    for m in reports["bitaxe"]:
        check(m["truncated_difficulties"] == 0, "bitaxe was sent fractional difficulties: %s" % m["difficulties_seen"])
        check(m["difficulties_seen"] and all(d >= 1 for d in m["difficulties_seen"]),
              "bitaxe difficulties: %s" % m["difficulties_seen"])
        check(m["rejected"] == {}, "bitaxe shares rejected: %s" % m["rejected"])
    c = pool["counts"]
    check(c["accepted"] > 0 and c["low_difficulty"] == 0 and c["other"] == 0 and c["duplicate"] == 0,
          "the pool refused forwarded shares: %s" % c)
    return reports


def test_builtin_agents_aggregate(hashgate):
    builtin_agents(hashgate, "aggregate", 8)


def test_builtin_agents_passthrough(hashgate):
    builtin_agents(hashgate, "passthrough", 8)


def test_wide_pool_extranonce(hashgate):
    """A pool with 16 bytes of extranonce2: cgminer-lineage agents get at most 8
    (the rest fixed by hashgate inside their slice), CPU miners the whole rest."""
    reports = builtin_agents(hashgate, "aggregate", 16)
    cpu = reports["f%d" % [p for _, _, p in CGMINER_LINEAGE].index("cpuminer")]
    check(all(m["extranonce2_size"] > 8 for m in cpu), "cpuminer got %s" % [m["extranonce2_size"] for m in cpu])


def test_profiles_in_api_and_metrics(hashgate):
    """/api/v1/workers shows each worker's user agent and profile; metrics count
    sessions per profile; an operator profile overrides a built-in."""
    import urllib.request
    scn = Scenario(hashgate, pool_args=["--difficulty", "0.003", "--job-interval", "30"],
                   config={"admin": {"bind": "127.0.0.1:0"},
                           "vardiff": {"initial": 0.001, "min": 0.0005, "max": 0.004, "target_share_seconds": 1},
                           "compatibility": {"profiles": [{"name": "antminer", "max_extranonce2_size": 3}]}})
    try:
        admin = scn.gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                                 and json.loads(l)["port"])
        procs = {"ant": start_miners(scn.port, scn.dir, "ant", "bmminer/2.0.0", ["--max-extranonce2", "3"], shares=2),
                 "cpu": start_miners(scn.port, scn.dir, "cpu", "cpuminer-opt/26.1", [], shares=2, seed=5)}
        p, _ = start_miners(scn.port, scn.dir, "held", "whatsminer/v1.1", [], duration=15, seed=9)
        reports = collect(procs)
        deadline = time.time() + 10
        while True:
            workers = json.load(urllib.request.urlopen("http://127.0.0.1:%d/api/v1/workers" % admin))["workers"]
            metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin).read().decode()
            names = {w["name"]: w for w in workers}
            # Snapshots are published once a second: wait for one that has them all.
            if (all(n in names for n in ("ant.0000", "cpu.0000")) and names.get("held.0000", {}).get("sessions")
                    and 'hashgate_profile_sessions{profile="whatsminer"} 2' in metrics) or time.time() > deadline:
                break
            time.sleep(0.2)
        p.kill()
        p.wait()
        scn.finish()
    except Exception:
        scn.abort()
        raise
    by = {w["name"]: w for w in workers}
    check(by["ant.0000"]["agent"] == "bmminer/2.0.0" and by["ant.0000"]["profile"] == "antminer", str(by.get("ant.0000")))
    check(by["cpu.0000"]["agent"] == "cpuminer-opt/26.1" and by["cpu.0000"]["profile"] == "cpuminer",
          str(by.get("cpu.0000")))
    for m in reports["ant"]:
        check(m["extranonce2_size"] == 3, "the operator's antminer profile allows 3 bytes, miner got %s" %
              m["extranonce2_size"])
        check(m["lost_shares"] == 0 and m["accepted"] >= 2, "ant miner: %s" % m)
    line = [l for l in metrics.splitlines() if l.startswith('hashgate_profile_sessions{profile="whatsminer"}')]
    check(line and float(line[0].split()[-1]) == 2, "whatsminer sessions in metrics: %s" % line)


def test_failover_by_profile(hashgate):
    """The primary dies: each miner is moved the way its profile says
    (set_extranonce, client.reconnect, or a close for an operator profile that
    does not follow reconnects) and no share it sent is lost."""
    d = tempfile.mkdtemp(prefix="hashgate-profiles-")

    def pool(name):
        p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "scrypt", "--difficulty", "0.003",
                  "--job-interval", "30", "--report", os.path.join(d, name + ".json")])
        return p, p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")

    a, a_port = pool("a")
    b, b_port = pool("b")
    cfg = {
        "algorithm": "scrypt",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [{"name": "primary", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0},
                  {"name": "backup", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 1}],
        "vardiff": {"initial": 0.001, "min": 0.0005, "max": 0.004, "target_share_seconds": 1},
        "failover": {"failback_after_seconds": 600, "reconnect_spread_seconds": 0.5},
        "compatibility": {"profiles": [{"name": "closers", "match": ["closer-fw/*"], "reconnect": False}]},
        "logging": {"level": "info", "format": "json"},
        "bans": {"allowlist": ["127.0.0.1/32"]},
    }
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "pool_subscribed"
                     and json.loads(l).get("pool") == "backup")
        procs = {"nh": start_miners(port, d, "nh", "NiceHash/1.0.0", ["--extranonce-subscribe"], duration=16),
                 "ant": start_miners(port, d, "ant", "bmminer/2.0.0", ["--max-extranonce2", "8", "--firmware", "cgminer"],
                                     duration=16, seed=3),
                 "cls": start_miners(port, d, "cls", "closer-fw/1", [], duration=16, seed=4)}
        # Kill the primary once every miner has had a share accepted there.
        time.sleep(6)
        a.p.send_signal(signal.SIGKILL)
        a.p.wait()
        reports = collect(procs)
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        for p in (gw, b):
            try:
                p.stop(timeout=10)
            except Exception:
                pass
    evs = events(gw.err_lines)
    moved = {}
    for e in evs:
        if e.get("event") == "miner_moved":
            moved.setdefault(e.get("how"), 0)
            moved[e.get("how")] += 1
    print("moves after the kill: %s" % moved)
    check(moved.get("set_extranonce", 0) >= 2, "NiceHash (set_extranonce) miners not moved in place: %s" % moved)
    check(moved.get("client.reconnect", 0) >= 2, "Antminer miners not told to reconnect: %s" % moved)
    check(moved.get("close", 0) >= 2, "miners of a no-reconnect profile not closed: %s" % moved)
    for name in ("nh", "ant", "cls"):
        for m in reports[name]:
            check(m["lost_shares"] == 0, "%s lost shares" % m["worker"])
            bad = {k: v for k, v in m["rejected"].items() if k != "21"}
            check(not bad, "%s: shares rejected %s" % (m["worker"], m["rejected"]))
            check(m["accepted"] >= 1, "%s had nothing accepted" % m["worker"])
    b_rep = json.load(open(os.path.join(d, "b.json")))
    check(b_rep["counts"]["accepted"] > 0, "the backup accepted nothing")


def test_contradiction_detected(hashgate):
    """A NiceHash-agent miner that subscribes to extranonce changes but ignores
    them: detected after a move, logged once, counted, then moved by reconnect."""
    d = tempfile.mkdtemp(prefix="hashgate-profiles-")
    import urllib.request
    scn = Scenario(hashgate, pool_args=["--difficulty", "0.003", "--job-interval", "4", "--set-extranonce-after", "5"],
                   config={"admin": {"bind": "127.0.0.1:0"},
                           "vardiff": {"initial": 0.001, "min": 0.0005, "max": 0.004, "target_share_seconds": 1}})
    try:
        admin = scn.gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                                 and json.loads(l)["port"])
        p, report = start_miners(scn.port, d, "liar", "NiceHash/1.0.0", ["--extranonce-subscribe",
                                                                        "--ignore-set-extranonce"], duration=18)
        collect({"liar": (p, report)})
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin).read().decode()
        evs, _ = scn.finish()
    except Exception:
        scn.abort()
        raise
    caught = [e for e in evs if e.get("event") == "miner_contradicts_profile"]
    check(caught, "no miner_contradicts_profile line")
    check(all(e.get("profile") == "nicehash" and e.get("rule") == "set_extranonce" for e in caught), str(caught))
    check(len(caught) == 2, "one line per worker expected (2 workers), got %d" % len(caught))
    line = [l for l in metrics.splitlines()
            if l.startswith('hashgate_profile_violations_total{profile="nicehash",rule="set_extranonce"}')]
    check(line and float(line[0].split()[-1]) == 2, "violations metric: %s" % line)


if __name__ == "__main__":
    run({"builtin_agents_aggregate": test_builtin_agents_aggregate,
         "builtin_agents_passthrough": test_builtin_agents_passthrough,
         "wide_pool_extranonce": test_wide_pool_extranonce,
         "profiles_in_api_and_metrics": test_profiles_in_api_and_metrics,
         "failover_by_profile": test_failover_by_profile,
         "contradiction_detected": test_contradiction_detected})

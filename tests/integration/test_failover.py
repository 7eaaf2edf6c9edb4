#!/usr/bin/env python3
"""Pool failover with the real binary: two mock pools, simulated miners.
The primary is killed; miners move to the backup (in place by
mining.set_extranonce when they subscribed to extranonce changes, by
client.reconnect otherwise); connection attempts to the dead primary follow
the breaker's backoff; when the primary returns, miners fail back after the
configured healthy period."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Failure, Proc, check, events, run, to_yaml  # noqa: E402


def start_pool(name, port, report, extra=()):
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--port", str(port), "--job-interval", "0.5", "--clean-every", "4", "--report", report,
              "--seed", str(port or sum(map(ord, name)))] + list(extra))
    got = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, got


def gap_around(times, t):
    before = [x for x in times if x <= t]
    after = [x for x in times if x > t]
    if not before or not after:
        return None
    return after[0] - before[-1]


def test_primary_killed(hashgate):
    failover_scenario(hashgate, "killed")


def test_primary_silent(hashgate):
    failover_scenario(hashgate, "silent")


def test_primary_garbage(hashgate):
    failover_scenario(hashgate, "garbage")


def test_primary_rejecting(hashgate):
    failover_scenario(hashgate, "reject")


def failover_scenario(hashgate, mode):
    d = tempfile.mkdtemp(prefix="hashgate-failover-")
    fault = [] if mode == "killed" else ["--fault", mode, "--fault-after", "6"]
    a_started = time.time()
    a, a_port = start_pool("a", 0, os.path.join(d, "a1.json"), fault)
    b, b_port = start_pool("b", 0, os.path.join(d, "b.json"))
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [
            {"name": "primary", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0},
            {"name": "backup", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 1},
        ],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "failover": {"connect_timeout_seconds": 3, "job_timeout_seconds": 3, "submit_timeout_seconds": 1,
                     "max_malformed": 3, "failures_to_open": 2,
                     "backoff_initial_seconds": 1, "backoff_max_seconds": 4, "failback_after_seconds": 4,
                     "reconnect_spread_seconds": 2, "warm_standby": True},
        "logging": {"level": "info", "format": "json"},
    }
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    a2 = None
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        # Both pools subscribed (the backup as warm standby) before miners come.
        gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "pool_subscribed"
                     and json.loads(l).get("pool") == "backup")
        reports = [os.path.join(d, "m_sub.json"), os.path.join(d, "m_plain.json")]
        common = ["--port", str(port), "--count", "20", "--algorithm", "sha256d", "--duration", "24",
                  "--timeout", "60"]
        miners = [subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--report", reports[0],
                                    "--worker-prefix", "sub.", "--extranonce-subscribe"] + common,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                  subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--report", reports[1],
                                    "--worker-prefix", "plain.", "--seed", "2"] + common,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
        if mode == "killed":
            time.sleep(4)
            kill_at = time.time()
            a.p.send_signal(signal.SIGKILL)
            a.p.wait()
            time.sleep(6)
            restart_at = time.time()
            a2, _ = start_pool("a", a_port, os.path.join(d, "a2.json"))
        else:
            # The pool turns faulty 6 s after it started (about 4 s into mining).
            kill_at = a_started + 6
            restart_at = None
        for p in miners:
            _, err = p.communicate(timeout=90)
            check(p.returncode == 0, "sim_miner failed: %s" % err[-1500:])
        rc = gw.stop()
        check(rc == 0, "hashgate exit code %s" % rc)
    finally:
        for p in (gw, a2, b, a if mode != "killed" else None):
            if p:
                try:
                    p.stop(timeout=10)
                except Exception:
                    pass
    evs = events(gw.err_lines)
    sub = json.load(open(reports[0]))["miners"]
    plain = json.load(open(reports[1]))["miners"]
    gaps_sub = [gap_around(m["job_times"], kill_at) for m in sub]
    gaps_plain = [gap_around(m["job_times"], kill_at) for m in plain]
    check(all(g is not None for g in gaps_sub + gaps_plain), "a miner had no job on one side of the kill")

    def dist(g):
        return "min %.2f median %.2f p90 %.2f max %.2f s" % (min(g), statistics.median(g),
                                                              sorted(g)[int(0.9 * (len(g) - 1))], max(g))
    print("%s: job gap across the fault, extranonce-subscribed (20): %s" % (mode, dist(gaps_sub)))
    print("%s: job gap across the fault, others (20): %s" % (mode, dist(gaps_plain)))
    check(max(gaps_sub) <= 2.0, "extranonce-subscribed miners waited up to %.2f s" % max(gaps_sub))
    check(max(gaps_plain) <= 5.0, "other miners waited up to %.2f s" % max(gaps_plain))
    for m in sub:
        check(m["set_extranonce"] >= 1, "%s was not moved in place" % m["worker"])
    for m in plain:
        check(m["reconnects"] >= 1, "%s was not told to reconnect" % m["worker"])
    # Attempts on the dead primary: paced by the breaker, no storm.
    attempts = [e for e in evs if e.get("event") == "pool_connecting" and e.get("pool") == "primary"]
    t_attempts = [e for e in attempts]
    print("connection attempts to the primary in all: %d" % len(attempts))
    check(len(attempts) <= 8, "too many connection attempts to a dead pool: %d" % len(attempts))
    names = [e.get("event") for e in evs]
    check("pool_failover" in names, "no pool_failover event")
    b_rep = json.load(open(os.path.join(d, "b.json")))
    check(b_rep["counts"]["accepted"] > 0, "the backup accepted nothing")
    if mode != "killed":
        reasons = [e.get("reason", "") for e in evs if e.get("event") == "pool_disconnected"]
        want = {"silent": "unanswered", "garbage": "malformed", "reject": "rejected"}[mode]
        check(any(want in r or "no job" in r for r in reasons), "%s pool not detected: %s" % (mode, reasons))
        print("%s: detected as: %s" % (mode, reasons[0] if reasons else None))
        return
    check("pool_failback" in names, "no failback to the restarted primary")
    a2_rep = json.load(open(os.path.join(d, "a2.json")))
    check(b_rep["counts"]["accepted"] > 0, "the backup accepted nothing")
    check(a2_rep["counts"]["accepted"] > 0, "the restarted primary accepted nothing after failback")
    for rep in (b_rep, a2_rep):
        c = rep["counts"]
        check(c["duplicate"] == 0 and c["low_difficulty"] == 0 and c["other"] == 0, "bad shares at a pool: %s" % c)
    print("restart at +%.1f s; shares accepted: backup %d, restarted primary %d" %
          (restart_at - kill_at, b_rep["counts"]["accepted"], a2_rep["counts"]["accepted"]))


def pool_message_scenario(hashgate, pool_args, extra_failover=None, duration=12, ignoring=0):
    """Pool A sends something 6 s after it started; returns what everyone saw.
    With `ignoring`, that many more miners subscribe to extranonce changes
    and ignore them (their report is the fourth value returned)."""
    d = tempfile.mkdtemp(prefix="hashgate-poolmsg-")
    a, a_port = start_pool("a", 0, os.path.join(d, "a.json"), pool_args)
    b, b_port = start_pool("b", 0, os.path.join(d, "b.json"))
    failover = {"connect_timeout_seconds": 3, "job_timeout_seconds": 3, "failback_after_seconds": 2,
                "reconnect_spread_seconds": 1}
    failover.update(extra_failover or {})
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [
            {"name": "primary", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0},
            {"name": "backup", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 1},
        ],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "failover": failover,
        "logging": {"level": "info", "format": "json"},
    }
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        reports = [os.path.join(d, "m_sub.json"), os.path.join(d, "m_plain.json"), os.path.join(d, "m_ign.json")]
        common = ["--port", str(port), "--algorithm", "sha256d", "--duration", str(duration), "--timeout", "60"]
        miners = [subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--report", reports[0], "--count", "10",
                                    "--worker-prefix", "sub.", "--extranonce-subscribe"] + common,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                  subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--report", reports[1], "--count", "10",
                                    "--worker-prefix", "plain.", "--seed", "2"] + common,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
        if ignoring:
            miners.append(subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--report", reports[2],
                                            "--count", str(ignoring), "--worker-prefix", "ignoring.", "--seed", "3",
                                            "--extranonce-subscribe", "--ignore-set-extranonce"] + common,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        for p in miners:
            _, err = p.communicate(timeout=90)
            check(p.returncode == 0, "sim_miner failed: %s" % err[-1500:])
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        for p in (gw, a, b):
            try:
                p.stop(timeout=10)
            except Exception:
                pass
    sub = json.load(open(reports[0]))["miners"]
    plain = json.load(open(reports[1]))["miners"]
    out = (events(gw.err_lines), sub, plain, json.load(open(os.path.join(d, "a.json"))),
           json.load(open(os.path.join(d, "b.json"))))
    if ignoring:
        out += (json.load(open(reports[2]))["miners"],)
    return out


def test_pool_set_extranonce(hashgate):
    evs, sub, plain, a, b = pool_message_scenario(hashgate, ["--set-extranonce-after", "6"])
    changed_at = a["events"][0]["at"]
    check(any(e.get("event") == "pool_set_extranonce" for e in evs), "hashgate did not see set_extranonce")
    for m in sub:
        check(m["set_extranonce"] >= 1 and m["reconnects"] == 0, "%s was not re-split in place: %s" %
              (m["worker"], {k: m[k] for k in ("set_extranonce", "reconnects")}))
        g = gap_around(m["job_times"], changed_at)
        check(g is not None and g <= 2.0, "%s waited %s s for work in the new space" % (m["worker"], g))
    for m in plain:
        check(m["reconnects"] >= 1, "%s was not told to reconnect" % m["worker"])
    new_en1 = {c["extranonce1"] for c in a["connections"]} - {s["extranonce1"] for s in a["shares"][:1]}
    after = [s for s in a["shares"] if s["extranonce1"] in new_en1]
    check(len(after) > 0, "no share in the new extranonce space reached the pool")
    c = a["counts"]
    check(c["other"] == 0 and c["low_difficulty"] == 0 and c["duplicate"] == 0, "pool rejected shares: %s" % c)
    print("set_extranonce: %d shares in the new space; re-split in place: %d miners, reconnected: %d" %
          (len(after), len(sub), len(plain)))


def test_set_extranonce_ignored(hashgate):
    """Miners that subscribe to extranonce changes but ignore them: their bad
    shares after the first change give them away; they get client.reconnect,
    and at the second change they get client.reconnect at once."""
    evs, sub, plain, a, b, ign = pool_message_scenario(hashgate, ["--set-extranonce-after", "6,13"],
                                                        duration=19, ignoring=4)
    check(len(a["events"]) == 2, "the pool changed extranonce1 %d times, expected 2" % len(a["events"]))
    second = a["events"][1]["at"]
    flagged = [e for e in evs if e.get("event") == "miner_ignores_set_extranonce"]
    check(sorted(e["worker"] for e in flagged) == sorted(m["worker"] for m in ign),
          "flagged %s, expected each ignoring miner once" % [e["worker"] for e in flagged])
    for m in ign:
        check(m["set_extranonce"] == 1, "%s got set_extranonce %d times: it should be told only once" %
              (m["worker"], m["set_extranonce"]))
        check(m["reconnects"] >= 2, "%s reconnected %d times, expected after each change" % (m["worker"], m["reconnects"]))
        g = gap_around(m["job_times"], second)
        check(g is not None and g <= 5.0, "%s waited %s s for work after the second change" % (m["worker"], g))
    for m in sub:
        check(m["set_extranonce"] == 2 and m["reconnects"] == 0, "%s: %s" %
              (m["worker"], {k: m[k] for k in ("set_extranonce", "reconnects")}))
    c = a["counts"]
    check(c["other"] == 0 and c["low_difficulty"] == 0, "bad shares reached the pool: %s" % c)
    print("set_extranonce ignored: %d miners flagged after %s bad shares; at the second change they were "
          "reconnected at once" % (len(flagged), sorted({e["bad_shares"] for e in flagged})))


def test_pool_session_resumed(hashgate):
    """The primary drops every connection but stays up and resumes sessions
    by id: hashgate reconnects asking for its session back, gets the same
    extranonce1, and miners that cannot move in place keep their space
    without a reconnect or any message."""
    evs, sub, plain, a, b = pool_message_scenario(hashgate, ["--session-ids", "--drop-after", "6"])
    dropped = [e for e in a["events"] if e["event"] == "dropped"]
    check(dropped, "the pool did not drop its connections")
    check([e for e in a["events"] if e["event"] == "resumed"], "the pool resumed no session (hashgate did not ask)")
    resumed = [e for e in evs if e.get("event") == "pool_session_resumed"]
    check(resumed and resumed[0]["miners_kept"] == len(plain),
          "hashgate kept %s miners on the resumed session, expected %d" %
          (resumed[0]["miners_kept"] if resumed else None, len(plain)))
    at = dropped[0]["at"]
    for m in plain:
        check(m["reconnects"] == 0 and m["set_extranonce"] == 0, "%s was disturbed: %s" %
              (m["worker"], {k: m[k] for k in ("reconnects", "set_extranonce")}))
        g = gap_around(m["job_times"], at)
        check(g is not None and g <= 2.0, "%s waited %s s for work on the resumed session" % (m["worker"], g))
    kept = {m["extranonce1"][:8] for m in plain}
    after = [s for s in a["shares"] if s["extranonce1"] in kept and s["at"] > at]
    check(after, "no share in the resumed space reached the pool")
    c = a["counts"]
    check(c["other"] == 0 and c["low_difficulty"] == 0 and c["duplicate"] == 0, "pool rejected shares: %s" % c)
    print("session resumed: %d miners kept their space with no message; job gap max %.2f s" %
          (resumed[0]["miners_kept"], max(gap_around(m["job_times"], at) for m in plain)))


def test_pool_client_reconnect(hashgate):
    evs, sub, plain, a, b = pool_message_scenario(hashgate, ["--reconnect-after", "6"])
    asked_at = a["events"][0]["at"]
    followed = [e for e in evs if e.get("event") == "pool_reconnect_followed"]
    check(followed, "hashgate did not follow the pool's client.reconnect")
    check(len([c for c in a["connections"] if c["subscribed"]]) >= 2, "hashgate did not connect to the pool again")
    gaps = [gap_around(m["job_times"], asked_at) for m in sub]
    check(all(g is not None and g <= 2.0 for g in gaps), "extranonce-subscribed miners waited: %s" % gaps)
    after = [s for s in a["shares"] if s["extranonce1"] not in {a["connections"][0]["extranonce1"]}]
    check(len(after) > 0, "no share reached the pool over the new connection (no failback)")
    print("client.reconnect followed; gap for extranonce-subscribed miners max %.2f s" % max(gaps))


def test_pool_reconnect_elsewhere_refused(hashgate):
    # 127.0.0.2 stands for "another host": refused, and it is loopback anyway.
    evs, sub, plain, a, b = pool_message_scenario(hashgate, ["--reconnect-after", "6", "--reconnect-host",
                                                             "127.0.0.2"])
    refused = [e for e in evs if e.get("event") == "pool_reconnect_refused"]
    check(refused and refused[0]["host"] == "127.0.0.2", "the reconnect to another host was not refused")
    check(not [e for e in evs if e.get("event") == "pool_reconnect_followed"], "followed a reconnect elsewhere")
    for m in sub + plain:
        check(m["reconnects"] == 0, "%s was disturbed by a refused reconnect" % m["worker"])


def test_weights_70_30(hashgate):
    """Two pools of equal priority, weights 70 and 30: accepted difficulty
    splits within +-5 % over the test (counted by the pools themselves).
    The pools ask for the miners' own difficulty, so they see every share
    (2,600 to 3,200 in three runs): the split's sampling noise is then under
    1 %, and 5 % is over five of those. (At 4e-6 the pools saw ~450 shares,
    noise 2.2 %, and a fair split once landed at 75 %.)"""
    d = tempfile.mkdtemp(prefix="hashgate-weights-")
    # Counted in shares, not seconds: every miner finds 50 (2,000 in all), and
    # jobs wait for shares too, so a busy machine slows the test but cannot
    # starve it of shares.
    a, a_port = start_pool("a", 0, os.path.join(d, "a.json"), extra=("--difficulty", "1e-6", "--shares-per-job", "10"))
    b, b_port = start_pool("b", 0, os.path.join(d, "b.json"), extra=("--difficulty", "1e-6", "--shares-per-job", "5"))
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [
            {"name": "seventy", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0,
             "weight": 70},
            {"name": "thirty", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 0,
             "weight": 30},
        ],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "logging": {"level": "info", "format": "json"},
    }
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        for name in ("seventy", "thirty"):
            gw.wait_line(lambda l, n=name: l.startswith("{") and json.loads(l).get("event") == "pool_subscribed"
                         and json.loads(l).get("pool") == n)
        time.sleep(1.0)  # both have a job: both are ready
        r = subprocess.run([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", "40",
                            "--algorithm", "sha256d", "--shares", "50", "--extranonce-subscribe", "--timeout", "240",
                            "--report", os.path.join(d, "m.json")], capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, "sim_miner failed: %s" % r.stderr[-1500:])
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        for p in (gw, a, b):
            try:
                p.stop(timeout=10)
            except Exception:
                pass
    ra = json.load(open(os.path.join(d, "a.json")))
    rb = json.load(open(os.path.join(d, "b.json")))
    da = ra["counts"]["accepted"] * ra["difficulty"]
    db = rb["counts"]["accepted"] * rb["difficulty"]
    share = da / (da + db)
    print("accepted difficulty split: %.1f %% / %.1f %% (%d and %d shares)" %
          (100 * share, 100 * (1 - share), ra["counts"]["accepted"], rb["counts"]["accepted"]))
    check(ra["counts"]["accepted"] + rb["counts"]["accepted"] >= 1000,
          "too few shares reached the pools for a +-5 % check")
    check(abs(share - 0.70) <= 0.05, "split %.3f is not 0.70 +- 0.05" % share)


def test_backoff_schedule(hashgate):
    """The primary stays dead for 60 s: attempts to reach it follow the
    breaker's schedule (a few quick retries, then 1, 2, 4, 8, 16, 16 ... s,
    each +-20 %); when it returns, miners fail back after failback_after."""
    d = tempfile.mkdtemp(prefix="hashgate-backoff-")
    a, a_port = start_pool("a", 0, os.path.join(d, "a1.json"))
    b, b_port = start_pool("b", 0, os.path.join(d, "b.json"))
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [
            {"name": "primary", "url": "stratum+tcp://127.0.0.1:%d" % a_port, "user": "gw", "priority": 0},
            {"name": "backup", "url": "stratum+tcp://127.0.0.1:%d" % b_port, "user": "gw", "priority": 1},
        ],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "failover": {"connect_timeout_seconds": 3, "job_timeout_seconds": 3, "failures_to_open": 3,
                     "backoff_initial_seconds": 1, "backoff_max_seconds": 16, "failback_after_seconds": 5},
        "logging": {"level": "info", "format": "json"},
    }
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    a2 = None
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        miners = subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", "4",
                                   "--algorithm", "sha256d", "--duration", "95", "--extranonce-subscribe",
                                   "--timeout", "120", "--report", os.path.join(d, "m.json")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(3)
        a.p.send_signal(signal.SIGKILL)
        a.p.wait()
        killed_mono = time.monotonic()
        time.sleep(60)
        a2, _ = start_pool("a", a_port, os.path.join(d, "a2.json"))
        restarted_mono = time.monotonic()
        _, err = miners.communicate(timeout=120)
        check(miners.returncode == 0, "sim_miner failed: %s" % err[-1500:])
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        for p in (gw, a2, b):
            if p:
                try:
                    p.stop(timeout=10)
                except Exception:
                    pass
    evs = events(gw.err_lines)

    def ts(e):
        t = e["ts"]  # 2026-11-22T21:00:00.123Z
        h, m, s = t[11:23].split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    lost = [ts(e) for e in evs if e.get("event") == "pool_disconnected" and e.get("pool") == "primary"]
    tries = [ts(e) for e in evs if e.get("event") == "pool_connecting" and e.get("pool") == "primary"]
    first_loss = lost[0]
    during = [t for t in tries if first_loss < t < first_loss + 60]
    gaps = [round(y - x, 2) for x, y in zip([first_loss] + during, during)]
    print("attempts while the primary was dead for 60 s: %d; intervals: %s" % (len(during), gaps))
    # A storm would be dozens; the schedule gives about ten.
    check(5 <= len(during) <= 14, "%d attempts in 60 s" % len(during))
    # Two quick retries while closed (half the first backoff), then open:
    # 1, 2, 4, 8, 16, 16 s, each +-20 % jitter, +0.25 s for the health check.
    # The exact schedule is asserted on a virtual clock (tests/unit/routing,
    # "killed primary"); here, on the wall clock, an attempt is never earlier
    # than the schedule (a busy machine only delays), and at most 2 s later.
    schedule = [0.5, 0.5] + [min(2 ** i, 16) for i in range(len(gaps) - 2)]
    for i, (g, want) in enumerate(zip(gaps, schedule)):
        check(0.8 * want - 0.05 <= g <= 1.2 * want + 2, "interval %d was %.2f s, the schedule says %s s +-20 %%"
              % (i, g, want))
    fb = [ts(e) for e in evs if e.get("event") == "pool_failback"]
    check(fb, "no failback after the primary returned")
    restart_wall = first_loss + (restarted_mono - killed_mono)
    delay = fb[0] - restart_wall
    print("failback %.1f s after the primary returned (failback_after 5 s, backoff cap 16 s)" % delay)
    # The restart can land just after an attempt: the next comes up to 16 s x 1.2 later.
    check(5 <= delay <= 5 + 16 * 1.2 + 2, "failback came %.1f s after the restart" % delay)


TESTS = {"primary_killed": test_primary_killed, "primary_silent": test_primary_silent,
         "primary_garbage": test_primary_garbage,
         "primary_rejecting": test_primary_rejecting, "pool_set_extranonce": test_pool_set_extranonce, "set_extranonce_ignored": test_set_extranonce_ignored,
         "pool_session_resumed": test_pool_session_resumed,
         "pool_client_reconnect": test_pool_client_reconnect,
         "pool_reconnect_elsewhere_refused": test_pool_reconnect_elsewhere_refused,
         "weights_70_30": test_weights_70_30, "backoff_schedule": test_backoff_schedule}

if __name__ == "__main__":
    run(TESTS)

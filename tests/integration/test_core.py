#!/usr/bin/env python3
"""Integration tests of the core gateway: the real hashgate binary between
the mock pool and simulated miners, everything on 127.0.0.1."""
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support"))
import stratum_ref as ref  # noqa: E402
from harness import Failure, RawMiner, Scenario, check, events, run  # noqa: E402

MISBEHAVE = ["--misbehave", "duplicate:4", "--misbehave", "low:4", "--misbehave", "stale:4",
             "--misbehave", "garbage:4"]


def fixed_vardiff(d):
    return {"initial": d, "min": d, "max": d, "target_share_seconds": 10}


def check_miners_got_work(miners, shares):
    for m in miners["miners"]:
        check(m["jobs_received"] >= 1, "%s got no job" % m["worker"])
        check(not m["errors"], "%s: %s" % (m["worker"], m["errors"]))
        check(len(m["shares"]) >= shares, "%s found %d of %d shares" % (m["worker"], len(m["shares"]), shares))
    check(not miners["failures"], "miner failures: %s" % miners["failures"][:3])


def check_pool_clean(pool):
    c = pool["counts"]
    for k in ("stale", "duplicate", "low_difficulty", "unauthorized", "other"):
        check(c[k] == 0, "the pool saw %d %s shares: %s" % (c[k], k, c))
    check(c["accepted"] > 0, "the pool accepted nothing")
    for s in pool["shares"]:
        check(s["share_difficulty"] >= pool["difficulty"], "pool accepted a share under its difficulty: %s" % s)


def check_distinct_space(miners, pool):
    """No two miners on the same extranonce space, and every share the pool
    accepted lies in the space of the miner that found it."""
    en1 = [m["extranonce1"] for m in miners["miners"]]
    check(len(set(en1)) == len(en1), "two miners were given the same extranonce1")
    check(len({len(e) for e in en1}) == 1, "extranonce1 lengths differ")
    by_share = {}
    for m in miners["miners"]:
        for s in m["shares"]:
            by_share[(s["nonce"], s["ntime"], s["version"], s["extranonce2"])] = m
    full_seen = set()
    for s in pool["shares"]:
        miner_en2_len = len(miners["miners"][0]["extranonce1"]) - len(s["extranonce1"])
        key_en2 = s["extranonce2"][miner_en2_len:] if miner_en2_len > 0 else s["extranonce2"]
        m = by_share.get((s["nonce"], s["ntime"], s["version"], key_en2))
        check(m is not None, "the pool accepted a share no miner found: %s" % s)
        check(s["extranonce1"] + s["extranonce2"] == m["extranonce1"] + key_en2,
              "share of %s reached the pool outside its space" % m["worker"])
        full = (s["job"], s["extranonce1"] + s["extranonce2"], s["nonce"], s["ntime"], s["version"])
        check(full not in full_seen, "the pool saw the same share twice")
        full_seen.add(full)


def check_counts(miners, evs, pool, passthrough=False):
    stats = {e["worker"]: e for e in evs if e["event"] == "worker_stats"}
    for m in miners["miners"]:
        st = stats.get(m["worker"])
        check(st is not None, "hashgate has no stats for %s" % m["worker"])
        rejected = sum(m["rejected"].values())
        check(st["accepted"] == m["accepted"],
              "%s: hashgate counted %d accepted, the miner saw %d" % (m["worker"], st["accepted"], m["accepted"]))
        check(st["rejected"] == rejected,
              "%s: hashgate counted %d rejected, the miner saw %d" % (m["worker"], st["rejected"], rejected))
    forwarded = sum(e["forwarded"] for e in stats.values())
    pool_accepted = sum(e["pool_accepted"] for e in stats.values())
    check(pool_accepted == pool["counts"]["accepted"],
          "hashgate counted %d pool-accepted shares, the pool accepted %d" % (pool_accepted, pool["counts"]["accepted"]))
    check(forwarded == pool_accepted, "forwarded %d, pool accepted %d" % (forwarded, pool_accepted))


def check_misbehaviour_answers(miners):
    expect = {"duplicate": "22", "low": "23", "stale": "21"}
    for m in miners["miners"]:
        code = expect.get(m["misbehave"])
        if code:
            check(m["rejected"].get(code, 0) >= 1, "%s (%s) never got error %s: %s" %
                  (m["worker"], m["misbehave"], code, m["rejected"]))
        elif m["misbehave"] is None:
            check(not m["rejected"] or set(m["rejected"]) <= {"21"},
                  "honest %s was rejected: %s" % (m["worker"], m["rejected"]))


def check_no_secret(scn):
    for line in scn.gw.err_lines:
        check("s3cret-pool-pw" not in line, "the pool password appears in the log: %s" % line)


def aggregate_scenario(hashgate, algorithm, miner_diff, pool_diff, count, shares, mode, extra_miner=(),
                       extra_config=None, pool_args=()):
    config = {"vardiff": fixed_vardiff(miner_diff), "aggregation": {"mode": mode}}
    config.update(extra_config or {})
    # Jobs wait for shares too (--shares-per-job, about two shares per miner
    # per job at 200 miners): a busy machine slows the
    # miners, and then the jobs, so the shares a test needs never go stale.
    scn = Scenario(hashgate, algorithm, pool_args=["--difficulty", str(pool_diff), "--job-interval", "3",
                                                   "--clean-every", "2", "--shares-per-job", "100"] + list(pool_args),
                   config=config)
    try:
        miners = scn.miners(count, shares, *extra_miner)
        evs, pool = scn.finish()
    except BaseException:
        scn.abort()
        raise
    return scn, miners, evs, pool


def test_aggregate_scrypt(hashgate):
    scn, miners, evs, pool = aggregate_scenario(hashgate, "scrypt", 0.0005, 0.002, 200, 3, "aggregate",
                                                MISBEHAVE)
    check_miners_got_work(miners, 3)
    check_pool_clean(pool)
    check_distinct_space(miners, pool)
    check_counts(miners, evs, pool)
    check_misbehaviour_answers(miners)
    check_no_secret(scn)
    # Miners below the pool's difficulty still get their shares accepted.
    total = sum(m["accepted"] for m in miners["miners"])
    check(total > pool["counts"]["accepted"], "miners' accepted %d vs pool %d" % (total, pool["counts"]["accepted"]))
    subscribed = [c for c in pool["connections"] if c["subscribed"]]
    check(len(subscribed) == 1, "aggregation used %d pool connections for 200 miners" % len(subscribed))
    check(all(c["workers"] == ["farm.gw"] for c in subscribed), "aggregate mode must authorize as the pool user")


def test_passthrough_scrypt(hashgate):
    scn, miners, evs, pool = aggregate_scenario(hashgate, "scrypt", 0.0005, 0.002, 200, 3, "passthrough",
                                                MISBEHAVE)
    check_miners_got_work(miners, 3)
    check_pool_clean(pool)
    check_distinct_space(miners, pool)
    check_counts(miners, evs, pool)
    check_misbehaviour_answers(miners)
    conns = [c for c in pool["connections"] if c["workers"]]
    check(len(conns) == 200, "passthrough: the pool saw %d authorized connections, expected 200" % len(conns))
    by_en1 = {c["extranonce1"]: c for c in conns}
    for m in miners["miners"]:
        c = by_en1.get(m["extranonce1"])
        check(c is not None and c["workers"] == [m["worker"]],
              "passthrough: %s does not own a pool connection under its own name" % m["worker"])
    for s in pool["shares"]:
        owner = by_en1[s["extranonce1"]]["workers"][0]
        check(s["worker"] == owner, "share submitted under %s on %s's connection" % (s["worker"], owner))


def test_sha256d_version_rolling(hashgate):
    scn, miners, evs, pool = aggregate_scenario(hashgate, "sha256d", 1e-6, 4e-6, 200, 3, "aggregate",
                                                ["--version-rolling"] + MISBEHAVE)
    check_miners_got_work(miners, 3)
    check_pool_clean(pool)
    check_distinct_space(miners, pool)
    check_counts(miners, evs, pool)
    check_misbehaviour_answers(miners)
    for m in miners["miners"]:
        check(m["version_mask"] == "1fffe000", "%s was granted mask %s" % (m["worker"], m["version_mask"]))
    rolled = [s for s in pool["shares"] if s["version"] != 0x20000000]
    check(len(rolled) > 0, "no share with rolled version bits reached the pool")
    for s in pool["shares"]:
        check(s["version"] & ~0x1FFFE000 & 0xFFFFFFFF == 0x20000000, "version outside the mask: %x" % s["version"])


def test_prefix_exhaustion(hashgate):
    # The pool's first job comes 2 s late, so miners arrive while the only
    # connection is subscribed but has no job yet: they must join it, not
    # open another.
    scn, miners, evs, pool = aggregate_scenario(
        hashgate, "sha256d", 1e-6, 4e-6, 300, 1, "aggregate",
        extra_config={"aggregation": {"mode": "aggregate", "prefix_bytes": 1, "min_extranonce2_size": 4}},
        pool_args=["--first-job-delay", "2"])
    check_miners_got_work(miners, 1)
    check_pool_clean(pool)
    check_distinct_space(miners, pool)
    check_counts(miners, evs, pool)
    subscribed = [c for c in pool["connections"] if c["subscribed"]]
    check(len(subscribed) == 2, "300 miners on 1-byte prefixes used %d pool connections, expected 2" % len(subscribed))
    pool_en1 = {c["extranonce1"] for c in subscribed}
    used = {}
    for m in miners["miners"]:
        check(m["extranonce2_size"] == 7, "miner extranonce2 size %s, expected 8 - 1" % m["extranonce2_size"])
        e1 = m["extranonce1"][:-2]
        check(e1 in pool_en1, "miner extranonce1 %s is not inside a pool connection's" % m["extranonce1"])
        used[e1] = used.get(e1, 0) + 1
    check(sorted(used.values()) == [44, 256], "sessions per connection: %s" % sorted(used.values()))


# ---------------------------------------------------------------- error paths


def mine(miner, algorithm, en1, en2_size, want_valid=True):
    job = miner.job
    target = ref.target_for(algorithm, miner.difficulty)
    en2 = os.urandom(en2_size)
    ntime = int(job["ntime"], 16)
    version = int(job["version"], 16)
    for nonce in range(0, 1 << 24):
        h = ref.hash_value(ref.pow_hash(algorithm, ref.build_header(job, en1, en2, ntime, nonce, version)))
        if (h <= target) == want_valid:
            return [job["id"], en2.hex(), "%08x" % ntime, "%08x" % nonce]
    raise Failure("no nonce found")


def test_error_paths(hashgate):
    scn = Scenario(hashgate, "sha256d", pool_args=["--difficulty", "4e-6", "--job-interval", "60"],
                   config={"vardiff": fixed_vardiff(1e-6), "limits": {"max_line_bytes": 4096}})
    try:
        m = RawMiner(scn.port)

        def expect_error(reply, code, what):
            err = reply.get("error")
            check(isinstance(err, list) and err[0] == code, "%s: expected error %s, got %s" % (what, code, reply))

        def valid_share_accepted(what):
            r = m.call("mining.submit", ["w1"] + mine(m, "sha256d", en1, n2))
            check(r.get("result") is True, "after %s the session no longer accepts a valid share: %s" % (what, r))

        expect_error(m.call("mining.submit", ["w1", "1", "00000000", "00000000", "00000000"]), 25, "before subscribe")
        r = m.call("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff"}])
        mask = int(r["result"]["version-rolling.mask"], 16)
        r = m.call("mining.subscribe", ["raw/1"])
        en1, n2 = bytes.fromhex(r["result"][1]), r["result"][2]
        check(m.call("mining.authorize", ["w1", "x"])["result"] is True, "authorize")
        m.wait_job()
        valid_share_accepted("subscribe")

        expect_error(m.call("mining.submit", ["w1", "ffff"] + mine(m, "sha256d", en1, n2)[1:]), 21, "unknown job")
        valid_share_accepted("a stale share")

        expect_error(m.call("mining.submit", ["nobody"] + mine(m, "sha256d", en1, n2)), 24, "unauthorized worker")
        valid_share_accepted("an unauthorized share")

        share = mine(m, "sha256d", en1, n2)
        check(m.call("mining.submit", ["w1"] + share).get("result") is True, "first submit of a share")
        expect_error(m.call("mining.submit", ["w1"] + share), 22, "duplicate")
        valid_share_accepted("a duplicate")

        expect_error(m.call("mining.submit", ["w1"] + mine(m, "sha256d", en1, n2, want_valid=False)), 23,
                     "low difficulty")
        valid_share_accepted("a low-difficulty share")

        job_ntime = int(m.job["ntime"], 16)
        bad = mine(m, "sha256d", en1, n2)
        bad[2] = "%08x" % (job_ntime - 1)
        r = m.call("mining.submit", ["w1"] + bad)
        expect_error(r, 20, "ntime before the job's")
        check("ntime" in r["error"][1], "ntime error message: %s" % r)
        bad[2] = "%08x" % (job_ntime + 7201)
        expect_error(m.call("mining.submit", ["w1"] + bad), 20, "ntime too far ahead")
        valid_share_accepted("an ntime error")

        outside = (~mask) & 0xFFFFFFFF & 0x80000000
        r = m.call("mining.submit", ["w1"] + mine(m, "sha256d", en1, n2) + ["%08x" % outside])
        expect_error(r, 20, "version bits outside the mask")
        check("mask" in r["error"][1], "version error message: %s" % r)
        valid_share_accepted("a version-mask error")

        m.send_raw(b'{"id": 77, "method": "mining.submit", "params": [\n')
        r = m.wait_id(None)
        expect_error(r, -32700, "malformed JSON")
        valid_share_accepted("malformed JSON")

        expect_error(m.call("mining.frobnicate", []), -32601, "unknown method")
        valid_share_accepted("an unknown method")

        peer = "127.0.0.1:%d" % m.s.getsockname()[1]
        m.send_raw(b'{"id": 5, "method": "mining.submit", "params": ["' + b"a" * 5000 + b'"]}\n')
        check(m.f.readline() == b"", "an oversized line must close the session")
        closed = scn.gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "session_closed"
                                  and json.loads(l).get("peer") == peer and json.loads(l))
        check("longer than 4096" in closed["reason"], "close reason: %s" % closed)
        # The gateway is still serving others.
        m2 = RawMiner(scn.port)
        check(m2.call("mining.subscribe", ["raw/2"]).get("error") is None, "a new session after an oversized line")
        evs, pool = scn.finish()
        check(pool["counts"]["stale"] == 0 and pool["counts"]["duplicate"] == 0, "pool saw bad shares: %s" % pool)
        stats = {e["worker"]: e for e in evs if e["event"] == "worker_stats"}
        check(stats["w1"]["rejected_duplicate"] == 1 and stats["w1"]["rejected_low_difficulty"] == 1,
              "hashgate's counts for w1: %s" % stats["w1"])
    except BaseException:
        scn.abort()
        raise


def test_config_errors(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-conf-")
    good = ("algorithm: scrypt\nlisteners:\n  - name: s\n    bind: 127.0.0.1:3333\n"
            "pools:\n  - name: p\n    url: stratum+tcp://127.0.0.1:1\n    user: u\n")
    cases = {
        "unknown key": (good + "vardiff:\n  initial: 1\n  bogus_key: 2\n", ["vardiff.bogus_key", ":11:",
                                                                            "unknown key"]),
        "wrong type": (good.replace("user: u", "user: u\n    priority: high"), ["pools[0].priority", ":9:",
                                                                                  "integer"]),
        "missing pool": ("algorithm: scrypt\nlisteners:\n  - name: s\n    bind: 127.0.0.1:3333\n",
                         ["pools", ":1:", "required"]),
        "empty pools": (good.split("pools:")[0] + "pools: []\n", ["pools", ":5:", "at least one pool"]),
        "bad url": (good.replace("stratum+tcp://127.0.0.1:1", "http://x:1"), ["pools[0].url", ":7:", "scheme"]),
        "unset env": (good.replace("user: u", "user: ${HASHGATE_TEST_UNSET_VAR}"),
                      ["pools[0].user", ":8:", "HASHGATE_TEST_UNSET_VAR"]),
    }
    for name, (text, needles) in cases.items():
        path = os.path.join(d, name.replace(" ", "_") + ".yaml")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run([hashgate, "--check-config", path], capture_output=True, text=True)
        check(r.returncode == 1, "%s: exit code %d, expected 1" % (name, r.returncode))
        for n in needles:
            check(n in r.stderr, "%s: '%s' missing from: %s" % (name, n, r.stderr.strip()))
    path = os.path.join(d, "good.yaml")
    with open(path, "w") as f:
        f.write(good)
    r = subprocess.run([hashgate, "--check-config", path], capture_output=True, text=True)
    check(r.returncode == 0, "a good config fails: %s" % r.stderr)


def test_default_config_runs(hashgate):
    """The README's run command: the default config, nothing else running."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    src = os.path.join(root, "conf", "hashgate.yaml")
    d = tempfile.mkdtemp(prefix="hashgate-default-")
    path = os.path.join(d, "hashgate.yaml")
    with open(src) as f:
        text = f.read().replace("0.0.0.0:3333", "127.0.0.1:0").replace("format: text", "format: json") \
            .replace("127.0.0.1:9100", "127.0.0.1:0")
    with open(path, "w") as f:
        f.write(text)
    from harness import Proc
    gw = Proc([hashgate, "--config", path])
    try:
        port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                            and json.loads(l)["port"])
        admin = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                             and json.loads(l)["port"])
        import urllib.error
        import urllib.request
        ready, deadline = False, time.monotonic() + 10
        while not ready and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % admin, timeout=10) as resp:
                    ready = resp.status == 200
            except urllib.error.HTTPError:
                time.sleep(0.2)
        check(ready, "the default config's /readyz never became ready")
        r = subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                         "support", "sim_miner.py"),
                            "--port", str(port), "--count", "4", "--shares", "3", "--suggest-difficulty", "0.0005"],
                           capture_output=True, text=True, timeout=120)
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        check(summary["finished"] == 4 and summary["accepted"] >= 12, "default config run: %s" % summary)
    finally:
        check(gw.stop() == 0, "hashgate did not stop cleanly")
    stats = events(gw.err_lines, "test_pool_stats")
    check(stats and stats[0]["rejected"] == 0, "the built-in test pool rejected shares: %s" % stats)


def test_pipelined_verdicts_in_order(hashgate):
    """Shares sent back to back are hashed in batches on the hashing threads;
    the answers still come back in the order the shares were sent, on every
    hashing path this CPU supports (forced with HASHGATE_HASH_PATH)."""
    from harness import Proc
    probe = subprocess.run([hashgate, "--version"], capture_output=True, text=True)
    check(probe.returncode == 0, "hashgate --version")
    for path in ("portable", "sse2", "avx2", "avx512"):
        scn = Scenario(hashgate, "scrypt", pool_args=["--difficulty", "0.01", "--job-interval", "60"],
                       config={"vardiff": fixed_vardiff(0.002), "hashing": {"threads": 2}})
        scn.gw.stop()
        scn.pool.stop()
        env_cfg = scn.config_path
        gw = Proc([hashgate, "--config", env_cfg], env={"HASHGATE_HASH_PATH": path})
        pool = Proc([sys.executable, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                  "support", "mock_pool.py"), "--algorithm", "scrypt",
                     "--port", str(scn.pool_port), "--difficulty", "0.01", "--job-interval", "60"])
        try:
            first = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") in ("hashing", "start_failed")
                                 and json.loads(l))
            if first["event"] == "start_failed":
                check("not supported" in first["error"], "start failure for %s: %s" % (path, first))
                gw.stop()
                continue
            check(first["path"] == path and first["threads"] == 2, "hashing line: %s" % first)
            port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                                and json.loads(l)["port"])
            pool.wait_line(lambda l: l.startswith("{"), stream="out")
            time.sleep(0.3)
            m = RawMiner(port)
            r = m.call("mining.subscribe", ["raw/1"])
            en1, n2 = bytes.fromhex(r["result"][1]), r["result"][2]
            check(m.call("mining.authorize", ["w", "x"])["result"] is True, "authorize")
            m.wait_job()
            # 60 shares in one write: valid ones, low-difficulty ones, duplicates.
            shares, expect = [], []
            for i in range(30):
                s = mine(m, "scrypt", en1, n2, want_valid=(i % 3 != 1))
                shares.append(s)
                expect.append(True if i % 3 != 1 else 23)
                if i % 5 == 0 and i % 3 != 1:
                    shares.append(s)
                    expect.append(22)
            data = b""
            for i, s in enumerate(shares):
                data += (json.dumps({"id": 1000 + i, "method": "mining.submit", "params": ["w"] + s}) + "\n").encode()
            m.send_raw(data)
            for i, want in enumerate(expect):
                msg = m.read()
                while msg.get("method"):
                    msg = m.read()
                check(msg["id"] == 1000 + i, "%s: answer %d came for id %s" % (path, 1000 + i, msg["id"]))
                got = True if msg.get("result") is True else msg["error"][0]
                check(got == want, "%s: share %d: expected %s, got %s" % (path, i, want, msg))
        finally:
            check(gw.stop() == 0, "hashgate did not stop cleanly")
            pool.stop()


# ---------------------------------------------------------------- fan-out


class LineClient:
    """A miner on a raw non-blocking socket, read by the test's select loop:
    subscribes and authorizes at once, then records every job id it is sent."""

    def __init__(self, port, name, rcvbuf=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(json.dumps({"id": 1, "method": "mining.subscribe", "params": ["t"]}).encode() + b"\n" +
                       json.dumps({"id": 2, "method": "mining.authorize", "params": [name, "x"]}).encode() + b"\n")
        self.s.setblocking(False)
        self.name = name
        self.buf = b""
        self.answers = {}
        self.jobs = []  # job ids as integers, in the order they came
        self.eof = False

    def pump(self):
        try:
            data = self.s.recv(65536)
        except BlockingIOError:
            return
        except ConnectionError:
            data = b""
        if not data:
            self.eof = True
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)  # a torn or spliced line fails here
            if msg.get("method") == "mining.notify":
                # A session's first job comes under an id of its own (the
                # job's sequence with a variant in the top bits): the
                # sequence is what must arrive in order.
                self.jobs.append(int(msg["params"][0], 16) & ((1 << 48) - 1))
            elif msg.get("method") is None:
                self.answers[msg["id"]] = msg


def test_fanout_slow_reader(hashgate):
    """300 sessions on one pool connection get jobs 50 times a second through
    the fan-out threads (threads: 2 uses them on any machine; 300 is over the
    256 that wakes them). A miner that never reads is dropped once its queued
    output passes limits.max_pending_output_bytes; one that reads in bursts
    (its socket full, sends partial, the rest queued) and every other miner
    get every job, each line whole, in order, none missing."""
    import selectors
    scn = Scenario(hashgate, "sha256d", pool_args=["--difficulty", "4e-6", "--job-interval", "0.02"],
                   config={"vardiff": fixed_vardiff(1e-6), "fanout": {"threads": 2},
                           # Every job passes (no notify-flood thinning): the test is the fan-out's.
                           "limits": {"max_pending_output_bytes": 65536, "pool_job_interval_seconds": 0}})
    try:
        clients = [LineClient(scn.port, "farm.f%d" % i) for i in range(298)]
        laggard = LineClient(scn.port, "farm.laggard", rcvbuf=4096)
        silent = LineClient(scn.port, "farm.silent", rcvbuf=4096)
        readers = clients + [laggard]
        sel = selectors.DefaultSelector()
        for c in clients:
            sel.register(c.s, selectors.EVENT_READ, c)

        def dropped():
            return events(scn.gw.err_lines, "session_dropped")

        def pump(seconds, done=lambda: False):
            end = time.monotonic() + seconds
            while time.monotonic() < end and not done():
                for key, _ in sel.select(timeout=0.05):
                    key.data.pump()

        # The laggard reads only every 1.5 s: between, 75 jobs (~40 KB) pile
        # up in front of a 4 KiB receive buffer.
        deadline = time.monotonic() + 60
        pauses = 0
        while (not dropped() or pauses < 3) and time.monotonic() < deadline:
            pump(1.5)
            for _ in range(50):
                laggard.pump()
            pauses += 1
        d = dropped()
        check(len(d) == 1 and "does not read its socket" in d[0]["reason"] and d[0]["worker"] == "farm.silent",
              "expected the silent miner dropped as a slow reader, got %s" % d)
        sel.register(laggard.s, selectors.EVENT_READ, laggard)
        last = max(c.jobs[-1] for c in readers if c.jobs)
        pump(10, lambda: all(c.jobs and c.jobs[-1] >= last for c in readers))
        closed = events(scn.gw.err_lines, "session_closed")
        check(not closed, "sessions closed: %s" % closed[:3])
        for c in readers:
            check(not c.eof, "%s was disconnected" % c.name)
            check(c.answers.get(2, {}).get("result") is True, "%s: authorize answered %s" % (c.name, c.answers.get(2)))
            check(c.jobs and c.jobs[-1] >= last, "%s got jobs up to %s, others up to %s" %
                  (c.name, c.jobs[-1] if c.jobs else None, last))
            gaps = [(a, b) for a, b in zip(c.jobs, c.jobs[1:]) if b != a + 1]
            check(not gaps, "%s: jobs out of order or missing: %s" % (c.name, gaps[:5]))
        check(len(laggard.jobs) >= 150, "the laggard got only %d jobs" % len(laggard.jobs))
        # Nobody reads any more: SIGTERM's drain ends, and the closed
        # miners' queued bytes must not keep hashgate alive (finish() fails
        # if it has not exited 30 s after the signal).
        scn.finish()
    except BaseException:
        scn.abort()
        raise


TESTS = {
    "aggregate_scrypt": test_aggregate_scrypt,
    "passthrough_scrypt": test_passthrough_scrypt,
    "sha256d_version_rolling": test_sha256d_version_rolling,
    "prefix_exhaustion": test_prefix_exhaustion,
    "error_paths": test_error_paths,
    "config_errors": test_config_errors,
    "default_config_runs": test_default_config_runs,
    "pipelined_verdicts_in_order": test_pipelined_verdicts_in_order,
    "fanout_slow_reader": test_fanout_slow_reader,
}

if __name__ == "__main__":
    run(TESTS)

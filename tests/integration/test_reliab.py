#!/usr/bin/env python3
"""Reliability under broken pools (issue 17), with the real binary, the mock
pool's hostile modes and simulated miners: hashgate's own outage never bans a
miner, a passthrough authorize survives a pool that dies before subscribe,
a reconnect-loop pool follows the breaker's backoff, a port redirect is
bounded, malformed notifies fail a pool even while shares are answered,
mining.set_version_mask reaches the miners, a limbo pool is failed and
retried, and /healthz answers while idle clients hold the admin port."""
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Proc, check, events, run, start_hashgate, to_yaml  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_pool(d, name, extra=(), port=0):
    report = os.path.join(d, name + ".json")
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--job-interval", "0.5", "--clean-every", "4", "--port", str(port), "--report", report,
              "--seed", str(sum(map(ord, name)))] + list(extra))
    got = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, got, report


def config(pools, **extra):
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [{"name": n, "url": "stratum+tcp://127.0.0.1:%d" % p, "user": "gw", "priority": i}
                  for i, (n, p) in enumerate(pools)],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "failover": {"connect_timeout_seconds": 3, "job_timeout_seconds": 60, "failures_to_open": 2,
                     "backoff_initial_seconds": 1, "backoff_max_seconds": 4, "failback_after_seconds": 60,
                     "reconnect_spread_seconds": 1},
        "logging": {"level": "info", "format": "json"},
    }
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def start_gateway(hashgate, d, cfg):
    """hashgate on `cfg` (some of these configs have no admin listener): (process, Stratum port)."""
    gw, port, _ = start_hashgate(hashgate, d, cfg, admin=False)
    return gw, port


def event_of(name, **fields):
    def pred(line):
        if not line.startswith("{"):
            return None
        e = json.loads(line)
        if e.get("event") == name and all(e.get(k) == v for k, v in fields.items()):
            return e
        return None
    return pred


def wait_events(proc, pred, n, timeout=30):
    """The first n log events matching pred (waits until there are n)."""
    deadline = time.monotonic() + timeout
    while True:
        with proc.lock:
            lines = list(proc.err_lines)
        got = [e for e in (pred(l) for l in lines) if e]
        if len(got) >= n:
            return got[:n]
        check(time.monotonic() < deadline and proc.p.poll() is None,
              "%d of %d events seen; last lines:\n%s" % (len(got), n, "\n".join(lines[-10:])))
        time.sleep(0.05)


def ts(e):
    """An event's time from hashgate's own log (ms precision)."""
    t = e["ts"]
    return datetime.datetime.strptime(t[:-1], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def miners(d, port, count, *extra, name="m"):
    report = os.path.join(d, "%s.json" % name)
    argv = [PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", str(count),
            "--algorithm", "sha256d", "--report", report] + list(extra)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), report


def finish_miners(p, report, timeout=90):
    _, err = p.communicate(timeout=timeout)
    check(p.returncode == 0, "sim_miner failed: %s" % err[-1500:])
    return json.load(open(report))


def stop_all(*procs):
    for p in procs:
        if p:
            try:
                p.stop(timeout=10)
            except Exception:
                pass


def test_outage_no_ban(hashgate):
    """25 miners behind one (not allowlisted) address connect while no pool
    is usable, for longer than the subscribe and authorize timeouts; then the
    pool comes: nobody is banned or dropped, every miner mines."""
    d = tempfile.mkdtemp(prefix="hashgate-outage-")
    pool_port = free_port()
    cfg = config([("only", pool_port)],
                 limits={"subscribe_timeout_seconds": 1, "authorize_timeout_seconds": 2})
    gw, port = start_gateway(hashgate, d, cfg)
    pool = None
    try:
        m, report = miners(d, port, 25, "--source-ips", "127.0.0.2", "--shares", "1", "--timeout", "60")
        # The outage: two refused attempts (the breaker opens) and a wait
        # past both timeouts, miners connected all along.
        wait_events(gw, event_of("pool_disconnected", pool="only"), 2)
        time.sleep(3.5)
        # No clean jobs: a share is never stale, so each miner's one share counts.
        pool, _, pool_report = start_pool(d, "only", ["--clean-every", "0", "--job-interval", "2"], port=pool_port)
        rep = finish_miners(m, report)
        gw.stop()
        pool.stop()
    finally:
        stop_all(gw, pool)
    evs = events(gw.err_lines)
    banned = [e for e in evs if e.get("event") == "address_banned"]
    dropped = [e for e in evs if e.get("event") == "session_dropped"]
    check(not banned, "hashgate's own outage banned: %s" % banned[:2])
    check(not dropped, "miners dropped during hashgate's outage: %s" % dropped[:2])
    ms = rep["miners"]
    idle = [x for x in ms if x["accepted"] < 1]
    check(len(ms) == 25 and not idle, "miners without an accepted share after the pool came back: %d of %d (%s)" %
          (len(idle), len(ms), [(x["worker"], x["jobs_received"], x["submitted"], x["rejected"], x["errors"][:2])
                                for x in idle[:3]]))
    check(all(x["reconnects"] == 0 for x in ms), "a miner had to reconnect")
    print("outage: 25 miners from 127.0.0.2 waited through the outage; bans 0, drops 0, all mining")


def test_passthrough_authorize_kept(hashgate):
    """Passthrough: the first pool closes every connection at mining.subscribe;
    every miner's authorize (sent with its subscribe) is answered by the backup."""
    d = tempfile.mkdtemp(prefix="hashgate-pt-")
    a, a_port, a_report = start_pool(d, "a", ["--close-on-subscribe"])
    b, b_port, b_report = start_pool(d, "b")
    cfg = config([("primary", a_port), ("backup", b_port)], aggregation={"mode": "passthrough"})
    gw, port = start_gateway(hashgate, d, cfg)
    try:
        m, report = miners(d, port, 6, "--shares", "1", "--timeout", "30", "--worker-prefix", "gw.rig")
        rep = finish_miners(m, report)
        gw.stop()
    finally:
        stop_all(gw, a, b)
    a_rep, b_rep = json.load(open(a_report)), json.load(open(b_report))
    closed = [e for e in a_rep["events"] if e["event"] == "closed_on_subscribe"]
    check(len(closed) >= 1, "the primary never closed a connection at subscribe")
    ms = rep["miners"]
    workers = {w for c in b_rep["connections"] for w in c["workers"]}
    check(workers == {x["worker"] for x in ms}, "the backup saw workers %s" % sorted(workers))
    check(all(x["accepted"] >= 1 for x in ms), "a miner had no accepted share")
    print("passthrough: %d connections closed at subscribe by the primary; %d/%d miners authorized by the backup"
          % (len(closed), len(workers), len(ms)))


def test_reconnect_loop_backoff(hashgate):
    """A pool answering every connection with client.reconnect (wait 0): each
    attempt waits for the breaker's backoff; the log stays small."""
    d = tempfile.mkdtemp(prefix="hashgate-rloop-")
    a, a_port, a_report = start_pool(d, "a", ["--reconnect-on-connect"])
    gw, port = start_gateway(hashgate, d, config([("loop", a_port)]))
    try:
        followed = wait_events(gw, event_of("pool_reconnect_followed", pool="loop"), 5)
        attempts = wait_events(gw, event_of("pool_connecting", pool="loop"), 5)
        gw.stop()
        a.stop()
    finally:
        stop_all(gw, a)
    # Attempt i+1 starts no earlier than the breaker said after reconnect i
    # (times from hashgate's log, to the millisecond).
    conns = len(json.load(open(a_report))["connections"])
    check(conns <= 7, "%d connections to a reconnect-loop pool" % conns)
    for e0, nxt in zip(followed, attempts[1:]):
        check(ts(nxt) - ts(e0) >= e0.get("retry_in", 0.5) - 0.01, "attempt after %.3f s, the breaker said %.3f s" %
              (ts(nxt) - ts(e0), e0.get("retry_in", 0.5)))
        check(e0.get("counted_as_failure") is True, "a reconnect before any job was not a failure: %s" % e0)
    waits = [e["retry_in"] for e in followed]
    check(waits[-1] >= 1.5 and waits[-1] > waits[0], "no growing backoff: %s" % waits)
    lines = len(gw.err_lines)
    check(lines <= 40 + 6 * conns, "%d log lines for %d connections" % (lines, conns))
    print("reconnect loop: %d connections, waits %s, %d log lines" % (conns, ["%.2f" % w for w in waits], lines))


def test_port_redirect_bounded(hashgate):
    """The pool sends client.reconnect to a port where nothing listens: hashgate
    goes there (logged with that endpoint), fails, and comes back to the
    configured endpoint (logged), where the pool still is."""
    d = tempfile.mkdtemp(prefix="hashgate-redirect-")
    dead = free_port()
    a, a_port, a_report = start_pool(d, "a", ["--reconnect-after", "2", "--reconnect-port", str(dead)])
    gw, port = start_gateway(hashgate, d, config([("main", a_port)]))
    try:
        m, report = miners(d, port, 4, "--duration", "8", "--timeout", "30", "--extranonce-subscribe")
        gw.wait_line(event_of("pool_reconnect_followed", pool="main", endpoint="127.0.0.1:%d" % dead))
        gw.wait_line(event_of("pool_connecting", pool="main", endpoint="127.0.0.1:%d" % dead))
        ended = gw.wait_line(event_of("pool_redirect_ended", pool="main"))
        gw.wait_line(event_of("pool_connecting", pool="main", endpoint="127.0.0.1:%d" % a_port))
        gw.wait_line(event_of("pool_subscribed", pool="main"))
        rep = finish_miners(m, report)
        gw.stop()
        a.stop()
    finally:
        stop_all(gw, a)
    check(ended["back_to"] == "127.0.0.1:%d" % a_port, "redirect ended back to %s" % ended)
    a_rep = json.load(open(a_report))
    check(len(a_rep["connections"]) >= 2, "hashgate never came back to the configured port")
    late = [s for s in a_rep["shares"] if s["at"] > a_rep["events"][0]["at"]]
    check(late, "no share accepted by the pool after the redirect ended")
    print("redirect: to %d, failed, back to %d (%s); %d shares accepted after" %
          (dead, a_port, ended["reason"], len(late)))


def test_malformed_notifies(hashgate):
    """From 3 s on the primary sends only malformed notifies while it answers
    every forwarded share: it fails after failover.max_malformed of them."""
    d = tempfile.mkdtemp(prefix="hashgate-badnotify-")
    a, a_port, a_report = start_pool(d, "a", ["--malformed-notifies-after", "3"])
    b, b_port, _ = start_pool(d, "b")
    cfg = config([("primary", a_port), ("backup", b_port)], failover={"max_malformed": 3})
    gw, port = start_gateway(hashgate, d, cfg)
    try:
        gw.wait_line(event_of("pool_subscribed", pool="primary"))
        m, report = miners(d, port, 8, "--duration", "9", "--timeout", "30", "--extranonce-subscribe")
        lost = gw.wait_line(lambda l: (e := event_of("pool_disconnected", pool="primary")(l)) and
                            "malformed" in e.get("reason", "") and e, timeout=30)
        rep = finish_miners(m, report)
        gw.stop()
        a.stop()
    finally:
        stop_all(gw, a, b)
    a_rep = json.load(open(a_report))
    bad = [e for e in a_rep["events"] if e["event"] == "malformed_notify"]
    answered = [s for s in a_rep["shares"] if s["at"] > bad[0]["at"]] if bad else []
    print("malformed notifies: primary failed (%s); %d shares answered by it after the first bad notify" %
          (lost["reason"], len(answered)))
    # Failed after max_malformed (3) bad notifies on that connection, not after job_timeout (60 s).
    pool_lines = [e for e in events(gw.err_lines) if e.get("event") == "pool_protocol_error" and
                  e.get("link") == lost["link"]]
    check(len(pool_lines) == 3, "%d malformed notifies before the pool failed" % len(pool_lines))
    check(len(answered) > 0, "the primary answered no share while its notifies were malformed: nothing shown")
    check(all(x["jobs_received"] > 0 for x in rep["miners"]), "a miner had no job")


def test_set_version_mask(hashgate):
    """The pool narrows its version mask (1fffe000 -> 00006000) while miners
    roll: they are told the new mask, and no share outside it reaches the pool."""
    d = tempfile.mkdtemp(prefix="hashgate-vmask-")
    a, a_port, a_report = start_pool(d, "a", ["--set-version-mask-after", "3", "--set-version-mask", "00006000"])
    gw, port = start_gateway(hashgate, d, config([("main", a_port)], version_rolling={"enabled": True}))
    try:
        m, report = miners(d, port, 5, "--duration", "7", "--timeout", "30", "--version-rolling")
        rep = finish_miners(m, report)
        gw.stop()
        a.stop()
    finally:
        stop_all(gw, a)
    a_rep = json.load(open(a_report))
    switch = [e for e in a_rep["events"] if e["event"] == "set_version_mask"]
    check(switch, "the pool never changed its mask")
    masks = [x["version_mask"] for x in rep["miners"]]
    check(all(mk == "00006000" for mk in masks), "miners' masks after the change: %s" % masks)
    c = a_rep["counts"]
    check(c["outside_mask"] == 0, "%d shares outside the new mask reached the pool" % c["outside_mask"])
    after = [s for s in a_rep["shares"] if s["at"] > switch[0]["at"]]
    check(after and all(s["version"] & ~0x00006000 & 0xFFFFFFFF == 0x20000000 for s in after),
          "shares accepted after the change do not stay inside the new mask")
    print("set_version_mask: %d miners on mask 00006000; %d shares accepted after, 0 outside the mask" %
          (len(masks), len(after)))


def test_limbo_pool(hashgate):
    """A pool whose subscribe result is unusable (extranonce2_size 0) but which
    sends jobs: failed at once each time, retried with the breaker's backoff,
    and miners work on the backup meanwhile."""
    d = tempfile.mkdtemp(prefix="hashgate-limbo-")
    a, a_port, a_report = start_pool(d, "a", ["--subscribe-result", "en2_0"])
    # No clean jobs on the backup: a share a slow miner finds late is still
    # good there, so a reject can only be hashgate's.
    b, b_port, _ = start_pool(d, "b", ["--clean-every", "0"])
    gw, port = start_gateway(hashgate, d, config([("limbo", a_port), ("backup", b_port)]))
    try:
        fails = wait_events(gw, event_of("pool_disconnected", pool="limbo"), 4)
        m, report = miners(d, port, 4, "--shares", "1", "--timeout", "30")
        rep = finish_miners(m, report)
        gw.stop()
        a.stop()
    finally:
        stop_all(gw, a, b)
    for e in fails:
        check("extranonce2_size" in e["reason"], "failed for another reason: %s" % e["reason"])
    waits = [e["retry_in"] for e in fails]
    check(waits[-1] > waits[0] and waits[-1] >= 1.5, "no growing backoff: %s" % waits)
    check(all(x["accepted"] >= 1 for x in rep["miners"]), "miners did not mine on the backup: %s" %
          [(x["worker"], x["accepted"], x["rejected"], x["errors"][:2]) for x in rep["miners"]])
    subs = len([e for e in json.load(open(a_report))["events"] if e["event"] == "limbo_subscribe"])
    print("limbo: failed %d times (%s), retry_in %s; %d subscribes in all" %
          (len(fails), fails[0]["reason"], ["%.2f" % w for w in waits], subs))


def test_admin_idle_connections(hashgate):
    """64 idle connections to the admin port (no request line, no token): /healthz
    and hashgate --healthcheck still answer, each within 1 s."""
    d = tempfile.mkdtemp(prefix="hashgate-admin-")
    a, a_port, _ = start_pool(d, "a")
    gw, port = start_gateway(hashgate, d, config([("main", a_port)], admin={"bind": "127.0.0.1:0"}))
    idle = []
    try:
        admin = gw.wait_line(event_of("admin_listening"))["port"]
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", admin), timeout=5)
            idle.append(s)
        # Half of them also start a request and never finish it.
        for s in idle[::2]:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for i in range(3):
            t0 = time.monotonic()
            body = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % admin, timeout=1).read()
            check(body == b"ok\n", "healthz said %r" % body)
            r = subprocess.run([hashgate, "--healthcheck", "127.0.0.1:%d" % admin], capture_output=True, text=True,
                               timeout=5)
            check(r.returncode == 0, "--healthcheck failed: %s" % r.stderr)
            print("healthz + --healthcheck with 64 idle admin connections: %.3f s" % (time.monotonic() - t0))
        gw.stop()
    finally:
        for s in idle:
            s.close()
        stop_all(gw, a)


def http_raw(port, request):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(request)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    s.close()
    return out


def test_admin_head_and_token_guesses(hashgate):
    """HEAD gets the headers without a body; wrong bearer tokens are throttled
    per address (past 10 a minute even the right one is refused)."""
    d = tempfile.mkdtemp(prefix="hashgate-admin2-")
    a, a_port, _ = start_pool(d, "a")
    gw, port = start_gateway(hashgate, d, config([("main", a_port)],
                                                 admin={"bind": "127.0.0.1:0", "token": "right-token-0123456789"}))
    try:
        admin = gw.wait_line(event_of("admin_listening"))["port"]
        get = http_raw(admin, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        head = http_raw(admin, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        gh, gb = get.split(b"\r\n\r\n", 1)
        hh, hb = head.split(b"\r\n\r\n", 1)
        check(len(gb) > 100 and b"Content-Length" in hh, "GET /metrics: %d bytes" % len(gb))
        check(hb == b"", "HEAD /metrics sent a %d-byte body" % len(hb))

        def post(token):
            r = http_raw(admin, b"POST /api/v1/pools/main/enable HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                         token + b"\r\n\r\n")
            return int(r.split(b" ", 2)[1])
        check(post(b"right-token-0123456789") == 202, "the right token was refused before any guess")
        codes = [post(b"guess-%d" % i) for i in range(10)]
        check(codes == [401] * 10, "wrong tokens answered %s" % codes)
        after = post(b"right-token-0123456789")
        check(after == 401, "after 10 wrong tokens the right one got %d (not throttled)" % after)
        gw.stop()
    finally:
        stop_all(gw, a)
    print("admin: HEAD without body; 10 wrong tokens, then the right one refused (throttled)")


def test_listen_backlog(hashgate):
    """The Stratum listener's accept queue is as deep as the kernel allows
    (net.core.somaxconn), not 1,024: 5,000 miners connecting at once must
    not overflow it. ss shows a listening socket's backlog as its Send-Q."""
    d = tempfile.mkdtemp(prefix="hashgate-backlog-")
    a, a_port, _ = start_pool(d, "a")
    gw, port = start_gateway(hashgate, d, config([("main", a_port)]))
    try:
        out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], capture_output=True, text=True, check=True).stdout
        gw.stop()
    finally:
        stop_all(gw, a)
    somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
    backlog = int(out.split()[2])
    check(backlog == min(65535, somaxconn), "listen backlog %d, somaxconn %d" % (backlog, somaxconn))
    print("listen backlog %d (somaxconn %d)" % (backlog, somaxconn))


def stratum_hello(port, worker, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.sendall((json.dumps({"id": 1, "method": "mining.subscribe", "params": []}) + "\n" +
               json.dumps({"id": 2, "method": "mining.authorize", "params": [worker, "x"]}) + "\n").encode())
    f = s.makefile("rb")
    seen = set()
    while seen != {1, 2}:
        line = f.readline()
        check(line, "closed before the answers to subscribe and authorize")
        seen.add(json.loads(line).get("id"))
    return s, f


def test_slowloris_after_authorize(hashgate):
    """After authorize, one byte at a time and never a whole line: closed at
    limits.idle_timeout_seconds like any silent connection."""
    d = tempfile.mkdtemp(prefix="hashgate-slowloris-")
    a, a_port, _ = start_pool(d, "a")
    gw, port = start_gateway(hashgate, d, config([("main", a_port)], limits={"idle_timeout_seconds": 2}))
    try:
        s, f = stratum_hello(port, "slow.rig")
        sent = 0
        closed = False
        for _ in range(16):  # 8 s of bytes; the idle limit is 2 s
            try:
                s.sendall(b"{")
                sent += 1
            except OSError:
                closed = True
                break
            time.sleep(0.5)
            if any(e.get("event") == "session_closed" and "idle" in e.get("reason", "") for e in events(gw.err_lines)):
                closed = True
                break
        s.close()
        gw.stop()
    finally:
        stop_all(gw, a)
    check(closed, "a slowloris after authorize was never closed (%d bytes over 8 s)" % sent)
    print("slowloris after authorize: closed as idle after %d one-byte writes" % sent)


def test_hostile_worker_names(hashgate):
    """Worker names with control characters never reach /metrics or text logs
    raw; miner_authorized lines are rate-limited; a submit refused at decode
    is counted in hashgate_shares_total."""
    d = tempfile.mkdtemp(prefix="hashgate-names-")
    a, a_port, _ = start_pool(d, "a")
    cfg = config([("main", a_port)], admin={"bind": "127.0.0.1:0"}, logging={"level": "info", "format": "text"})
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as fh:
        fh.write(to_yaml(cfg) + "\n")
    gw = Proc([hashgate, "--config", path])
    socks = []
    try:
        port = gw.wait_line(lambda l: "listening" in l and "listener=stratum" in l and
                            int(l.split("port=")[1].split()[0]))
        admin = gw.wait_line(lambda l: "admin_listening" in l and int(l.split("port=")[1].split()[0]))
        evil = "evil\x1b[31m\x07\x7f.rig"
        s, f = stratum_hello(port, evil)
        s.sendall(b'{"id":3,"method":"mining.submit","params":[1,2]}\n')
        err = {}
        while err.get("id") != 3:
            line = f.readline()
            check(line, "closed before the answer to a malformed submit")
            err = json.loads(line)
        check(err.get("error"), "malformed submit answered %s" % err)
        for i in range(60):
            socks.append(stratum_hello(port, "burst.%d" % i))
        time.sleep(1.5)  # two snapshots: the one after the shares
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5).read()
        gw.stop()
    finally:
        for x in socks:
            x[0].close()
        stop_all(gw, a)
    raw = [b for b in metrics if b < 0x20 and b != 0x0a or b == 0x7f]
    check(not raw, "control bytes in /metrics: %s" % sorted(set(raw)))
    check(b"evil\\\\x1b[31m" in metrics, "the evil worker's label is missing or not escaped")
    log = "\n".join(gw.err_lines)
    bad = [c for c in log if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f]
    check(not bad, "control characters in text logs: %s" % sorted(set(map(ord, bad))))
    rejected = [l for l in metrics.decode().splitlines()
                if l.startswith('hashgate_shares_total{result="rejected_other"}')]
    check(rejected and float(rejected[0].split()[-1]) >= 1, "the malformed submit is not counted: %s" % rejected)
    auth_lines = [l for l in gw.err_lines if " miner_authorized " in l]
    suppressed = [l for l in gw.err_lines if "log_suppressed" in l and "miner_authorized" in l]
    check(len(auth_lines) < 61 and suppressed, "%d miner_authorized lines for 61 authorizes, suppressed: %s" %
          (len(auth_lines), suppressed[:1]))
    print("names: no control bytes in /metrics or logs; decode-refused submit counted; %d of 61 miner_authorized "
          "lines written" % len(auth_lines))


TESTS = {
    "outage_no_ban": test_outage_no_ban,
    "passthrough_authorize_kept": test_passthrough_authorize_kept,
    "reconnect_loop_backoff": test_reconnect_loop_backoff,
    "port_redirect_bounded": test_port_redirect_bounded,
    "malformed_notifies": test_malformed_notifies,
    "set_version_mask": test_set_version_mask,
    "limbo_pool": test_limbo_pool,
    "admin_idle_connections": test_admin_idle_connections,
    "admin_head_and_token_guesses": test_admin_head_and_token_guesses,
    "listen_backlog": test_listen_backlog,
    "slowloris_after_authorize": test_slowloris_after_authorize,
    "hostile_worker_names": test_hostile_worker_names,
}

if __name__ == "__main__":
    run(TESTS)

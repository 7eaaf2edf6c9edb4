#!/usr/bin/env python3
"""The edge with the real binary: HTTP CONNECT through real proxy clients
(curl --proxytunnel, socat PROXY), and an abuse run: honest simulated miners
working while hundreds of hostile connections from other 127.x.y.z
addresses misbehave."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Proc, check, events, run, start_hashgate, to_yaml  # noqa: E402


def start_pool(d, name="main", extra=()):
    report = os.path.join(d, name + ".json")
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--job-interval", "2", "--clean-every", "0", "--report", report] + list(extra))
    port = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, port, report


def start_gateway(hashgate, d, cfg):
    return start_hashgate(hashgate, d, cfg)


def base_config(pool_port, **extra):
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": [{"name": "main", "url": "stratum+tcp://127.0.0.1:%d" % pool_port, "user": "gw"}],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "admin": {"bind": "127.0.0.1:0"},
        "logging": {"level": "info", "format": "json"},
    }
    cfg.update(extra)
    return cfg


STRATUM_HELLO = b'{"id":1,"method":"mining.subscribe","params":["curl"]}\n' \
                b'{"id":2,"method":"mining.authorize","params":["tunnel.rig","x"]}\n'


def curl_tunnel(proxy_port, target, creds="miner:s3cret"):
    """curl --proxytunnel: CONNECT target through hashgate, then the tunnel
    carries stdin out and the answers back (telnet:// is a raw TCP stream)."""
    proxy = "http://%s@127.0.0.1:%d" % (creds, proxy_port) if creds else "http://127.0.0.1:%d" % proxy_port
    return subprocess.run(["curl", "--silent", "--show-error", "--proxytunnel", "--proxy", proxy, "--max-time", "3",
                           "telnet://%s" % target], input=STRATUM_HELLO, capture_output=True, timeout=20)


def test_http_connect(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-connect-")
    pool, pool_port, _ = start_pool(d)
    cfg = base_config(pool_port, http_connect={"user": "miner", "password": "s3cret",
                                               "routes": [{"target": "stratum.farm.example:3333", "pool": "main"}]})
    gw, port, admin = start_gateway(hashgate, d, cfg)
    try:
        gw.wait_line(lambda l: '"pool_subscribed"' in l)
        # 1. The pool's own address as target: Stratum answers through the tunnel.
        r = curl_tunnel(port, "127.0.0.1:%d" % pool_port)
        out = r.stdout.decode(errors="replace")
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        sub = [m for m in lines if m.get("id") == 1]
        check(sub and isinstance(sub[0].get("result"), list) and len(sub[0]["result"]) == 3,
              "no subscribe answer through curl's tunnel: %r %r" % (out[:300], r.stderr[-300:]))
        check(any(m.get("id") == 2 and m.get("result") is True for m in lines), "authorize not answered: %r" % out)
        check(any(m.get("method") == "mining.notify" for m in lines), "no job through the tunnel")
        # 2. A route alias.
        r = curl_tunnel(port, "stratum.farm.example:3333")
        check(b'"mining.notify"' in r.stdout, "the route alias did not tunnel: %r" % r.stderr)
        # 3. A target that is not configured: 403, hashgate is not an open proxy.
        r = curl_tunnel(port, "127.0.0.1:22")
        check(r.returncode != 0 and b"403" in r.stderr, "an unconfigured target was not refused with 403: %r" % r.stderr)
        # 4. Wrong credentials (socat's PROXY address): 407.
        s = subprocess.run(["socat", "-T", "3", "-", "PROXY:127.0.0.1:127.0.0.1:%d,proxyport=%d,proxyauth=miner:wrong"
                            % (pool_port, port)], input=STRATUM_HELLO, capture_output=True, timeout=20)
        check(s.returncode != 0 and b"Proxy Authentication Required" in s.stderr,
              "wrong proxy credentials were not refused with 407: %r" % s.stderr)
        # 5. And with the right ones, socat tunnels too.
        s = subprocess.run(["socat", "-T", "3", "-", "PROXY:127.0.0.1:127.0.0.1:%d,proxyport=%d,proxyauth=miner:s3cret"
                            % (pool_port, port)], input=STRATUM_HELLO, capture_output=True, timeout=20)
        check(b'"mining.notify"' in s.stdout, "socat with the right credentials got no Stratum: %r" % s.stderr)
        # 6. A malformed request: 400 and a close.
        import socket
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"CONNECT nothing-here HTTP/1.1\r\n\r\n")
        answer = c.recv(4096)
        c.close()
        check(answer.startswith(b"HTTP/1.1 400 "), "a malformed CONNECT got %r" % answer[:60])
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        gw.stop()
        pool.stop()
    evs = events(gw.err_lines)
    tunnels = [e for e in evs if e.get("event") == "miner_tunnel"]
    check(len(tunnels) == 3 and all(e["pool"] == "main" for e in tunnels), "tunnels logged: %s" % tunnels)
    refused = sorted(e["status"] for e in evs if e.get("event") == "miner_connect_refused")
    check(refused == [400, 403, 407], "refusals logged: %s" % refused)
    print("CONNECT: curl and socat tunnels to the pool address and an alias got Stratum; 403 unconfigured, "
          "407 wrong credentials, 400 malformed")


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def metric(admin, name, **labels):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=10).read().decode()
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in labels.items()) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def test_abuse(hashgate):
    """100 honest miners (127.0.0.1, not allowlisted) keep working while 500
    hostile connections misbehave and 2,000 never subscribe, from 40 other
    addresses."""
    d = tempfile.mkdtemp(prefix="hashgate-abuse-")
    pool, pool_port, pool_report = start_pool(d)
    cfg = base_config(pool_port,
                      limits={"subscribe_timeout_seconds": 4, "authorize_timeout_seconds": 6,
                              "max_line_bytes": 16384},
                      bans={"threshold": 100, "ban_seconds": 60})
    gw, port, admin = start_gateway(hashgate, d, cfg)
    hostile_report = os.path.join(d, "hostile.json")
    honest_report = os.path.join(d, "honest.json")
    baseline_report = os.path.join(d, "baseline.json")
    try:
        gw.wait_line(lambda l: '"pool_subscribed"' in l)
        # Baseline: the same honest miners alone, for the latency ratio.
        base = subprocess.run([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", "100",
                               "--algorithm", "sha256d", "--duration", "10", "--timeout", "60",
                               "--worker-prefix", "base.", "--report", baseline_report],
                              capture_output=True, text=True, timeout=120)
        check(base.returncode == 0, "baseline miners failed: %s" % base.stderr[-1500:])
        rss_before = rss_kb(gw.p.pid, "VmRSS")
        honest = subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(port), "--count", "100",
                                   "--algorithm", "sha256d", "--duration", "25", "--min-accepted", "3",
                                   "--timeout", "60", "--report", honest_report], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
        time.sleep(3)
        sources = ",".join("127.0.%d.%d" % (1 + i // 20, 1 + i % 20) for i in range(40))
        hostile = subprocess.run([PY, os.path.join(SUPPORT, "hostile.py"), "--port", str(port), "--sources", sources,
                                  "--garbage", "200", "--oversized", "100", "--share-flood", "200", "--idle", "2000",
                                  "--seconds", "18", "--report", hostile_report],
                                 capture_output=True, text=True, timeout=120)
        check(hostile.returncode == 0, "hostile.py failed: %s" % hostile.stderr[-1500:])
        _, err = honest.communicate(timeout=120)
        check(honest.returncode == 0, "honest miners failed: %s" % err[-1500:])
        time.sleep(1.5)
        peak = rss_kb(gw.p.pid, "VmHWM")
        open_now = metric(admin, "hashgate_connections")
        bans_total = metric(admin, "hashgate_bans_total")
        rejected_banned = metric(admin, "hashgate_connections_rejected_total", reason="banned")
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        gw.stop()
        pool.stop()
    evs = events(gw.err_lines)
    h = json.load(open(hostile_report))["modes"]
    ms = json.load(open(honest_report))["miners"]
    banned = {e["address"] for e in evs if e.get("event") == "address_banned"}
    # Honest miners: never banned, kept working.
    check("127.0.0.1" not in banned, "the honest miners' address was banned")
    for m in ms:
        check(m["accepted"] >= 3 and not m["errors"], "honest %s: %d accepted, errors %s" %
              (m["worker"], m["accepted"], m["errors"][:2]))
        check(not m["closed_by_server"] or m["reconnects"] == 0, "honest %s was closed" % m["worker"])
    def pct(reports):
        lat = sorted(x for m in reports for x in m["latencies"])
        return lat[len(lat) // 2], lat[int(0.99 * (len(lat) - 1))]
    p50, p99 = pct(ms)
    b50, b99 = pct(json.load(open(baseline_report))["miners"])
    # Hostile: every connection refused or closed by hashgate; none left.
    for mode, st in h.items():
        check(st["still_open"] == 0, "%s: %d hostile connections still open at the end" % (mode, st["still_open"]))
    check(len(banned) >= 20, "only %d hostile addresses banned" % len(banned))
    check(open_now == 0, "hashgate still holds %s connections after the test" % open_now)
    check(peak < 512 * 1024, "peak RSS %d KiB" % peak)
    pool_rep = json.load(open(pool_report))
    check(pool_rep["counts"]["low_difficulty"] == 0 and pool_rep["counts"]["other"] == 0,
          "hostile shares reached the pool: %s" % pool_rep["counts"])
    summary = {
        "honest_miners": len(ms), "honest_accepted": sum(m["accepted"] for m in ms),
        "honest_share_answer_p50_ms": round(p50 * 1000, 2), "honest_share_answer_p99_ms": round(p99 * 1000, 2),
        "baseline_p50_ms": round(b50 * 1000, 2), "baseline_p99_ms": round(b99 * 1000, 2),
        "p99_ratio_under_abuse": round(p99 / b99, 2),
        "hostile": h, "addresses_banned": len(banned), "bans_total": bans_total,
        "connections_refused_while_banned": rejected_banned,
        "rss_before_kib": rss_before, "peak_rss_kib": peak,
    }
    # Beside the run's other files (a temp dir), never in the current directory.
    out = os.path.join(d, "abuse_report.json")
    with open(out, "w") as f:
        json.dump(summary, f, indent=1)
    print("abuse: %s (written to %s)" % (json.dumps(summary), out))


TESTS = {
    "http_connect": test_http_connect,
    "abuse": test_abuse,
}

if __name__ == "__main__":
    run(TESTS)

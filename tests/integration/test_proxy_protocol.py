#!/usr/bin/env python3
"""PROXY protocol with a real HAProxy (Debian's package) in front of hashgate:
`send-proxy` (v1) and `send-proxy-v2` backends to one hashgate listener that
trusts 127.0.0.1. The "real" client addresses are other 127.x.y.z addresses
the miners bind to before connecting to HAProxy. An abusive miner behind the
balancer is banned alone; honest miners behind the same balancer keep mining;
a PROXY header from an untrusted address, and a trusted one without a header,
are refused, logged and counted; the bans API and the logs show the real
addresses."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Failure, Proc, check, events, run, start_hashgate, to_yaml  # noqa: E402

SUBSCRIBE = b'{"id":1,"method":"mining.subscribe","params":["probe/1"]}\n'


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_pool(d):
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--job-interval", "2", "--clean-every", "0", "--report", os.path.join(d, "pool.json")])
    port = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, port


def start_gateway(hashgate, d, pool_port):
    cfg = {
        "algorithm": "sha256d",
        "listeners": [{"name": "lb", "bind": "127.0.0.1:0", "proxy_protocol": "any",
                       "trusted_proxies": ["127.0.0.1/32"]}],
        "pools": [{"name": "main", "url": "stratum+tcp://127.0.0.1:%d" % pool_port, "user": "gw"}],
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "bans": {"threshold": 100, "ban_seconds": 300},
        "admin": {"bind": "127.0.0.1:0"},
        "logging": {"level": "info", "format": "json"},
    }
    return start_hashgate(hashgate, d, cfg)


def start_haproxy(d, gw_port):
    """Two TCP frontends: v1 (send-proxy) and v2 (send-proxy-v2), both to
    hashgate, connecting from 127.0.0.1 (the trusted balancer address)."""
    fe1, fe2 = free_port(), free_port()
    conf = """global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 120s
    timeout server 120s
frontend fe_v1
    bind 127.0.0.1:{fe1}
    default_backend be_v1
backend be_v1
    server gw 127.0.0.1:{gw} send-proxy source 127.0.0.1
frontend fe_v2
    bind 127.0.0.1:{fe2}
    default_backend be_v2
backend be_v2
    server gw 127.0.0.1:{gw} send-proxy-v2 source 127.0.0.1
""".format(fe1=fe1, fe2=fe2, gw=gw_port)
    path = os.path.join(d, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(conf)
    check(subprocess.run(["haproxy", "-c", "-q", "-f", path]).returncode == 0, "haproxy rejects its config")
    hp = Proc(["haproxy", "-db", "-f", path])
    for port in (fe1, fe2):
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                check(hp.p.poll() is None, "haproxy exited: %s" % "\n".join(hp.err_lines[-10:]))
                time.sleep(0.05)
        else:
            check(False, "haproxy does not listen on %d" % port)
    # Another process on a port picked above would have answered instead.
    time.sleep(0.2)
    check(hp.p.poll() is None, "haproxy exited: %s" % "\n".join(hp.err_lines[-10:]))
    return hp, fe1, fe2


def connect_from(source, port):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def read_until_closed(s, limit=1 << 20):
    """Everything the server sends until it closes (a reset counts as closed)."""
    got = b""
    try:
        while len(got) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        pass
    s.close()
    return got


def abuse(gw, source, port):
    """Malformed JSON-RPC lines, reconnecting when closed, until hashgate logs
    the ban of `source`; the number of lines it took."""
    sent = 0
    for _ in range(20):
        s = connect_from(source, port)
        try:
            for _ in range(200):
                sent += 1
                s.sendall(b'{"id": %d, "method": "mining.subscribe", "params": [}\n' % sent)
                s.settimeout(0.05)
                try:
                    if s.recv(65536) == b"":
                        break
                except socket.timeout:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(10)
        read_until_closed(s)
        try:  # the log line may trail the close by a moment (read by another thread)
            gw.wait_line(lambda l: '"address_banned"' in l and json.loads(l).get("address") == source, timeout=2)
            return sent
        except Failure:
            pass
    return None


def subscribe_answered(source, port):
    s = connect_from(source, port)
    s.sendall(SUBSCRIBE)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    return b'"id":1' in buf and b'"result"' in buf


def metric(admin, name, **labels):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=10).read().decode()
    want = name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def settled_metric(admin, want, name, **labels):
    """The metric once the admin snapshot (published each second) shows at
    least `want`, or its last value after 10 s."""
    v = 0.0
    for _ in range(100):
        v = metric(admin, name, **labels)
        if v >= want:
            break
        time.sleep(0.1)
    return v


def steady_metric(admin, name, **labels):
    """The metric once two snapshots (1 s apart) agree: what came before is
    all counted."""
    v = metric(admin, name, **labels)
    for _ in range(10):
        time.sleep(1.2)
        w = metric(admin, name, **labels)
        if w == v:
            break
        v = w
    return v


def v2_header(src, sport, dst, dport):
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12) + socket.inet_aton(src) +
            socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


def test_haproxy(hashgate):
    check(shutil.which("haproxy") is not None, "haproxy is not installed (scripts/deps.sh --test)")
    d = tempfile.mkdtemp(prefix="hashgate-proxyproto-")
    pool, pool_port = start_pool(d)
    gw, gw_port, admin = start_gateway(hashgate, d, pool_port)
    hp = None
    honest = []
    try:
        gw.wait_line(lambda l: '"pool_subscribed"' in l)
        hp, fe1, fe2 = start_haproxy(d, gw_port)
        # Honest miners behind both frontends, from their own addresses.
        for fe, src, prefix in ((fe1, "127.0.0.2", "v1rig."), (fe2, "127.0.0.5", "v2rig.")):
            report = os.path.join(d, prefix + "json")
            proc = subprocess.Popen([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(fe), "--count", "4",
                                     "--algorithm", "sha256d", "--shares", "3", "--duration", "14",
                                     "--timeout", "90", "--source-ips", src, "--worker-prefix", prefix,
                                     "--report", report], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            honest.append((proc, report, src))
        time.sleep(3)  # the honest miners are mining when the abuse starts
        # Abusers behind the same HAProxy: banned by their own addresses.
        sent_v1 = abuse(gw, "127.0.0.3", fe1)
        sent_v2 = abuse(gw, "127.0.0.4", fe2)
        check(sent_v1 is not None and sent_v2 is not None, "abusers behind HAProxy were not banned: %s %s; "
              "hashgate's last lines:\n%s\nhaproxy:\n%s" % (sent_v1, sent_v2, "\n".join(gw.err_lines[-25:]),
                                                        "\n".join(hp.err_lines[-10:])))
        # Banned: a new connection from that address through HAProxy gets nothing;
        # a new address through the same HAProxy is served.
        rejected_before = steady_metric(admin, "hashgate_connections_rejected_total", reason="banned")
        check(not subscribe_answered("127.0.0.3", fe1), "a banned address was served through HAProxy (v1)")
        check(not subscribe_answered("127.0.0.4", fe2), "a banned address was served through HAProxy (v2)")
        check(subscribe_answered("127.0.0.6", fe1), "a new address through HAProxy (v1) was not served")
        check(subscribe_answered("127.0.0.6", fe2), "a new address through HAProxy (v2) was not served")
        rejected_after = settled_metric(admin, rejected_before + 2, "hashgate_connections_rejected_total",
                                        reason="banned")
        check(rejected_after - rejected_before == 2, "banned refusals counted %s -> %s" % (rejected_before,
                                                                                          rejected_after))
        # A PROXY header straight from an untrusted address: refused, nothing served.
        s = connect_from("127.0.0.7", gw_port)
        s.sendall(b"PROXY TCP4 10.9.8.7 127.0.0.1 40000 3333\r\n" + SUBSCRIBE)
        check(read_until_closed(s) == b"", "an untrusted v1 header got an answer")
        s = connect_from("127.0.0.8", gw_port)
        s.sendall(v2_header("10.9.8.7", 40000, "127.0.0.1", 3333) + SUBSCRIBE)
        check(read_until_closed(s) == b"", "an untrusted v2 header got an answer")
        # A direct client from an untrusted address without a header is a plain miner.
        check(subscribe_answered("127.0.0.9", gw_port), "a direct miner (untrusted, no header) was not served")
        # The trusted balancer's address without a header: refused, not banned.
        s = connect_from("127.0.0.1", gw_port)
        s.sendall(SUBSCRIBE)
        check(read_until_closed(s) == b"", "a trusted address without a PROXY header was served")
        bans = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/api/v1/bans" % admin, timeout=10).read())
        ban_list = bans["bans"] if isinstance(bans, dict) else bans
        banned_api = sorted(b["address"] for b in ban_list)
        counts = {r: settled_metric(admin, want, "hashgate_proxy_protocol_total", result=r)
                  for r, want in (("missing", 1), ("untrusted", 2), ("v1", 7), ("v2", 7))}
        for proc, report, src in honest:
            _, err = proc.communicate(timeout=120)
            check(proc.returncode == 0, "honest miners from %s failed: %s" % (src, err[-1500:]))
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        for proc, _, _ in honest:
            if proc.poll() is None:
                proc.kill()
        gw.stop()
        if hp:
            hp.stop()
        pool.stop()
    evs = events(gw.err_lines)
    check(banned_api == ["127.0.0.3", "127.0.0.4"], "bans API lists %s" % banned_api)
    banned_log = sorted(e["address"] for e in evs if e.get("event") == "address_banned")
    check(banned_log == ["127.0.0.3", "127.0.0.4"], "address_banned logged for %s" % banned_log)
    for proc, report, src in honest:
        for m in json.load(open(report))["miners"]:
            check(m["accepted"] >= 3 and not m["errors"], "honest %s (%s): %d accepted, errors %s" %
                  (m["worker"], src, m["accepted"], m["errors"][:2]))
            check(not m["closed_by_server"], "honest %s (%s) was closed by hashgate" % (m["worker"], src))
    # Logs name the real address, never the balancer's, for what the abusers did.
    dropped = [e for e in evs if e.get("event") == "session_dropped" and e.get("reason") == "address banned"]
    check(dropped and all(e["peer"].split(":")[0] in ("127.0.0.3", "127.0.0.4") for e in dropped),
          "ban closes logged with peers %s" % [e.get("peer") for e in dropped])
    refused = [e for e in evs if e.get("event") == "proxy_header_refused"]
    untrusted = sorted(e["peer"].split(":")[0] for e in refused if e["error"] == "untrusted")
    check(untrusted == ["127.0.0.7", "127.0.0.8"], "untrusted refusals logged for %s" % untrusted)
    missing = [e for e in refused if e["error"] == "missing"]
    check(len(missing) == 1 and missing[0]["peer"].startswith("127.0.0.1:"), "missing header logged: %s" % missing)
    check(counts["untrusted"] == 2 and counts["missing"] == 1, "refusal counters: %s" % counts)
    # 4 honest + 1 abuser + 2 probes per frontend went through it.
    check(counts["v1"] >= 7 and counts["v2"] >= 7, "headers accepted by version: %s" % counts)
    print("proxy protocol: banned %s only (v1 abuser after %d lines, v2 after %d); 8 honest miners behind the "
          "same HAProxy kept mining; untrusted headers and a missing header refused; counters %s"
          % (banned_log, sent_v1, sent_v2, counts))


TESTS = {"haproxy": test_haproxy}

if __name__ == "__main__":
    run(TESTS)

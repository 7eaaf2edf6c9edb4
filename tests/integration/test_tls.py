#!/usr/bin/env python3
"""TLS with the real binary: a test CA and certificates made here with the
openssl CLI, a stratum+ssl mock pool (Python's ssl), and miners that speak
TLS to hashgate's TLS listener. Checks that verification, SNI names and pins
work, and that a failed handshake is a clear error that opens the breaker."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import PY, SUPPORT, Proc, check, events, run, to_yaml  # noqa: E402


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    return os.path.join(d, name + ".pem")


def make_cert(d, ca, name, sans):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=%s" % name,
            "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nextendedKeyUsage=serverAuth\n" % sans)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key", "-CAcreateserial",
            "-days", "2", "-out", name + ".pem", "-extfile", name + ".ext", cwd=d)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


def spki_pin(d, cert):
    """The SHA-256 of the certificate's public key (DER SubjectPublicKeyInfo), by the openssl CLI."""
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"], capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, capture_output=True,
                         check=True).stdout
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=der, capture_output=True, check=True).stdout
    return out.split()[0].decode()


class Pki:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hashgate-tls-")
        self.ca = make_ca(self.dir, "test-ca")
        self.other_ca = make_ca(self.dir, "other-ca")
        self.pool_cert, self.pool_key = make_cert(self.dir, "test-ca", "pool", "DNS:pool.test,IP:127.0.0.1")
        self.gw_cert, self.gw_key = make_cert(self.dir, "test-ca", "gateway", "DNS:localhost,IP:127.0.0.1")


def start_tls_pool(pki, report):
    p = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", "sha256d", "--difficulty", "4e-6",
              "--job-interval", "1", "--report", report, "--tls-cert", pki.pool_cert, "--tls-key", pki.pool_key])
    port = p.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None, stream="out")
    return p, port


def start_gateway(d, pools, listeners=None, failover=None):
    cfg = {
        "algorithm": "sha256d",
        "listeners": listeners or [{"name": "stratum", "bind": "127.0.0.1:0"}],
        "pools": pools,
        "vardiff": {"initial": 1e-6, "min": 1e-6, "max": 1e-6, "target_share_seconds": 10},
        "logging": {"level": "debug", "format": "json"},
    }
    if failover:
        cfg["failover"] = failover
    path = os.path.join(d, "hashgate-%d.yaml" % time.monotonic_ns())
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return path


def listening_ports(gw, n):
    ports = {}
    deadline = time.monotonic() + 20
    while len(ports) < n and time.monotonic() < deadline:
        for e in events(list(gw.err_lines), "listening"):
            ports[e["listener"]] = e["port"]
        time.sleep(0.05)
    check(len(ports) == n, "hashgate did not start its %d listeners: %s" % (n, gw.err_lines[-5:]))
    return ports


def test_tls_pool_and_listener(hashgate):
    """A stratum+ssl pool verified against the test CA (by IP) and a second
    one by SNI name and pin; miners on a TLS listener with a real TLS client."""
    pki = Pki()
    pool, pool_port = start_tls_pool(pki, os.path.join(pki.dir, "pool.json"))
    pin = spki_pin(pki.dir, pki.pool_cert)
    path = start_gateway(pki.dir, [
        {"name": "by-ca", "url": "stratum+ssl://127.0.0.1:%d" % pool_port, "user": "gw",
         "tls": {"ca": pki.ca}},
        {"name": "by-name-and-pin", "url": "stratum+ssl://127.0.0.1:%d" % pool_port, "user": "gw", "priority": 1,
         "tls": {"ca": pki.ca, "server_name": "pool.test", "pin_sha256": pin}},
    ], listeners=[{"name": "stratum", "bind": "127.0.0.1:0"},
                  {"name": "stratum-tls", "bind": "127.0.0.1:0",
                   "tls": {"cert": pki.gw_cert, "key": pki.gw_key}}])
    gw = Proc([hashgate, "--config", path])
    try:
        ports = listening_ports(gw, 2)
        for name in ("by-ca", "by-name-and-pin"):
            gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "pool_subscribed"
                         and json.loads(l).get("pool") == name)
        report = os.path.join(pki.dir, "miners.json")
        r = subprocess.run([PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(ports["stratum-tls"]),
                            "--count", "5", "--shares", "3", "--algorithm", "sha256d", "--tls-ca", pki.ca,
                            "--tls-name", "localhost", "--report", report, "--timeout", "60"],
                           capture_output=True, text=True, timeout=90)
        check(r.returncode == 0, "TLS miners failed: %s" % r.stderr[-1500:])
        # A client speaking plain Stratum to the TLS port is refused, not served.
        s = socket.create_connection(("127.0.0.1", ports["stratum-tls"]), timeout=5)
        s.sendall(b'{"id":1,"method":"mining.subscribe","params":[]}\n')
        got = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        s.close()
        check(b"mining.notify" not in got and b"result" not in got, "plain text answered on the TLS port: %r" % got)
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        gw.stop()
        pool.stop()
    miners = json.load(open(report))["miners"]
    for m in miners:
        check(m["tls_version"] in ("TLSv1.2", "TLSv1.3"), "%s did not use TLS: %s" % (m["worker"], m["tls_version"]))
        check(m["accepted"] >= 3, "%s: %d accepted over TLS" % (m["worker"], m["accepted"]))
    pool_rep = json.load(open(os.path.join(pki.dir, "pool.json")))
    check(pool_rep["counts"]["accepted"] > 0, "the TLS pool accepted nothing")
    subscribed = [c for c in pool_rep["connections"] if c["subscribed"]]
    check(len(subscribed) == 2, "both TLS pool entries should hold a connection, saw %d" % len(subscribed))
    evs = events(gw.err_lines)
    check(not [e for e in evs if e.get("event") == "pool_disconnected"], "a TLS pool connection failed")
    closed = [e for e in evs if e.get("event") == "session_dropped" and "plain Stratum on a TLS listener" in e.get("reason", "")]
    check(closed, "the plain client on the TLS port was not refused with a clear reason")
    print("TLS: 5 miners over %s, %d shares accepted by the TLS pool; plain client refused: %s" %
          (miners[0]["tls_version"], pool_rep["counts"]["accepted"], closed[0]["reason"]))


def failing_tls_scenario(hashgate, tls, want):
    pki = Pki()
    pool, pool_port = start_tls_pool(pki, os.path.join(pki.dir, "pool.json"))
    t = {k: (getattr(pki, v[1:]) if isinstance(v, str) and v.startswith("@") else v) for k, v in tls.items()}
    path = start_gateway(pki.dir, [{"name": "bad", "url": "stratum+ssl://127.0.0.1:%d" % pool_port, "user": "gw",
                                    "tls": t}],
                         failover={"failures_to_open": 2, "backoff_initial_seconds": 1, "backoff_max_seconds": 2})
    gw = Proc([hashgate, "--config", path])
    try:
        gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "pool_disconnected"
                     and json.loads(l).get("breaker") == "open", timeout=20)
        check(gw.stop() == 0, "hashgate did not exit 0")
    finally:
        gw.stop()
        pool.stop()
    lost = [e for e in events(gw.err_lines) if e.get("event") == "pool_disconnected"]
    check(len(lost) >= 2, "expected two failed handshakes before the breaker opened, saw %d" % len(lost))
    for e in lost:
        check(want in e["reason"] and "TLS handshake" in e["reason"], "unclear handshake error: %s" % e["reason"])
    check(lost[-1]["breaker"] == "open", "the breaker did not open: %s" % lost[-1])
    check(json.load(open(os.path.join(pki.dir, "pool.json")))["counts"]["accepted"] == 0, "shares went through")
    print("%s -> %s (breaker %s after %d)" % (sorted(tls), lost[0]["reason"], lost[-1]["breaker"], len(lost)))


def test_tls_pool_wrong_ca(hashgate):
    failing_tls_scenario(hashgate, {"ca": "@other_ca"}, "certificate verify failed")


def test_tls_pool_wrong_name(hashgate):
    failing_tls_scenario(hashgate, {"ca": "@ca", "server_name": "not-the-pool.test"}, "certificate verify failed")


def test_tls_pool_wrong_pin(hashgate):
    failing_tls_scenario(hashgate, {"ca": "@ca", "pin_sha256": "00" * 32}, "certificate pin mismatch")


TESTS = {
    "tls_pool_and_listener": test_tls_pool_and_listener,
    "tls_pool_wrong_ca": test_tls_pool_wrong_ca,
    "tls_pool_wrong_name": test_tls_pool_wrong_name,
    "tls_pool_wrong_pin": test_tls_pool_wrong_pin,
}

if __name__ == "__main__":
    run(TESTS)

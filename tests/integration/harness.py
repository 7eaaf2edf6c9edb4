"""Runs the real hashgate binary, the mock pool and simulated miners on
127.0.0.1 and collects what each of them saw."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(os.path.dirname(HERE), "support")
PY = sys.executable


class Failure(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for tools that
    cannot report the port they bound)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Proc:
    """A child process whose stderr (hashgate's log) is collected line by line."""

    def __init__(self, argv, env=None):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, **(env or {})))
        self.err_lines = []
        self.out_lines = []
        self.lock = threading.Lock()
        self.t_err = threading.Thread(target=self._pump, args=(self.p.stderr, self.err_lines), daemon=True)
        self.t_out = threading.Thread(target=self._pump, args=(self.p.stdout, self.out_lines), daemon=True)
        self.t_err.start()
        self.t_out.start()

    def _pump(self, stream, sink):
        for line in stream:
            with self.lock:
                sink.append(line.rstrip("\n"))

    def wait_line(self, pred, timeout=20, stream="err"):
        sink = self.err_lines if stream == "err" else self.out_lines
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self.lock:
                new = sink[seen:]
            for line in new:
                r = pred(line)
                if r:
                    return r
            seen += len(new)
            if self.p.poll() is not None and seen >= len(sink):
                break
            time.sleep(0.02)
        raise Failure("%s: timed out waiting for a line; last lines:\n%s" %
                      (os.path.basename(self.argv[0]), "\n".join((self.err_lines + self.out_lines)[-15:])))

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("%s did not exit within %ss of signal %d" % (self.argv[0], timeout, sig))
        self.t_err.join(5)
        self.t_out.join(5)
        return self.p.returncode


def events(lines, name=None):
    out = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if name is None or e.get("event") == name:
            out.append(e)
    return out


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_yaml(obj, indent=0):
    """Enough YAML for hashgate configs: mappings, lists of mappings, scalars."""
    pad = " " * indent
    lines = []
    for k, v in obj.items():
        if isinstance(v, dict):
            lines.append("%s%s:" % (pad, k))
            lines.append(to_yaml(v, indent + 2))
        elif isinstance(v, list):
            lines.append("%s%s:" % (pad, k))
            for item in v:
                if not isinstance(item, dict):
                    lines.append("%s  - %s" % (pad, yaml_value(item)))
                    continue
                sub = to_yaml(item, indent + 4).split("\n")
                lines.append("%s  - %s" % (pad, sub[0].strip()))
                lines.extend(sub[1:])
        else:
            lines.append("%s%s: %s" % (pad, k, yaml_value(v)))
    return "\n".join(lines)


def launch_hashgate(hashgate, path, admin=True):
    """Starts hashgate on the config at `path` and waits for its Stratum
    listener and (unless `admin` is False) its admin listener; returns
    (process, stratum port, admin port or None)."""
    gw = Proc([hashgate, "--config", path])
    port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                        and json.loads(l)["port"])
    admin_port = None
    if admin:
        admin_port = gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "admin_listening"
                                  and json.loads(l)["port"])
    return gw, port, admin_port


def start_hashgate(hashgate, d, cfg, admin=True):
    """Writes `cfg` to d/hashgate.yaml and launches hashgate on it (launch_hashgate)."""
    path = os.path.join(d, "hashgate.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return launch_hashgate(hashgate, path, admin)


class Scenario:
    """One hashgate + one mock pool, in a temporary directory."""

    def __init__(self, hashgate, algorithm="scrypt", pool_args=(), config=None):
        self.hashgate = hashgate
        self.algorithm = algorithm
        self.dir = tempfile.mkdtemp(prefix="hashgate-it-")
        self.pool_report = os.path.join(self.dir, "pool.json")
        self.pool = Proc([PY, os.path.join(SUPPORT, "mock_pool.py"), "--algorithm", algorithm,
                          "--report", self.pool_report] + list(pool_args))
        self.pool_port = self.pool.wait_line(lambda l: json.loads(l)["port"] if l.startswith("{") else None,
                                             stream="out")
        cfg = {
            "algorithm": algorithm,
            "listeners": [{"name": "stratum", "bind": "127.0.0.1:0"}],
            "pools": [{"name": "mock", "url": "stratum+tcp://127.0.0.1:%d" % self.pool_port,
                       "user": "farm.gw", "password": "${POOL_PASSWORD:-x}"}],
            "logging": {"level": "info", "format": "json"},
            # Honest and misbehaving simulated miners share 127.0.0.1 here:
            # the address is exempt from bans (the abuse tests use others).
            "bans": {"allowlist": ["127.0.0.1/32"]},
        }
        for k, v in (config or {}).items():
            cfg[k] = v
        self.config_path = os.path.join(self.dir, "hashgate.yaml")
        with open(self.config_path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        self.gw = Proc([hashgate, "--config", self.config_path], env={"POOL_PASSWORD": "s3cret-pool-pw"})
        self.port = self.gw.wait_line(lambda l: l.startswith("{") and json.loads(l).get("event") == "listening"
                                      and json.loads(l)["port"])

    def miners(self, count, shares, *extra, timeout=300):
        report = os.path.join(self.dir, "miners-%d.json" % time.monotonic_ns())
        argv = [PY, os.path.join(SUPPORT, "sim_miner.py"), "--port", str(self.port), "--count", str(count),
                "--shares", str(shares), "--algorithm", self.algorithm, "--report", report] + list(extra)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise Failure("sim_miner failed: %s" % r.stderr[-2000:])
        with open(report) as f:
            return json.load(f)

    def finish(self):
        """Stops hashgate (SIGTERM) then the pool; returns (hashgate log events, pool report)."""
        rc = self.gw.stop()
        check(rc == 0, "hashgate exited with %s on SIGTERM; its last lines:\n%s" %
              (rc, "\n".join(self.gw.err_lines[-12:])))
        self.pool.stop()
        with open(self.pool_report) as f:
            pool = json.load(f)
        return events(self.gw.err_lines), pool

    def abort(self):
        for p in (self.gw, self.pool):
            try:
                p.stop(signal.SIGKILL, timeout=5)
            except Exception:
                pass


class RawMiner:
    """A Stratum client driven line by line by a test (one connection)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rwb")
        self.next_id = 1
        self.job = None
        self.difficulty = None
        self.backlog = []

    def send_raw(self, data):
        self.f.write(data)
        self.f.flush()

    def call(self, method, params):
        mid = self.next_id
        self.next_id += 1
        self.send_raw((json.dumps({"id": mid, "method": method, "params": params}) + "\n").encode())
        return self.wait_id(mid)

    def read(self):
        line = self.f.readline()
        if not line:
            return None
        msg = json.loads(line)
        if msg.get("method") == "mining.notify":
            p = msg["params"]
            self.job = {"id": p[0], "prevhash": p[1], "coinb1": p[2], "coinb2": p[3], "merkle_branch": p[4],
                        "version": p[5], "nbits": p[6], "ntime": p[7]}
        elif msg.get("method") == "mining.set_difficulty":
            self.difficulty = msg["params"][0]
        return msg

    def wait_id(self, mid):
        while True:
            msg = self.read()
            check(msg is not None, "connection closed while waiting for answer %s" % mid)
            if msg.get("id") == mid and msg.get("method") is None:
                return msg

    def wait_job(self):
        while self.job is None:
            check(self.read() is not None, "closed before the first job")

    def close(self):
        self.f.close()
        self.s.close()


def run(tests):
    """Runs the named tests given on the command line; prints 'N passed, N failed'."""
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--hashgate", required=True)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()
    names = args.names or list(tests)
    passed = failed = 0
    for name in names:
        t0 = time.monotonic()
        try:
            tests[name](args.hashgate)
            passed += 1
            print("PASS %s (%.1fs)" % (name, time.monotonic() - t0), flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)

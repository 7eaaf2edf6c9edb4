#!/usr/bin/env python3
"""Simulated Stratum miners for hashgate's tests: real CPU hashing (OpenSSL
through hashlib) at low difficulty, any number of miners in one process.

Each miner configures (optionally version rolling), subscribes, authorizes,
mines the jobs it is sent, and submits shares that meet its difficulty. A
miner can misbehave on purpose (--misbehave MODE:COUNT): resubmit its shares
(duplicate), submit shares under its difficulty (low), submit for a job that
does not exist (stale), or send malformed lines (garbage). At the end it
writes a JSON report of what every miner saw.

--firmware chooses how a miner treats the server's messages, as real
miners' public source does (pooler/cpuminer, JayDDee/cpuminer-opt,
ckolivas/cgminer):
  sim           follows client.reconnect (its host and port when given, else
                the same address) after its wait; set_difficulty at once.
  minerd        (pooler's cpuminer; cpuminer-opt behaves the same here)
                drops a client.reconnect with no host, an empty one or port 0
                (stratum_reconnect returns early); otherwise reconnects at
                once to host:port, ignoring the wait. set_difficulty applies
                from the next mining.notify. After a reconnect it keeps
                hashing the last connection's coinbase when the new
                connection's first notify has a job id it already had.
  cgminer       refuses a reconnect whose host is an empty string or has no
                domain like its pool's (parse_reconnect); a null or missing
                host means the same host; the port counts only as a string
                (else the same port); reconnects at once. set_difficulty
                applies from the next notify.
Firmware limits, as the compatibility facts (shared/firmware-facts.md) say
real machines have them, so that a gateway that ignores them loses shares
here as it would on a farm:
  --agent UA              the user agent sent in mining.subscribe
  --max-extranonce2 N     cgminer lineage: takes any extranonce2 size at
                          subscribe but submits nothing when it is over N
                          (every share silently lost; counted in lost_shares)
  --integer-difficulty    Bitaxe (ESP-Miner <= 2.12): truncates a fractional
                          set_difficulty to an integer (0.5 becomes 0, and
                          every hash then "meets" it); counted in
                          truncated_difficulties
  --subscribe-null        Braiins OS+: subscribe params [UA, null]
--proxy HOST:PORT makes every connection an HTTP CONNECT tunnel through
that proxy to --host:--port (or where a reconnect sends it).
"""
import argparse
import asyncio
import ssl
import json
import os
import random
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stratum_ref as ref  # noqa: E402

SLICE = {"scrypt": 8, "sha256d": 2000}
AGENTS = {"sim": "sim_miner/1.0", "minerd": "cpuminer/2.5.1", "cgminer": "cgminer/4.11.1"}


class Miner:
    def __init__(self, idx, args, misbehave):
        self.idx, self.args, self.misbehave = idx, args, misbehave
        self.worker = "%s%04d" % (args.worker_prefix, idx)
        self.rng = random.Random(args.seed * 100003 + idx)
        self.next_id = 1
        self.pending = {}
        self.job = None
        self.job_seq = 0
        self.jobs_received = 0
        self.first_job_at = None
        self.difficulty = None
        self.extranonce1 = None
        self.extranonce2_size = None
        self.mask = 0
        self.subscribed = asyncio.Event()
        self.authorized = False
        self.accepted = 0
        self.rejected = {}
        self.errors = []
        self.submitted = 0
        self.found = 0
        self.shares = []
        self.closed = False
        self.en2 = self.rng.getrandbits(16)
        self.changed = asyncio.Event()
        self.job_times = []        # wall-clock time of every mining.notify
        self.reconnect_wait = None  # set by client.reconnect
        self.reconnects = 0
        self.set_extranonce_count = 0
        self.deadline = None
        self.tls_version = None
        self.connect_failures = 0
        self.sent_at = {}    # submit id -> send time
        self.latencies = []  # seconds from submit to answer
        self.target_host, self.target_port = args.host, args.port  # where the next connect goes
        self.reconnect_to = None
        self.reconnects_ignored = 0
        self.pending_difficulty = None  # firmware that applies set_difficulty at the next notify
        self.job_ids_seen = set()       # every job id any connection sent (minerd's quirk)
        self.old_work = None            # minerd: the last connection's job and extranonce, kept
        self.first_notify = False
        self.submit_share = {}          # submit id -> index in shares, for the answer
        self.connected_at = []          # time of every connection made
        self.stale_work_used = 0        # minerd: reconnects after which it hashed the old coinbase
        self.lost_shares = 0            # found but never submitted: extranonce2 over the firmware's limit
        self.truncated_difficulties = 0  # fractional difficulties it cut to an integer
        self.difficulties_seen = []
        self.difficulty_changes = []  # (unix time, difficulty) of each mining.set_difficulty, as received
        self.hashed = 0                # nonces tried, for --hashrate's pacing
        self.hash_t0 = None

    def report(self):
        return {
            "worker": self.worker, "misbehave": self.misbehave,
            "extranonce1": self.extranonce1.hex() if self.extranonce1 else None,
            "extranonce2_size": self.extranonce2_size, "version_mask": "%08x" % self.mask,
            "jobs_received": self.jobs_received, "difficulty": self.difficulty,
            "submitted": self.submitted, "accepted": self.accepted, "rejected": self.rejected,
            "errors": self.errors[:20], "shares": self.shares, "closed_by_server": self.closed,
            "job_times": self.job_times, "reconnects": self.reconnects,
            "set_extranonce": self.set_extranonce_count, "tls_version": self.tls_version,
            "connect_failures": self.connect_failures, "latencies": self.latencies,
            "reconnects_ignored": self.reconnects_ignored, "connected_at": self.connected_at,
            "stale_work_used": self.stale_work_used, "lost_shares": self.lost_shares,
            "truncated_difficulties": self.truncated_difficulties, "difficulties_seen": self.difficulties_seen[:50],
            "difficulty_changes": self.difficulty_changes[:5000], "hashed": self.hashed,
        }

    def send(self, method, params, kind=None):
        mid = self.next_id
        self.next_id += 1
        self.pending[mid] = kind or method
        if method == "mining.submit":
            self.sent_at[mid] = time.monotonic()
            if kind == "submit" and self.shares:
                self.submit_share[mid] = len(self.shares) - 1
        self.writer.write((json.dumps({"id": mid, "method": method, "params": params}) + "\n").encode())
        return mid

    def finished(self):
        if self.deadline is not None:
            # --min-accepted: a slow machine makes a miner find fewer shares
            # in the same seconds; it keeps mining until it has that many.
            return time.monotonic() >= self.deadline and self.accepted >= self.args.min_accepted
        return self.found >= self.args.shares

    async def connect(self):
        a = self.args
        local = None
        if a.source_ips:
            ips = a.source_ips.split(",")
            local = (ips[self.idx % len(ips)], 0)
        tls = None
        if a.tls_ca:
            tls = ssl.create_default_context(cafile=a.tls_ca)
        if a.proxy:
            phost, pport = a.proxy.rsplit(":", 1)
            self.reader, self.writer = await asyncio.open_connection(phost, int(pport), local_addr=local,
                                                                     limit=1 << 20)
            target = "%s:%d" % (self.target_host, self.target_port)
            self.writer.write(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, target)).encode())
            status = await self.reader.readline()
            if b" 200 " not in status:
                self.writer.close()
                raise ConnectionRefusedError("proxy refused CONNECT %s: %r" % (target, status))
            while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
        else:
            self.reader, self.writer = await asyncio.open_connection(self.target_host, self.target_port,
                                                                     local_addr=local, limit=1 << 20, ssl=tls,
                                                                     server_hostname=a.tls_name if tls else None)
        self.connected_at.append(time.time())
        if tls:
            self.tls_version = self.writer.get_extra_info("ssl_object").version()
        self.closed = False
        self.reconnect_wait = None
        self.reconnect_to = None
        self.subscribed = asyncio.Event()
        if a.firmware == "minerd" and self.job is not None:
            # Its work (job, coinbase with the old extranonce) stays until a
            # notify with a new job id rebuilds it.
            self.old_work = (self.job, self.extranonce1, self.extranonce2_size)
        self.job = None
        self.first_notify = True
        self.pending = {}
        reader_task = asyncio.create_task(self.read_loop())
        if a.version_rolling:
            self.send("mining.configure", [["version-rolling"], {"version-rolling.mask": "ffffffff",
                                                                 "version-rolling.min-bit-count": 2}])
        if a.suggest_difficulty:
            self.send("mining.suggest_difficulty", [a.suggest_difficulty])
        agent = a.agent or AGENTS[a.firmware]
        self.send("mining.subscribe", [agent, None] if a.subscribe_null else [agent])
        self.send("mining.authorize", [self.worker, "x"])
        if a.extranonce_subscribe:
            self.send("mining.extranonce.subscribe", [])
        return reader_task

    async def run(self):
        a = self.args
        if a.duration:
            self.deadline = time.monotonic() + a.duration
        reader_task = await self.connect()
        try:
            while True:
                await asyncio.wait_for(self.mine(), timeout=a.timeout)
                if self.finished():
                    break
                # Told to reconnect (or dropped, in duration mode): go again,
                # after the answers to shares already sent (up to 2 s).
                # Real firmware reconnects at once after a close; the plain
                # simulation waits a second.
                wait = self.reconnect_wait if self.reconnect_wait is not None else \
                    (0.0 if a.firmware != "sim" else 1.0)
                t0 = time.monotonic()
                while not self.closed and any(k.startswith("submit") for k in self.pending.values()) \
                        and time.monotonic() - t0 < 2:
                    await asyncio.sleep(0.02)
                self.writer.close()
                reader_task.cancel()
                if self.reconnect_to is not None:
                    self.target_host, self.target_port = self.reconnect_to
                await asyncio.sleep(min(wait, 30))
                self.reconnects += 1
                reader_task = await self.reconnect()
                if reader_task is None:
                    break
            # Wait for the answers to everything submitted.
            t0 = time.monotonic()
            while any(k.startswith("submit") for k in self.pending.values()) and time.monotonic() - t0 < 10:
                await asyncio.sleep(0.05)
        except asyncio.TimeoutError:
            self.errors.append("timeout before %d shares" % a.shares)
        finally:
            self.writer.close()
            reader_task.cancel()

    async def reconnect(self):
        """Connects again; a refused connection is retried until the deadline
        (duration mode), else given up. None when giving up."""
        while True:
            try:
                return await self.connect()
            except OSError:
                self.connect_failures += 1
                if self.deadline is None or time.monotonic() >= self.deadline:
                    return None
                await asyncio.sleep(0.5)

    async def read_loop(self):
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    self.closed = True
                    self.changed.set()
                    return
                self.handle(json.loads(line))
        except (ConnectionError, asyncio.CancelledError):
            pass

    def follow_reconnect(self, p):
        """Where this firmware goes on client.reconnect params p: (host, port,
        wait) or None when it ignores the message."""
        fw = self.args.firmware
        host = p[0] if len(p) > 0 else None
        port = p[1] if len(p) > 1 else None
        wait = float(p[2]) if len(p) > 2 and p[2] is not None else 0.0
        if fw == "minerd":
            # stratum_reconnect: host from a JSON string, port from a string (atoi) or an integer.
            port = int(port) if isinstance(port, str) and port.isdigit() else (port if isinstance(port, int) else 0)
            if not isinstance(host, str) or not host or not port:
                return None
            return host, port, 0.0
        if fw == "cgminer":
            # parse_reconnect: a string host must have a domain like the pool's; port only as a string.
            if isinstance(host, str):
                dot_pool = self.target_host.find(".")
                dot_new = host.find(".")
                if dot_pool < 0 or dot_new < 0 or self.target_host[dot_pool:] != host[dot_new:]:
                    return None
            else:
                host = self.target_host
            port = int(port) if isinstance(port, str) and port.isdigit() else self.target_port
            return host, port, 0.0
        if isinstance(host, str) and host and isinstance(port, int) and port:
            return host, port, wait
        return self.target_host, self.target_port, wait

    def handle(self, msg):
        method = msg.get("method")
        fw = self.args.firmware
        if method == "client.reconnect":
            to = self.follow_reconnect(msg.get("params") or [])
            if to is None:
                self.reconnects_ignored += 1
                return
            self.reconnect_to = (to[0], to[1])
            self.reconnect_wait = to[2]
            self.changed.set()
        elif method == "mining.notify":
            p = msg["params"]
            self.job_times.append(time.time())
            if self.pending_difficulty is not None:
                self.difficulty, self.pending_difficulty = self.pending_difficulty, None
            job = {"id": p[0], "prevhash": p[1], "coinb1": p[2], "coinb2": p[3], "merkle_branch": p[4],
                   "version": p[5], "nbits": p[6], "ntime": p[7], "clean": p[8]}
            first, self.first_notify = self.first_notify, False
            if fw == "minerd" and first and self.old_work and p[0] == self.old_work[0]["id"]:
                # minerd's quirk: an id it had before does not rebuild its
                # work; it hashes the last connection's coinbase.
                self.job, self.extranonce1, self.extranonce2_size = self.old_work
                self.stale_work_used += 1
            else:
                self.job = job
            self.old_work = None
            self.job_ids_seen.add(p[0])
            self.job_seq += 1
            self.jobs_received += 1
            if self.first_job_at is None:
                self.first_job_at = time.monotonic()
            self.changed.set()
        elif method == "mining.set_difficulty":
            d = float(msg["params"][0])
            self.difficulties_seen.append(d)
            self.difficulty_changes.append((time.time(), d))
            if self.args.integer_difficulty and d != int(d):
                self.truncated_difficulties += 1
                d = float(int(d))
            if fw in ("minerd", "cgminer") and self.difficulty is not None:
                self.pending_difficulty = d  # from the next notify on
            else:
                self.difficulty = d
        elif method == "mining.set_extranonce":
            self.set_extranonce_count += 1
            if self.args.ignore_set_extranonce:
                return  # like firmware that accepts the subscription and then ignores the change
            self.extranonce1 = bytes.fromhex(msg["params"][0])
            self.extranonce2_size = int(msg["params"][1])
            self.job = None  # the next notify is for the new space
        elif method == "mining.set_version_mask":
            self.mask = int(msg["params"][0], 16)
        elif method is None:
            kind = self.pending.pop(msg.get("id"), None)
            err = msg.get("error")
            if kind == "mining.subscribe" and not err:
                self.extranonce1 = bytes.fromhex(msg["result"][1])
                self.extranonce2_size = int(msg["result"][2])
                self.subscribed.set()
            elif kind == "mining.configure" and not err:
                r = msg["result"] or {}
                if r.get("version-rolling"):
                    self.mask = int(r["version-rolling.mask"], 16)
            elif kind == "mining.authorize":
                self.authorized = msg.get("result") is True
            elif kind and kind.startswith("submit"):
                t = self.sent_at.pop(msg.get("id"), None)
                if t is not None:
                    self.latencies.append(time.monotonic() - t)
                i = self.submit_share.pop(msg.get("id"), None)
                if msg.get("result") is True:
                    self.accepted += 1
                    if i is not None:
                        self.shares[i]["answer"] = "accepted"
                        self.shares[i]["answered_at"] = time.time()
                else:
                    code = str(err[0]) if isinstance(err, list) and err else "?"
                    self.rejected[code] = self.rejected.get(code, 0) + 1
                    if i is not None:
                        self.shares[i]["answer"] = code
            elif kind == "garbage" or (kind is None and err):
                pass

    def submit(self, job, en2, ntime, nonce, vbits, tag="submit"):
        params = [self.worker, job["id"], en2.hex(), "%08x" % ntime, "%08x" % nonce]
        if vbits is not None:
            params.append("%08x" % vbits)
        self.submitted += 1
        self.send("mining.submit", params, kind=tag)

    async def mine(self):
        a = self.args
        await self.subscribed.wait()
        while not self.finished():
            if self.reconnect_wait is not None:
                return
            if self.closed:
                if self.deadline is not None:
                    return  # duration mode: reconnect like a real miner
                raise asyncio.TimeoutError()
            if self.job is None or self.difficulty is None:
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=0.5)
                except asyncio.TimeoutError:
                    pass
                continue
            job, seq = self.job, self.job_seq
            self.en2 += 1
            en2 = (self.en2 % (1 << (8 * self.extranonce2_size))).to_bytes(self.extranonce2_size, "big")
            version = int(job["version"], 16)
            vbits = None
            if self.mask:
                vbits = self.rng.getrandbits(32) & self.mask
                version = (version & ~self.mask & 0xFFFFFFFF) | vbits
            ntime = int(job["ntime"], 16)
            coinbase = bytes.fromhex(job["coinb1"]) + self.extranonce1 + en2 + bytes.fromhex(job["coinb2"])
            prefix = ref.header_prefix(version, job["prevhash"], ref.merkle_root(coinbase, job["merkle_branch"]),
                                       ntime, int(job["nbits"], 16))
            # A difficulty truncated to 0 makes every hash a "share".
            target = ref.target_for(a.algorithm, self.difficulty) if self.difficulty > 0 else (1 << 256) - 1
            nonce = self.rng.getrandbits(32)
            low_sent = False
            while self.job_seq == seq and not self.finished() and self.reconnect_wait is None and not self.closed:
                for _ in range(SLICE[a.algorithm]):
                    nonce = (nonce + 1) & 0xFFFFFFFF
                    h = ref.hash_value(ref.pow_hash(a.algorithm, prefix + struct.pack("<I", nonce)))
                    if h <= target:
                        self.found += 1
                        self.shares.append({"job": job["id"], "extranonce2": en2.hex(), "ntime": ntime,
                                            "nonce": nonce, "version": version, "prevhash": job["prevhash"],
                                            "extranonce1": self.extranonce1.hex(), "difficulty": self.difficulty,
                                            "at": time.time(), "answer": None})
                        if a.max_extranonce2 and self.extranonce2_size > a.max_extranonce2:
                            # cgminer lineage checks the size only at submit: the share is lost.
                            self.lost_shares += 1
                            self.shares[-1]["answer"] = "lost"
                            continue
                        self.submit(job, en2, ntime, nonce, vbits)
                        self.do_misbehave(job, en2, ntime, nonce, vbits)
                        if self.misbehave == "low" and not low_sent:
                            # The next nonce that misses the target: a share under the difficulty.
                            low_sent = True
                            bad = nonce
                            while True:
                                bad = (bad + 1) & 0xFFFFFFFF
                                hb = ref.hash_value(ref.pow_hash(a.algorithm, prefix + struct.pack("<I", bad)))
                                if hb > target:
                                    break
                            self.submit(job, en2, ntime, bad, vbits, tag="submit-low")
                    if self.job_seq != seq:
                        break
                await self.writer.drain()
                self.hashed += SLICE[a.algorithm]
                ahead = 0
                if a.hashrate:
                    # A fixed hashrate, whatever else the machine is doing
                    # (as long as it can do this much): vardiff tests know
                    # the difficulty a miner should settle at.
                    if self.hash_t0 is None:
                        self.hash_t0 = time.monotonic()
                    ahead = self.hashed / a.hashrate - (time.monotonic() - self.hash_t0)
                    if ahead < -1:  # fell behind (waited for work, or the machine was busy): no catching up
                        self.hash_t0 = time.monotonic() - self.hashed / a.hashrate
                await asyncio.sleep(max(0, ahead))

    def do_misbehave(self, job, en2, ntime, nonce, vbits):
        if self.misbehave == "duplicate":
            self.submit(job, en2, ntime, nonce, vbits, tag="submit-dup")
        elif self.misbehave == "stale":
            self.submit(dict(job, id="deadbeef"), en2, ntime, nonce, vbits, tag="submit-stale")
        elif self.misbehave == "garbage":
            self.writer.write(b'{"id": 99, "method": "mining.submit", "params": [\n')
            self.pending[99] = "garbage"


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ignore-set-extranonce", action="store_true",
                   help="subscribe to extranonce changes, then ignore mining.set_extranonce")
    p.add_argument("--tls-ca", default=None, help="connect with TLS, trusting this CA file")
    p.add_argument("--tls-name", default="localhost", help="the name checked in the gateway's certificate")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--algorithm", choices=["sha256d", "scrypt"], default="scrypt")
    p.add_argument("--shares", type=int, default=3, help="valid shares each miner finds before it stops")
    p.add_argument("--worker-prefix", default="rig.")
    p.add_argument("--version-rolling", action="store_true")
    p.add_argument("--extranonce-subscribe", action="store_true")
    p.add_argument("--suggest-difficulty", type=float, default=0)
    p.add_argument("--source-ips", default="", help="comma-separated 127.x.y.z addresses to connect from")
    p.add_argument("--misbehave", action="append", default=[],
                   help="MODE:COUNT, MODE one of duplicate, low, stale, garbage")
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--duration", type=float, default=0,
                   help="mine for this many seconds (reconnecting when told or dropped) instead of --shares")
    p.add_argument("--hashrate", type=float, default=0,
                   help="hash at most this many nonces a second (0: as fast as Python can); paced in slices")
    p.add_argument("--min-accepted", type=int, default=0,
                   help="duration mode: keep mining past --duration until this many shares were accepted")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--firmware", choices=["sim", "minerd", "cpuminer-opt", "cgminer"], default="sim",
                   help="how client.reconnect, set_difficulty and a reconnect's first job are treated (see above)")
    p.add_argument("--agent", default="", help="user agent for mining.subscribe (default: the firmware's)")
    p.add_argument("--max-extranonce2", type=int, default=0,
                   help="firmware limit: shares with a longer extranonce2 are lost, never submitted")
    p.add_argument("--integer-difficulty", action="store_true",
                   help="firmware truncates fractional difficulties to integers")
    p.add_argument("--subscribe-null", action="store_true", help="subscribe with params [agent, null]")
    p.add_argument("--proxy", default="", help="HOST:PORT of an HTTP CONNECT proxy to tunnel every connection through")
    p.add_argument("--report", default=None)
    args = p.parse_args()
    if args.firmware == "cpuminer-opt":
        args.firmware = "minerd"  # the same stratum_reconnect, difficulty and work rules
    modes = []
    for m in args.misbehave:
        mode, count = m.split(":")
        modes += [mode] * int(count)
    miners = [Miner(i, args, modes[i] if i < len(modes) else None) for i in range(args.count)]
    started = time.monotonic()
    results = await asyncio.gather(*(m.run() for m in miners), return_exceptions=True)
    failures = [repr(r) for r in results if isinstance(r, Exception)]
    report = {"elapsed": time.monotonic() - started, "failures": failures, "miners": [m.report() for m in miners]}
    if args.report:
        with open(args.report, "w") as f:
            json.dump(report, f)
    ok = sum(1 for m in miners if m.finished() or m.found >= args.shares)
    print(json.dumps({"miners": len(miners), "finished": ok, "failures": len(failures),
                      "accepted": sum(m.accepted for m in miners)}))


if __name__ == "__main__":
    asyncio.run(main())

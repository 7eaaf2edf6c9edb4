#!/usr/bin/env python3
"""A mock Stratum pool for hashgate's integration tests.

It issues jobs with realistic coinbase and merkle data, sets a difficulty,
and checks every submitted share with OpenSSL (hashlib), never with
hashgate's hashing/: job known and not stale, worker authorized, extranonce2
size, ntime, version bits inside the negotiated mask, no duplicate, and the
hash at or under the target of the difficulty in force when the job was
issued. On SIGTERM/SIGINT (or after --duration) it writes a JSON report of
everything it saw.

Prints one JSON line {"port": N} on stdout once listening.
"""
import argparse
import asyncio
import ssl
import json
import os
import random
import signal
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stratum_ref as ref  # noqa: E402


def bip34_push(height):
    """The height as Bitcoin Core's coinbase pushes it (CScriptNum, minimal)."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes([0x50 + height])
    b = height.to_bytes((height.bit_length() + 7) // 8, "little")
    if b[-1] & 0x80:
        b += b"\x00"
    return bytes([len(b)]) + b


def notify_prevhash(display_hex):
    """RPC (display) order to notify's form: the 4-byte words in reverse order."""
    words = [display_hex[i:i + 8] for i in range(0, 64, 8)]
    return "".join(reversed(words))


class Pool:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.jobs = {}          # id -> job dict
        self.valid = []         # ids valid now, newest last
        self.invalidated = {}   # id -> time it became stale
        self.seen = set()
        self.next_job = 1
        # Pools started with different seeds hand out different extranonce1s.
        self.next_en1 = (0xA0000000 + (args.seed % 4096) * 0x10000) & 0xFFFFFFFF
        self.height = 5000
        self.prevhash = "%064x" % self.rng.getrandbits(256)
        self.control = {}  # --control: the tip and faults the test asks for
        self.payout_script = (bytes.fromhex(args.payout_script) if args.payout_script else
                              b"\x76\xa9\x14" + bytes(self.rng.getrandbits(8) for _ in range(20)) + b"\x88\xac")
        self.other_script = b"\x00\x14" + bytes(20 * [0xEE])
        self.conns = []
        self.shares = []
        self.counts = {"accepted": 0, "stale": 0, "late": 0, "duplicate": 0, "low_difficulty": 0,
                       "unauthorized": 0, "other": 0, "blocks": 0, "outside_mask": 0}
        self.connections_seen = []
        self.sessions = {}  # session id -> extranonce1, for resume
        self.started = time.monotonic()
        self.events = []
        self.extranonce2_size = args.extranonce2_size  # for new connections (--set-extranonce-size changes it)
        self.difficulty = args.difficulty  # for jobs issued from now on (--difficulty-at changes it)
        self.accepted_at_job = 0

    def make_job(self, clean):
        ctl = self.control
        if clean and "height" not in ctl:
            self.height += 1
            self.prevhash = "%064x" % self.rng.getrandbits(256)
        jid = "%x" % self.next_job
        self.next_job += 1
        en_size = self.args.extranonce1_size + self.args.extranonce2_size
        tag = b"/mock pool/"
        # The block being mined is one above the tip; BIP34 pushes its height.
        height = ctl["height"] + 1 if "height" in ctl else self.height
        hpush = bip34_push(height)
        coinb1 = (struct.pack("<I", 1) + b"\x01" + b"\x00" * 32 + b"\xff\xff\xff\xff" +
                  bytes([len(hpush) + 1 + en_size + 1 + len(tag)]) + hpush + bytes([en_size]))
        # The pool's payout output, or (drop_payout) someone else's.
        script = self.other_script if ctl.get("drop_payout") else self.payout_script
        coinb2 = (bytes([len(tag)]) + tag + b"\xff\xff\xff\xff" + b"\x01" + struct.pack("<Q", 312500000) +
                  bytes([len(script)]) + script + b"\x00\x00\x00\x00")
        if ctl.get("malformed_coinbase"):
            coinb2 = coinb2[:9]  # ends inside the outputs
        prevhash = notify_prevhash(ctl["prevhash"]) if "prevhash" in ctl else self.prevhash
        branch = ["%064x" % self.rng.getrandbits(256) for _ in range(self.rng.randint(1, 4))]
        job = {
            "id": jid, "prevhash": prevhash, "coinb1": coinb1.hex(),
            "coinb2": coinb2.hex(), "merkle_branch": branch, "version": "20000000",
            "nbits": ctl.get("nbits", self.args.nbits),
            "ntime": "%08x" % (int(time.time()) + int(ctl.get("ntime_offset", 0))), "clean": clean,
            "difficulty": self.difficulty,
        }
        now = time.monotonic()
        job["issued_at"] = time.time()
        job["stale_at"] = None
        if clean:
            for old in self.valid:
                self.invalidated[old] = now
                self.jobs[old]["stale_at"] = job["issued_at"]
            self.valid = []
        self.valid.append(jid)
        if len(self.valid) > 8:
            old = self.valid.pop(0)
            self.invalidated[old] = now
            self.jobs[old]["stale_at"] = job["issued_at"]
        self.jobs[jid] = job
        return job

    def broadcast(self, job):
        for c in list(self.conns):
            if c.subscribed:
                c.send(self.notify_line(job))

    def read_control(self):
        """The --control file's text and JSON, or (None, None) while it is missing or half written."""
        try:
            with open(self.args.control) as f:
                text = f.read()
            return text, json.loads(text)
        except (OSError, ValueError):
            return None, None

    async def control_loop(self, seen):
        """Follows --control: a JSON file the test rewrites; each change is a new clean job.
        `seen`: the text already applied at start."""
        while True:
            await asyncio.sleep(0.1)
            text, ctl = self.read_control()
            if text is None or text == seen:
                continue
            seen = text
            self.control = ctl
            self.events.append({"event": "control", "control": ctl, "at": time.time()})
            se = ctl.get("set_extranonce")
            if se:
                for c in list(self.conns):
                    if c.subscribed:
                        c.send({"id": None, "method": "mining.set_extranonce",
                                "params": [se["extranonce1"], se["extranonce2_size"]]})
            self.broadcast(self.make_job(True))

    @staticmethod
    def notify_line(job):
        return {"id": None, "method": "mining.notify",
                "params": [job["id"], job["prevhash"], job["coinb1"], job["coinb2"], job["merkle_branch"],
                           job["version"], job["nbits"], job["ntime"], job["clean"]]}

    def faulty(self):
        """Silent or garbage from --fault-after on; 'reject' only turns submits down."""
        return self.args.fault in ("silent", "garbage") and self.rejecting()

    def rejecting(self):
        return bool(self.args.fault) and time.monotonic() - self.started >= self.args.fault_after

    def malformed_notifies(self):
        a = self.args
        return a.malformed_notifies_after > 0 and time.monotonic() - self.started >= a.malformed_notifies_after

    async def job_loop(self):
        n = 0
        while True:
            await asyncio.sleep(self.args.job_interval)
            # Paced by work as well as by time: on a slow (busy) machine jobs
            # come as slowly as the shares, so none goes stale for slowness.
            while self.counts["accepted"] - self.accepted_at_job < self.args.shares_per_job:
                await asyncio.sleep(0.05)
            self.accepted_at_job = self.counts["accepted"]
            if self.faulty():
                if self.args.fault == "garbage":
                    for c in list(self.conns):
                        c.writer.write(b"\x00\x13garbage{{{ not json\n")
                continue
            if self.control.get("pause_jobs"):
                continue  # --control: the test stops the job stream (a notify flood's end)
            if self.malformed_notifies():
                # Well-formed JSON-RPC, a notify with a prevhash that is not
                # hex; everything else (answers to shares) stays correct.
                self.events.append({"event": "malformed_notify", "at": time.time()})
                for c in list(self.conns):
                    if c.subscribed:
                        c.send({"id": None, "method": "mining.notify",
                                "params": ["bad", "zz" * 32, "00", "00", [], "20000000", self.args.nbits, "00000000",
                                           True]})
                continue
            n += 1
            clean = self.args.clean_every > 0 and n % self.args.clean_every == 0
            job = self.make_job(clean)
            for c in list(self.conns):
                if c.subscribed:
                    c.send(self.notify_line(job))

    def report(self):
        return {
            "counts": self.counts,
            "jobs_issued": self.next_job - 1,
            "difficulty": self.args.difficulty,
            "connections": [c.summary() for c in self.connections_seen],
            "events": self.events,
            "shares": self.shares,
            "jobs": list(self.jobs.values()),
            "extranonce1_size": self.args.extranonce1_size,
            "stale_grace": self.args.stale_grace,
            "algorithm": self.args.algorithm,
        }


def would_accept(report, share):
    """Whether this pool (its end-of-run report) would have accepted a share
    as a miner found it: `share` holds the job's prevhash, the miner's
    extranonce1 (the pool's extranonce1 and hashgate's prefix) and
    extranonce2, ntime, nonce, version (the full rolled version) and `at`,
    the wall time it was found. The job must have been valid here at that
    time (or within the stale grace), the extranonce must be in one of this
    pool's connections' spaces with the right length, and the hash at or
    under the job's target. Reasons come back for the test's message."""
    jobs = [j for j in report["jobs"] if j["prevhash"] == share["prevhash"]]
    if not jobs:
        return False, "not this pool's job"
    job = jobs[0]
    if share["at"] < job["issued_at"] - 1:
        return False, "found before the job was issued"
    if job["stale_at"] is not None and share["at"] > job["stale_at"] + report["stale_grace"]:
        return False, "stale at the pool"
    en = bytes.fromhex(share["extranonce1"]) + bytes.fromhex(share["extranonce2"])
    spaces = [c for c in report["connections"] if c["subscribed"]
              and en.hex().startswith(c["extranonce1"])
              and len(en) == len(bytes.fromhex(c["extranonce1"])) + c.get("extranonce2_size", 8)]
    if not spaces:
        return False, "extranonce outside this pool's spaces"
    header = ref.build_header(job, bytes.fromhex(share["extranonce1"]), bytes.fromhex(share["extranonce2"]),
                              share["ntime"], share["nonce"], share["version"])
    h = ref.hash_value(ref.pow_hash(report["algorithm"], header))
    if h > ref.target_for(report["algorithm"], job["difficulty"]):
        return False, "under the pool's difficulty"
    return True, "ok"


class Conn:
    def __init__(self, pool, reader, writer):
        self.pool, self.reader, self.writer = pool, reader, writer
        self.extranonce1 = struct.pack(">I", pool.next_en1)[: pool.args.extranonce1_size].rjust(
            pool.args.extranonce1_size, b"\x00")
        pool.next_en1 += 1
        self.subscribed = False
        self.resumed = False
        self.old_extranonce1 = None
        self.old_extranonce2_size = None
        self.extranonce2_size = pool.extranonce2_size
        self.switch_job = 0
        self.workers = []
        self.mask = 0
        self.old_mask = None  # before a mining.set_version_mask, for jobs before mask_switch_job
        self.mask_switch_job = 0
        self.accepted = 0
        self.rejected = 0
        self.peer = writer.get_extra_info("peername")

    def summary(self):
        return {"extranonce1": self.extranonce1.hex(), "extranonce2_size": self.extranonce2_size, "workers": self.workers, "subscribed": self.subscribed,
                "version_mask": "%08x" % self.mask, "resumed": self.resumed, "accepted": self.accepted, "rejected": self.rejected}

    def send(self, obj):
        try:
            self.writer.write((json.dumps(obj) + "\n").encode())
        except Exception:
            pass

    def reply(self, mid, result=None, error=None):
        self.send({"id": mid, "result": result, "error": error})

    async def run(self):
        self.pool.conns.append(self)
        self.pool.connections_seen.append(self)
        a = self.pool.args
        if a.reconnect_on_connect:
            # A reconnect loop: every new connection is told to go at once.
            port = a.reconnect_port or self.writer.get_extra_info("sockname")[1]
            self.send({"id": None, "method": "client.reconnect", "params": ["", port, 0]})
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                if self.pool.faulty():
                    if self.pool.args.fault == "garbage":
                        self.writer.write(b"}}garbage in answer to your request\n")
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.reply(None, error=[-32700, "parse error", None])
                    continue
                self.handle(msg)
                await self.writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.pool.conns.remove(self)
            self.writer.close()

    def handle(self, msg):
        method, params, mid = msg.get("method"), msg.get("params") or [], msg.get("id")
        a = self.pool.args
        if method == "mining.configure":
            exts, opts = params[0], (params[1] if len(params) > 1 else {})
            result = {}
            if "version-rolling" in exts and a.version_mask:
                self.mask = int(opts.get("version-rolling.mask", "ffffffff"), 16) & int(a.version_mask, 16)
                result = {"version-rolling": True, "version-rolling.mask": "%08x" % self.mask}
            elif "version-rolling" in exts:
                result = {"version-rolling": False}
            self.reply(mid, result)
        elif method == "mining.subscribe" and a.close_on_subscribe:
            self.pool.events.append({"event": "closed_on_subscribe", "at": time.time()})
            self.writer.close()
        elif method == "mining.subscribe" and a.subscribe_result:
            # A limbo pool: a subscribe result hashgate must refuse, and jobs all the same.
            self.subscribed = True
            en1 = self.extranonce1.hex()
            bad = {"en2_0": [[], en1, 0], "en2_255": [[], en1, 255], "en1_100": [[], "ab" * 100, 8],
                   "null": None}.get(a.subscribe_result)
            if a.subscribe_result == "error":
                self.reply(mid, None, [20, "subscriptions closed", None])
            else:
                self.reply(mid, bad)
            self.pool.events.append({"event": "limbo_subscribe", "at": time.time()})
            job = self.pool.jobs[self.pool.valid[-1]]
            self.send(self.pool.notify_line(job))
        elif method == "mining.subscribe":
            self.subscribed = True
            sid = "n1"
            if a.session_ids:
                # A session id naming a subscription whose connection is gone
                # gets that extranonce1 back (resume); anything else a new one.
                want = params[1] if len(params) > 1 and isinstance(params[1], str) else None
                old = self.pool.sessions.get(want)
                if old is not None and not any(c.extranonce1 == old and c is not self for c in self.pool.conns):
                    self.extranonce1 = old
                    self.resumed = True
                    self.pool.events.append({"event": "resumed", "session_id": want, "at": time.time()})
                sid = "s" + self.extranonce1.hex()
                self.pool.sessions[sid] = self.extranonce1
            self.reply(mid, [[["mining.set_difficulty", "d1"], ["mining.notify", sid]], self.extranonce1.hex(),
                             self.extranonce2_size])
        elif method == "mining.authorize":
            self.workers.append(params[0])
            self.reply(mid, True)
            self.send({"id": None, "method": "mining.set_difficulty", "params": [self.pool.difficulty]})
            if time.monotonic() - self.pool.started < a.first_job_delay:
                return  # the delayed first job goes to everyone at once
            job = self.pool.jobs[self.pool.valid[-1]]
            line = self.pool.notify_line(job)
            line["params"][8] = True
            self.send(line)
        elif method in ("mining.extranonce.subscribe", "mining.suggest_difficulty"):
            self.reply(mid, True)
        elif method == "mining.submit":
            self.submit(mid, params)
        else:
            self.reply(mid, error=[-32601, "unknown method", None])

    def reject(self, mid, kind, code, text):
        self.pool.counts[kind] += 1
        self.rejected += 1
        self.reply(mid, None, [code, text, None])

    def submit(self, mid, params):
        pool, a = self.pool, self.pool.args
        if len(params) < 5:
            return self.reject(mid, "other", 20, "bad params")
        worker, jid, en2_hex, ntime_hex, nonce_hex = params[:5]
        if a.fault == "reject" and pool.rejecting():
            return self.reject(mid, "other", 20, "rejected (mock pool fault)")
        vbits = params[5] if len(params) > 5 else None
        if worker not in self.workers:
            return self.reject(mid, "unauthorized", 24, "unauthorized worker")
        job = pool.jobs.get(jid)
        if job is None:
            return self.reject(mid, "stale", 21, "job not found")
        late = False
        if jid not in pool.valid:
            # A share already on the wire when the job went stale: counted
            # apart, accepted only within the grace period.
            if time.monotonic() - pool.invalidated.get(jid, 0) > a.stale_grace:
                return self.reject(mid, "stale", 21, "stale job")
            late = True
        en1, en2_size = self.extranonce1, self.extranonce2_size
        if self.old_extranonce1 is not None and int(jid, 16) < self.switch_job:
            en1, en2_size = self.old_extranonce1, self.old_extranonce2_size
        if len(en2_hex) != 2 * en2_size:
            return self.reject(mid, "other", 20, "bad extranonce2 size")
        ntime, nonce = int(ntime_hex, 16), int(nonce_hex, 16)
        if ntime < int(job["ntime"], 16) or ntime > int(job["ntime"], 16) + 7200:
            return self.reject(mid, "other", 20, "ntime out of range")
        version = int(job["version"], 16)
        mask = self.mask
        if self.old_mask is not None and int(jid, 16) < self.mask_switch_job:
            mask = self.old_mask
        if vbits is not None:
            vb = int(vbits, 16)
            if vb & ~mask & 0xFFFFFFFF:
                pool.counts["outside_mask"] += 1
                return self.reject(mid, "other", 20, "version bits outside mask")
            version = (version & ~mask & 0xFFFFFFFF) | (vb & mask)
        key = (jid, en1.hex(), en2_hex, ntime, nonce, version)
        if key in pool.seen:
            return self.reject(mid, "duplicate", 22, "duplicate share")
        pool.seen.add(key)
        header = ref.build_header(job, en1, bytes.fromhex(en2_hex), ntime, nonce, version)
        h = ref.hash_value(ref.pow_hash(a.algorithm, header))
        if h > ref.target_for(a.algorithm, job["difficulty"]):
            return self.reject(mid, "low_difficulty", 23, "low difficulty share")
        block = h <= ref.compact_to_target(int(job["nbits"], 16))
        if block:
            pool.counts["blocks"] += 1
        if late:
            pool.counts["late"] += 1
        pool.counts["accepted"] += 1
        self.accepted += 1
        pool.shares.append({"extranonce1": en1.hex(), "extranonce2": en2_hex, "job": jid,
                            "worker": worker, "ntime": ntime, "nonce": nonce, "version": version,
                            "share_difficulty": ref.DIFF1[a.algorithm] / max(h, 1), "block": block,
                            "at": time.time()})
        self.reply(mid, True)


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--algorithm", choices=["sha256d", "scrypt"], default="scrypt")
    p.add_argument("--difficulty", type=float, default=0.01)
    p.add_argument("--extranonce1-size", type=int, default=4)
    p.add_argument("--extranonce2-size", type=int, default=8)
    p.add_argument("--version-mask", default="1fffe000", help="mask granted to version rolling; empty: none")
    p.add_argument("--nbits", default=None, help="network target (compact); default makes blocks rare")
    p.add_argument("--job-interval", type=float, default=5)
    p.add_argument("--shares-per-job", type=int, default=0,
                   help="a new job also waits until this many shares were accepted since the last one")
    p.add_argument("--clean-every", type=int, default=3, help="every Nth new job is clean (0: never)")
    p.add_argument("--stale-grace", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault", choices=["silent", "garbage", "reject"], default=None,
                   help="after --fault-after seconds: stop answering and sending jobs (silent), or answer everything "
                        "with garbage and send garbage lines (garbage); the sockets stay open; or reject every share (reject)")
    p.add_argument("--fault-after", type=float, default=0)
    p.add_argument("--set-extranonce-after", default="",
                   help="at these seconds (comma-separated): give every connection a new extranonce1, then a clean job")
    p.add_argument("--difficulty-at", default="",
                   help="SECONDS:DIFFICULTY,...: at these times send set_difficulty to everyone, then a new job")
    p.add_argument("--set-extranonce-size", type=int, default=0,
                   help="the extranonce2 size those set_extranonce messages give (default: unchanged)")
    p.add_argument("--reconnect-after", type=float, default=0,
                   help="once, after this many seconds: send client.reconnect to every connection")
    p.add_argument("--reconnect-host", default="", help="host in that client.reconnect (empty: the same host)")
    p.add_argument("--first-job-delay", type=float, default=0,
                   help="send no job to anyone for this many seconds after start")
    p.add_argument("--session-ids", action="store_true",
                   help="give subscriptions session ids and resume them (same extranonce1) on request")
    p.add_argument("--drop-after", type=float, default=0,
                   help="once, after this many seconds: close every connection (the port stays open)")
    p.add_argument("--close-on-subscribe", action="store_true",
                   help="close every connection when it sends mining.subscribe (a pool dying before subscribe)")
    p.add_argument("--reconnect-on-connect", action="store_true",
                   help="send client.reconnect (wait 0) to every connection as soon as it opens")
    p.add_argument("--reconnect-port", type=int, default=0,
                   help="the port named in every client.reconnect sent (0: this one)")
    p.add_argument("--subscribe-result", choices=["en2_0", "en2_255", "en1_100", "null", "error"], default=None,
                   help="answer mining.subscribe with this unusable result, and send jobs anyway (a limbo pool)")
    p.add_argument("--malformed-notifies-after", type=float, default=0,
                   help="from this many seconds on, every notify is malformed (answers to shares stay good)")
    p.add_argument("--set-version-mask-after", type=float, default=0,
                   help="once, after this many seconds: send mining.set_version_mask (--set-version-mask) "
                        "to every connection, which then holds shares to that mask")
    p.add_argument("--set-version-mask", default="00006000")
    p.add_argument("--tls-cert", default=None, help="serve stratum+ssl with this certificate (PEM)")
    p.add_argument("--tls-key", default=None)
    p.add_argument("--control", default=None,
                   help="JSON file followed while running: prevhash (display order) and height of the tip to build "
                        "on, drop_payout, ntime_offset, nbits, malformed_coinbase, set_extranonce "
                        "{extranonce1, extranonce2_size}, pause_jobs (no timed jobs); each change sends a clean job")
    p.add_argument("--payout-script", default="", help="the coinbase's payout scriptPubKey (hex); default: seeded")
    p.add_argument("--report", default=None)
    p.add_argument("--duration", type=float, default=0)
    args = p.parse_args()
    if args.nbits is None:
        args.nbits = "1e0ffff0" if args.algorithm == "scrypt" else "1d00ffff"
    pool = Pool(args)
    # The first job already follows --control: a gateway that connects at once
    # must not see a tip the test never asked for (the default height 5000).
    control_text = None
    if args.control:
        control_text, ctl = pool.read_control()
        if ctl is not None:
            pool.control = ctl
            pool.events.append({"event": "control", "control": ctl, "at": time.time()})
    pool.make_job(True)
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    server = await asyncio.start_server(lambda r, w: Conn(pool, r, w).run(), args.host, args.port, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    jobs = asyncio.create_task(pool.job_loop())
    if args.control:
        asyncio.create_task(pool.control_loop(control_text))

    async def later(delay, action):
        await asyncio.sleep(delay)
        action()

    def new_extranonce():
        if args.set_extranonce_size:
            pool.extranonce2_size = args.set_extranonce_size
        for conn in list(pool.conns):
            if not conn.subscribed:
                continue
            # Jobs issued before the change keep the old extranonce1.
            conn.old_extranonce1 = conn.extranonce1
            conn.old_extranonce2_size = conn.extranonce2_size
            if args.set_extranonce_size:
                conn.extranonce2_size = args.set_extranonce_size
            conn.switch_job = pool.next_job
            conn.extranonce1 = struct.pack(">I", pool.next_en1)[: args.extranonce1_size].rjust(
                args.extranonce1_size, b"\x00")
            pool.next_en1 += 1
            conn.send({"id": None, "method": "mining.set_extranonce",
                       "params": [conn.extranonce1.hex(), conn.extranonce2_size]})
        job = pool.make_job(True)
        for conn in list(pool.conns):
            if conn.subscribed:
                conn.send(pool.notify_line(job))
        pool.events.append({"event": "set_extranonce", "at": time.time()})

    def drop_all():
        for conn in list(pool.conns):
            conn.writer.close()
        pool.events.append({"event": "dropped", "at": time.time()})

    def reconnect():
        for conn in list(pool.conns):
            conn.send({"id": None, "method": "client.reconnect",
                       "params": [args.reconnect_host, args.reconnect_port or port, 0]})
        pool.events.append({"event": "client.reconnect", "at": time.time()})

    def set_version_mask():
        for conn in list(pool.conns):
            if not conn.subscribed:
                continue
            # Jobs from the next one on are held to the new mask (shares
            # already on the wire for older jobs keep the old one).
            conn.old_mask, conn.mask_switch_job = conn.mask, pool.next_job
            conn.mask = int(args.set_version_mask, 16)
            conn.send({"id": None, "method": "mining.set_version_mask", "params": [args.set_version_mask]})
        job = pool.make_job(True)
        for conn in list(pool.conns):
            if conn.subscribed:
                conn.send(pool.notify_line(job))
        pool.events.append({"event": "set_version_mask", "mask": args.set_version_mask, "at": time.time()})

    def first_job():
        job = pool.jobs[pool.valid[-1]]
        line = pool.notify_line(job)
        line["params"][8] = True
        for conn in list(pool.conns):
            if conn.subscribed and conn.workers:
                conn.send(line)

    def change_difficulty(d):
        pool.difficulty = d
        for conn in list(pool.conns):
            if conn.subscribed:
                conn.send({"id": None, "method": "mining.set_difficulty", "params": [d]})
        job = pool.make_job(False)
        for conn in list(pool.conns):
            if conn.subscribed:
                conn.send(pool.notify_line(job))
        pool.events.append({"event": "set_difficulty", "difficulty": d, "at": time.time()})

    for item in (x for x in args.difficulty_at.split(",") if x):
        at, d = item.split(":")
        asyncio.create_task(later(float(at), lambda d=float(d): change_difficulty(d)))
    if args.first_job_delay:
        asyncio.create_task(later(args.first_job_delay, first_job))
    for at in (float(x) for x in args.set_extranonce_after.split(",") if x):
        asyncio.create_task(later(at, new_extranonce))
    if args.reconnect_after:
        asyncio.create_task(later(args.reconnect_after, reconnect))
    if args.set_version_mask_after:
        asyncio.create_task(later(args.set_version_mask_after, set_version_mask))
    if args.drop_after:
        asyncio.create_task(later(args.drop_after, drop_all))
    if args.duration:
        loop.call_later(args.duration, stop.set)
    await stop.wait()
    jobs.cancel()
    server.close()
    if args.report:
        with open(args.report, "w") as f:
            json.dump(pool.report(), f)


if __name__ == "__main__":
    asyncio.run(main())

#!/usr/bin/env python3
"""Hostile clients for the abuse test: many connections from several
127.x.y.z source addresses that send garbage, oversized lines, floods of
invalid shares, or open a socket and never subscribe. Reports, per mode, how
many connections were opened, refused at once, and closed by the server,
and how many were still open at the end (should be none)."""
import argparse
import asyncio
import json
import random
import resource
import time


async def open_conn(host, port, source):
    return await asyncio.open_connection(host, port, local_addr=(source, 0), limit=1 << 16)


async def until_closed(reader, deadline):
    """Reads (and drops) until the server closes; True if it did before the deadline."""
    try:
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(65536), timeout=max(0.1, deadline - time.monotonic()))
            if not data:
                return True
    except asyncio.TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True  # reset by the server: closed too
    return False


class Stats:
    def __init__(self):
        self.d = {}

    def add(self, mode, key, n=1):
        self.d.setdefault(mode, {"opened": 0, "refused": 0, "closed_by_server": 0, "still_open": 0})
        self.d[mode][key] += n


async def garbage(args, source, stats, deadline):
    try:
        r, w = await open_conn(args.host, args.port, source)
    except OSError:
        return stats.add("garbage", "refused")
    stats.add("garbage", "opened")
    rng = random.Random(source)
    try:
        for _ in range(50):
            w.write(bytes(rng.getrandbits(8) for _ in range(rng.randint(5, 200))).replace(b"\n", b"") + b"\n")
            w.write(b'{"id": 1, "method": "mining.subscribe", "params": [}\n')
            await w.drain()
            await asyncio.sleep(0.05)
    except (ConnectionError, OSError):
        pass
    closed = await until_closed(r, deadline)
    stats.add("garbage", "closed_by_server" if closed else "still_open")
    w.close()


async def oversized(args, source, stats, deadline):
    try:
        r, w = await open_conn(args.host, args.port, source)
    except OSError:
        return stats.add("oversized", "refused")
    stats.add("oversized", "opened")
    try:
        w.write(b'{"id": 1, "method": "mining.subscribe", "params": ["' + b"A" * 200000)
        await w.drain()
    except (ConnectionError, OSError):
        pass
    closed = await until_closed(r, deadline)
    stats.add("oversized", "closed_by_server" if closed else "still_open")
    w.close()


async def share_flood(args, source, stats, deadline):
    """Subscribes, authorizes, then floods submits with random nonces on the
    current job: each is checked and rejected (low difficulty)."""
    try:
        r, w = await open_conn(args.host, args.port, source)
    except OSError:
        return stats.add("share_flood", "refused")
    stats.add("share_flood", "opened")
    w.write(b'{"id":1,"method":"mining.subscribe","params":["hostile/1"]}\n'
            b'{"id":2,"method":"mining.authorize","params":["hostile.flood","x"]}\n')
    job = None
    rng = random.Random(source)
    closed = False
    try:
        t_end = time.monotonic() + 5
        while job is None and time.monotonic() < t_end:
            line = await asyncio.wait_for(r.readline(), timeout=5)
            if not line:
                closed = True
                break
            msg = json.loads(line)
            if msg.get("method") == "mining.notify":
                job = msg["params"][0]
        i = 3
        while job is not None and not closed and time.monotonic() < deadline:
            batch = b"".join(
                b'{"id":%d,"method":"mining.submit","params":["hostile.flood","%s","00000000","%08x","%08x"]}\n' %
                (i + k, job.encode(), int(time.time()), rng.getrandbits(32)) for k in range(20))
            i += 20
            w.write(batch)
            await w.drain()
            await asyncio.sleep(0.02)
            if r.at_eof():
                closed = True
    except (ConnectionError, OSError, asyncio.TimeoutError, ValueError):
        pass
    if not closed:
        closed = await until_closed(r, deadline)
    stats.add("share_flood", "closed_by_server" if closed else "still_open")
    w.close()


async def idle(args, source, stats, deadline):
    try:
        r, w = await open_conn(args.host, args.port, source)
    except OSError:
        return stats.add("idle", "refused")
    stats.add("idle", "opened")
    closed = await until_closed(r, deadline)
    stats.add("idle", "closed_by_server" if closed else "still_open")
    w.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sources", required=True, help="comma-separated 127.x.y.z source addresses")
    p.add_argument("--garbage", type=int, default=0)
    p.add_argument("--oversized", type=int, default=0)
    p.add_argument("--share-flood", type=int, default=0)
    p.add_argument("--idle", type=int, default=0)
    p.add_argument("--seconds", type=float, default=20, help="how long to wait for the server to close each")
    p.add_argument("--report", required=True)
    args = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sources = args.sources.split(",")
    stats = Stats()
    deadline = time.monotonic() + args.seconds
    tasks = []
    n = 0
    for mode, count in ((garbage, args.garbage), (oversized, args.oversized), (share_flood, args.share_flood),
                        (idle, args.idle)):
        for _ in range(count):
            tasks.append(mode(args, sources[n % len(sources)], stats, deadline))
            n += 1
    random.Random(7).shuffle(tasks)
    started = time.monotonic()
    await asyncio.gather(*tasks)
    with open(args.report, "w") as f:
        json.dump({"elapsed": time.monotonic() - started, "modes": stats.d}, f)


if __name__ == "__main__":
    asyncio.run(main())

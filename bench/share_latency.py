#!/usr/bin/env python3
"""Share response latency under load: the real hashgate (scrypt, built-in
test pool) receives RATE shares per second from CONN simulated miners; each
share is fully hashed (most are answered 23, low difficulty, which costs the
same hashing as an accepted one). Reports p50/p99/p99.9 of the time from
sending a submit to reading its answer, measured by the client on 127.0.0.1.

  bench/share_latency.py --hashgate build/release/proxy/hashgate --rate 2000 --seconds 10
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


async def miner(idx, port, rate, seconds, lat, errors, stale):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    sent = {}
    job = None
    en2_size = None
    ready = asyncio.Event()

    async def reader():
        nonlocal job, en2_size
        while True:
            line = await r.readline()
            if not line:
                return
            m = json.loads(line)
            if m.get("method") == "mining.notify":
                job = m["params"]
                ready.set()
            elif m.get("id") == 2 and m.get("result"):
                en2_size = m["result"][2]
            elif isinstance(m.get("id"), int) and m["id"] in sent:
                lat.append(time.perf_counter() - sent.pop(m["id"]))
                if m.get("error") and m["error"][0] not in ((21,) if stale else (23,)):
                    errors.append(m["error"])

    t = asyncio.create_task(reader())
    w.write(b'{"id":2,"method":"mining.subscribe","params":["lat/1"]}\n'
            b'{"id":3,"method":"mining.authorize","params":["lat.%d","x"]}\n' % idx)
    await ready.wait()
    interval = 1.0 / rate
    nonce = (idx % 256) << 24
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        i += 1
        nonce = (nonce + 1) & 0xFFFFFFFF
        mid = 1000 + i
        line = json.dumps({"id": mid, "method": "mining.submit",
                           "params": ["lat.%d" % idx, "ffffff" if stale else job[0], "00" * en2_size, job[7],
                                      "%08x" % nonce]})
        sent[mid] = time.perf_counter()
        w.write(line.encode() + b"\n")
        await asyncio.sleep(max(0, t0 + i * interval - time.perf_counter()))
    await asyncio.sleep(1.0)
    t.cancel()
    w.close()


async def run(args, port, stale):
    lat, errors = [], []
    per = args.rate / args.connections
    t0 = time.perf_counter()
    await asyncio.gather(*(miner(i + (1000 if stale else 0), port, per, args.seconds, lat, errors, stale)
                           for i in range(args.connections)))
    return lat, errors, time.perf_counter() - t0


def summary(lat, errors, seconds):
    return {"answers": len(lat), "answers_per_second": len(lat) / seconds,
            "p50_ms": pct(lat, 50) * 1e3, "p99_ms": pct(lat, 99) * 1e3, "p999_ms": pct(lat, 99.9) * 1e3,
            "max_ms": max(lat) * 1e3 if lat else None, "unexpected_errors": len(errors)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hashgate", required=True)
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--threads", default="auto", help="hashing.threads for hashgate")
    ap.add_argument("--inline-small", default="true", help="hashing.inline_small_batches for hashgate")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hashgate-lat-")
    cfg = os.path.join(d, "hashgate.yaml")
    with open(cfg, "w") as f:
        f.write("algorithm: scrypt\nlisteners:\n  - name: s\n    bind: 127.0.0.1:0\npools:\n"
                "  - name: t\n    url: test://local?difficulty=64\nvardiff:\n  initial: 16\n  min: 16\n  max: 16\n"
                "hashing:\n  threads: %s\n  inline_small_batches: %s\nlogging:\n  level: info\n  format: json\n"
                % (args.threads, args.inline_small))
    gw = subprocess.Popen([args.hashgate, "--config", cfg], stderr=subprocess.PIPE, text=True)
    port = None
    hashing = None
    for line in gw.stderr:
        e = json.loads(line) if line.startswith("{") else {}
        if e.get("event") == "hashing":
            hashing = e
        if e.get("event") == "listening":
            port = e["port"]
            break
    # Keep reading hashgate's log so it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in gw.stderr], daemon=True).start()
    try:
        # Baseline, same run: the same traffic for a job id that is answered
        # at once (21, never hashed): client, loop and kernel alone.
        base = summary(*asyncio.run(run(args, port, True))[:2], args.seconds)
        hashed = summary(*asyncio.run(run(args, port, False))[:2], args.seconds)
    finally:
        gw.terminate()
        gw.wait()
    res = {"rate_asked": args.rate, "connections": args.connections, "seconds": args.seconds,
           "hashed_shares": hashed, "baseline_unhashed": base,
           "p99_added_by_hashing_ms": hashed["p99_ms"] - base["p99_ms"],
           "hashing": {k: hashing.get(k) for k in ("path", "lanes", "threads", "sha")} if hashing else None}
    emit(res, args.json)


def emit(res, path):
    """Prints the result, and writes it to `path` as JSON when given."""
    print(json.dumps(res, indent=1))
    if path:
        with open(path, "w") as f:
            json.dump(res, f)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Share answer latency with the share ledger on (SQLite, PostgreSQL) against
off, in one run: the same sha256d traffic (share_latency.py's client: RATE
submits per second over CONN connections, each share hashed and accepted,
so each one is counted into the ledger) sent to hashgate with
ledger.backend off, sqlite and postgres in turn, ROUNDS times round-robin
(so drift on a shared machine falls on every backend alike). PostgreSQL is
a throwaway server started here (tests/support/pg_cluster.py). Reports p50,
p99 and p99.9 per backend, pooled over the rounds, and p99 as a ratio to off
(pooled, and the median of the rounds' own ratios).

  bench/ledger_latency.py --hashgate build/release/proxy/hashgate --rate 10000 --seconds 8 --rounds 2
"""
import argparse
import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "support"))
from pg_cluster import PgCluster  # noqa: E402
from share_latency import emit, pct, run  # noqa: E402


def start(hashgate, d, backend, ledger):
    cfg = os.path.join(d, "hashgate-%s.yaml" % backend)
    with open(cfg, "w") as f:
        # Miners' difficulty so low that every share is accepted (and counted
        # in the ledger's accepted rows); the pool's so high nothing is forwarded.
        f.write("algorithm: sha256d\nlisteners:\n  - name: s\n    bind: 127.0.0.1:0\npools:\n"
                "  - name: t\n    url: test://local?difficulty=1000000\n"
                "vardiff:\n  initial: 1e-12\n  min: 1e-12\n  max: 1e-12\n"
                "limits:\n  messages_per_second: 100000\nbans:\n  allowlist: [127.0.0.1/32]\n"
                "logging:\n  level: info\n  format: json\n" + ledger)
    gw = subprocess.Popen([hashgate, "--config", cfg], stderr=subprocess.PIPE, text=True)
    port = None
    for line in gw.stderr:
        e = json.loads(line) if line.startswith("{") else {}
        if e.get("event") == "listening":
            port = e["port"]
            break
    if port is None:
        raise RuntimeError("hashgate (%s) did not start" % backend)
    threading.Thread(target=lambda: [None for _ in gw.stderr], daemon=True).start()
    return gw, port


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hashgate", required=True)
    ap.add_argument("--rate", type=float, default=10000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--connections", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    d = tempfile.mkdtemp(prefix="hashgate-ledger-lat-")
    pg = PgCluster("bench-%d" % os.getpid())
    backends = {
        "off": "",
        "sqlite": "ledger:\n  backend: sqlite\n  path: %s\n  flush_seconds: 1\n" % os.path.join(d, "ledger.db"),
        "postgres": "ledger:\n  backend: postgres\n  url: %s\n  flush_seconds: 1\n" % pg.url,
    }
    lat = {b: [] for b in backends}
    errors = {b: 0 for b in backends}
    took = {b: 0.0 for b in backends}
    per_round = {b: [] for b in backends}  # p99 of each round, ms
    try:
        for _ in range(args.rounds):
            for b, ledger in backends.items():
                gw, port = start(args.hashgate, d, b, ledger)
                try:
                    l, e, t = asyncio.run(run(args, port, False))
                finally:
                    gw.terminate()
                    gw.wait()
                lat[b] += l
                per_round[b].append(pct(l, 99) * 1e3)
                errors[b] += len(e)
                took[b] += t
        in_pg = int(pg.query("SELECT COALESCE(SUM(accepted), 0) FROM worker_totals")[0][0])
        con = sqlite3.connect(os.path.join(d, "ledger.db"))
        in_sqlite = con.execute("SELECT COALESCE(SUM(accepted), 0) FROM worker_totals").fetchone()[0]
        con.close()
    finally:
        pg.destroy()
    res = {"rate_asked": args.rate, "connections": args.connections, "seconds": args.seconds, "rounds": args.rounds,
           "accepted_in_ledger": {"sqlite": in_sqlite, "postgres": in_pg}, "backends": {}}
    for b in backends:
        v = lat[b]
        res["backends"][b] = {"answers": len(v), "answers_per_second": len(v) / (args.seconds * args.rounds),
                              "p50_ms": pct(v, 50) * 1e3, "p99_ms": pct(v, 99) * 1e3, "p999_ms": pct(v, 99.9) * 1e3,
                              "unexpected_errors": errors[b]}
    for b in backends:
        res["backends"][b]["p99_ms_by_round"] = per_round[b]
    for b in ("sqlite", "postgres"):
        res["p99_ratio_%s_to_off" % b] = res["backends"][b]["p99_ms"] / res["backends"]["off"]["p99_ms"]
        # Each round's backends ran back to back, so a round's ratio sees the
        # same machine load; the median of those is the steadier figure.
        ratios = sorted(x / y for x, y in zip(per_round[b], per_round["off"]))
        res["p99_ratio_%s_to_off_median_of_rounds" % b] = ratios[len(ratios) // 2] if len(ratios) % 2 else \
            (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    emit(res, args.json)


if __name__ == "__main__":
    main()

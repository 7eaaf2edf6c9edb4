#!/usr/bin/env python3
"""The share ledger on a real PostgreSQL server (issue 20, "Must show" 2):
a throwaway cluster started by the test (Debian's postgresql, initdb and
pg_ctl in a temporary directory, as the postgres user under root), three
hashgate instances writing into one database, the server stopped for 20 s
while the miners keep mining, then started again."""
import json
import os
import random
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "support"))
from harness import check, events, run  # noqa: E402
from pg_cluster import PgCluster  # noqa: E402
from test_ledger import history, http_get, miner_counts, sums  # noqa: E402
from test_ops import finish, http, miners, start_gateway, start_pool, write_config  # noqa: E402

OUTAGE_SECONDS = 20


def ledger_metrics(admin):
    """The ledger's gauges and counters from /metrics, by name (labels kept)."""
    out = {}
    for line in http(admin, "/metrics")[1].splitlines():
        if line.startswith("hashgate_ledger_"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def db_counts(pg, instance):
    """Per worker of `instance`: (accepted, stale, duplicate, low, forwarded, pool accepted) from the minute rows."""
    rows = pg.query("SELECT worker, SUM(accepted), SUM(rejected_stale), SUM(rejected_duplicate), "
                    "SUM(rejected_low_difficulty), SUM(forwarded), SUM(pool_accepted) FROM worker_minutes "
                    "WHERE instance = '%s' GROUP BY worker ORDER BY worker" % instance)
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


def db_totals(pg, instance):
    rows = pg.query("SELECT worker, accepted, rejected_stale, rejected_duplicate, rejected_low_difficulty, forwarded, "
                    "pool_accepted FROM worker_totals WHERE instance = '%s' ORDER BY worker" % instance)
    return {r[0]: tuple(int(x) for x in r[1:]) for r in rows}


def test_postgres_fleet_outage(hashgate):
    secret = "pw-%016x" % random.getrandbits(64)
    pg = PgCluster(secret)
    d = tempfile.mkdtemp(prefix="hashgate-ledger-pg-")
    # The URL (with its password) reaches hashgate from the environment for
    # gw-a and gw-c and from a file for gw-b; it must never be logged.
    os.environ["HASHGATE_TEST_LEDGER_URL"] = pg.url
    url_file = os.path.join(d, "ledger-url")
    with open(url_file, "w") as f:
        f.write(pg.url + "\n")
    # gw-c has the smallest queue allowed: during the outage it must drop,
    # count and log rows, while gw-a and gw-b keep theirs queued.
    ledgers = {
        "gw-a": {"url": "${HASHGATE_TEST_LEDGER_URL}"},
        "gw-b": {"url_file": url_file},
        "gw-c": {"url": "${HASHGATE_TEST_LEDGER_URL}", "queue_rows": 100},
    }
    count = {"gw-a": 4, "gw-b": 3, "gw-c": 10}
    gws, pools, procs = {}, {}, {}
    try:
        for name, led in ledgers.items():
            sub = os.path.join(d, name)
            os.mkdir(sub)
            pools[name] = start_pool(sub, "pool-" + name)
            path = os.path.join(sub, "hashgate.yaml")
            write_config(path, [{"name": "main", "url": "stratum+tcp://127.0.0.1:%d" % pools[name][1], "user": "gw"}],
                         {"ledger": dict({"backend": "postgres", "instance": name, "flush_seconds": 1}, **led)})
            gws[name] = start_gateway(hashgate, path)
        t_begin = int(time.time())
        # The same worker names on every instance: only the instance tag keeps them apart.
        for name, (gw, port, admin) in gws.items():
            procs[name] = miners(port, os.path.join(d, name, "miners.json"), "--count", str(count[name]),
                                 "--duration", "44", "--misbehave", "low:1", "--misbehave", "duplicate:1")
        # Rows reach the database while it is up.
        deadline = time.monotonic() + 30
        while True:
            m = {n: ledger_metrics(g[2]) for n, g in gws.items()}
            if all(v.get('hashgate_ledger_rows_total{result="written"}', 0) > 0 for v in m.values()):
                break
            check(time.monotonic() < deadline, "no ledger rows written before the outage: %s" % m)
            time.sleep(0.5)
        check(all(v.get('hashgate_ledger_up{backend="postgres"}') == 1 for v in m.values()), "ledger not up: %s" % m)

        # The outage: the server is stopped for 20 s while the miners mine.
        outage_from = time.time()
        pg.stop()
        peak = {n: 0.0 for n in gws}
        down_seen = {n: False for n in gws}
        while time.time() - outage_from < OUTAGE_SECONDS:
            for n, g in gws.items():
                v = ledger_metrics(g[2])
                peak[n] = max(peak[n], v["hashgate_ledger_queue_rows"])
                down_seen[n] |= v['hashgate_ledger_up{backend="postgres"}'] == 0
                check(v["hashgate_ledger_queue_rows"] <= v["hashgate_ledger_queue_limit_rows"],
                      "%s: %s rows queued, over the limit" % (n, v["hashgate_ledger_queue_rows"]))
            time.sleep(1)
        during = {n: ledger_metrics(g[2]) for n, g in gws.items()}
        pg.start()
        outage_to = time.time()
        check(all(down_seen.values()), "hashgate_ledger_up never went to 0 during the outage: %s" % down_seen)
        for n in ("gw-a", "gw-b"):
            # The queue depth shows the rows waiting: about one row per worker
            # and one for the pool each second of the outage.
            check(peak[n] >= (OUTAGE_SECONDS / 2) * count[n], "%s: at most %d rows queued during a %d s outage" %
                  (n, peak[n], OUTAGE_SECONDS))
            check(during[n]['hashgate_ledger_rows_total{result="dropped"}'] == 0, "%s dropped rows: %s" %
                  (n, during[n]))
        dropped_c = during["gw-c"]['hashgate_ledger_rows_total{result="dropped"}']
        check(dropped_c > 0, "gw-c (queue_rows 100) dropped nothing during the outage: %s" % during["gw-c"])
        check(peak["gw-c"] <= 100, "gw-c queued %d rows, past its bound" % peak["gw-c"])

        for name, p in procs.items():
            finish(p, "sim_miner on " + name)
        miners_done = time.time()
        # The queue gauge is read before each tick's flush: an empty queue in
        # a snapshot published 3 ticks after the last share means every share
        # (counted by then, flushed at the next due tick) is in the database.
        deadline = time.monotonic() + 30
        emptied = set()
        while len(emptied) < len(gws):
            for n, g in gws.items():
                published = json.loads(http(g[2], "/api/v1/status")[1])["published_unix"]
                if published >= miners_done + 3.5 and ledger_metrics(g[2])["hashgate_ledger_queue_rows"] == 0:
                    emptied.add(n)
            if len(emptied) == len(gws):
                break
            check(time.monotonic() < deadline, "the queues did not empty after the server came back: %s; %s" %
                  ({n: ledger_metrics(g[2]) for n, g in gws.items()},
                   {n: [l for l in g[0].err_lines if "ledger" in l][-3:] for n, g in gws.items()}))
            time.sleep(0.5)
        after = {n: ledger_metrics(g[2]) for n, g in gws.items()}
        for n in gws:
            # What was queued when the server came back was written, not dropped.
            backlog = during[n]["hashgate_ledger_queue_rows"]
            check(backlog > 0, "%s: nothing queued at the end of the outage: %s" % (n, during[n]))
            check(after[n]['hashgate_ledger_rows_total{result="written"}'] >=
                  during[n]['hashgate_ledger_rows_total{result="written"}'] + backlog,
                  "%s: the backlog was not written: during %s, after %s" % (n, during[n], after[n]))
        final_dropped_c = after["gw-c"]['hashgate_ledger_rows_total{result="dropped"}']
        # The history API on this backend (the admin threads' own connection):
        # gw-a's rows per worker, and the fleet as any instance sees it.
        window = "from=%d&to=%d" % (t_begin - 120, int(time.time()) + 120)
        mined_a = miner_counts(os.path.join(d, "gw-a", "miners.json"))
        deadline = time.monotonic() + 20
        while True:
            pts = history(gws["gw-b"][2], "instance=gw-a&" + window)
            if sums(pts, "accepted")[0] == sum(c["accepted"] for c in mined_a.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        for w, c in mined_a.items():
            got = sums(history(gws["gw-a"][2], "instance=gw-a&worker=%s&%s" % (w, window)), "accepted",
                       "rejected_low_difficulty", "rejected_duplicate")
            check(got == (c["accepted"], c["23"], c["22"]), "history of gw-a's %s: %s, the miner counted %s" % (w, got, c))
        api_fleet = sums(history(gws["gw-c"][2], window, "param"), "accepted")[0]
        sql_fleet = int(pg.query("SELECT SUM(accepted) FROM worker_minutes")[0][0])
        check(api_fleet == sql_fleet, "fleet history %d, the database holds %d" % (api_fleet, sql_fleet))
        status, _, body = http_get(gws["gw-a"][2], "/api/v1/reconciliation?instance=gw-b&from=%d" % (t_begin - 3600))
        rec = json.loads(body)
        sql_credited = int(pg.query("SELECT SUM(pool_accepted) FROM worker_hours WHERE instance = 'gw-b'")[0][0])
        check(status == 200 and rec["pools"][0]["pool_accepted"] == sql_credited > 0,
              "gw-b's reconciliation %s, the database %d" % (rec, sql_credited))
        for name, (gw, _, _) in gws.items():
            check(gw.stop() == 0, "%s did not exit 0" % name)
    finally:
        for name, (gw, _, _) in gws.items():
            gw.stop()
        for p, _, _ in pools.values():
            p.stop()
        for p in procs.values():
            if p.poll() is None:
                p.kill()

    try:
        fleet_db, fleet_miners = 0, 0
        for name in ledgers:
            mined = miner_counts(os.path.join(d, name, "miners.json"))
            pool_rep = json.load(open(os.path.join(d, name, "pool-%s.json" % name)))
            got, totals = db_counts(pg, name), db_totals(pg, name)
            check(got == totals, "%s: worker_totals %s differ from the minute rows %s" % (name, totals, got))
            want = {w: (c["accepted"], c["21"], c["22"], c["23"]) for w, c in mined.items()}
            check(sum(c[0] for c in want.values()) >= 20 * count[name], "%s: the miners found only %s" % (name, want))
            if name == "gw-c":
                # Rows past its bound were dropped, so the database has less
                # than the miners counted, and never more.
                lost = sum(want[w][0] for w in want) - sum(v[0] for v in got.values())
                check(lost > 0, "gw-c dropped %d rows yet the database holds every share" % dropped_c)
                check(all(got.get(w, (0,))[0] <= want[w][0] for w in want), "gw-c: %s over %s" % (got, want))
                continue
            check({w: v[:4] for w, v in got.items()} == want,
                  "%s: the database holds %s, the miners counted %s" % (name, got, want))
            fwd = sum(v[4] for v in got.values())
            credited = sum(v[5] for v in got.values())
            check(credited == pool_rep["counts"]["accepted"] and fwd == credited,
                  "%s: forwarded %d, pool-accepted %d in the database; the pool accepted %d" %
                  (name, fwd, credited, pool_rep["counts"]["accepted"]))
            # No minute missing: every minute from the first to the last row
            # is there, the outage's minutes included.
            minutes = sorted(int(r[0]) for r in pg.query(
                "SELECT DISTINCT ts FROM worker_minutes WHERE instance = '%s'" % name))
            check(minutes == list(range(minutes[0], minutes[-1] + 60, 60)), "%s: minutes %s" % (name, minutes))
            for t in (outage_from, outage_to):
                check(int(t // 60 * 60) in minutes, "%s: the outage's minute %d is missing: %s" %
                      (name, t // 60 * 60, minutes))
            fleet_db += sum(v[0] for v in got.values())
            fleet_miners += sum(w[0] for w in want.values())
        fleet = int(pg.query("SELECT SUM(accepted) FROM worker_totals WHERE instance IN ('gw-a', 'gw-b')")[0][0])
        check(fleet == fleet_miners == fleet_db, "fleet: %d in the database, the miners counted %d" %
              (fleet, fleet_miners))
        # Logged: the outage, the recovery, and gw-c's drops (rate-limited);
        # the URL's password nowhere in any log.
        for name, (gw, _, _) in gws.items():
            check(events(gw.err_lines, "ledger_write_failed"), "%s logged no failed write" % name)
            check(events(gw.err_lines, "ledger_recovered"), "%s logged no recovery" % name)
            check(not any(secret in l for l in gw.err_lines), "%s logged the database password" % name)
        drops = events(gws["gw-c"][0].err_lines, "ledger_rows_dropped")
        check(drops and 0 < drops[-1]["dropped_total"] <= final_dropped_c and drops[0]["limit"] == 100,
              "gw-c's drops were not logged: %s" % drops)
        check(len(drops) <= OUTAGE_SECONDS / 10 + 2, "gw-c logged %d drop lines (rate limit)" % len(drops))
    finally:
        pg.destroy()
    print("postgres: gw-a + gw-b wrote %d accepted shares into one database through a %d s outage "
          "(peak queue %d/%d rows), equal to the miners' counts; gw-c dropped %d rows past queue_rows=100, logged" %
          (fleet, OUTAGE_SECONDS, peak["gw-a"], peak["gw-b"], dropped_c))


TESTS = {
    "postgres_fleet_outage": test_postgres_fleet_outage,
}

if __name__ == "__main__":
    run(TESTS)

#!/usr/bin/env python3
"""Economics with the real binary: expected earnings from the mock pool's
jobs against a hand calculation (both algorithms), a price endpoint served
by the test on loopback (updates, malformed JSON, a missing path, an
unreachable endpoint), and the profit guard pausing and resuming an
emulated board (hashgate-board-emu on a pty) as the price crosses the cost
of its power."""
import json
import os
import signal
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Failure, Scenario, check, events, run  # noqa: E402
import test_hw  # noqa: E402
from test_hw import api, board_of, emulator, free_port, metrics, read_stats, wait_for  # noqa: E402

# What the mock pool's coinbase pays: one output of 312,500,000 (mock_pool.py make_job).
MOCK_BLOCK_VALUE = 312500000
DIFF1 = {"sha256d": 0xffff << 208, "scrypt": 0xffff << 224}
HASHES_PER_DIFF = {"sha256d": 2.0 ** 32, "scrypt": 65536.0}


def compact_to_target(nbits):
    return (nbits & 0xffffff) << (8 * ((nbits >> 24) - 3))


def close(a, b, rel=1e-9):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def metric_value(text, name, labels):
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    for line in text.splitlines():
        if not labels and line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
        if line.startswith(name + "{"):
            got = line[len(name) + 1:line.index("}")]
            if ",".join(sorted(got.split(","))) == want:
                return float(line.rsplit(" ", 1)[1])
    return None


class PriceServer:
    """A JSON price endpoint on 127.0.0.1 whose answer the test sets."""

    def __init__(self, port=0):
        self.body = b'{"data": {"price": 1}}'
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                outer.hits += 1
                body = outer.body
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set(self, obj_or_bytes):
        self.body = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def earnings_by_hand(hashgate, algorithm, economics):
    admin = free_port()
    nbits = "1d00ffff" if algorithm == "sha256d" else "1e0ffff0"
    # Small enough for the simulated miners' Python hashing (sha256d: 2^32 hashes per difficulty).
    diff = "0.0001" if algorithm == "sha256d" else "0.01"
    cfg = {"vardiff": {"initial": float(diff), "min": float(diff), "max": float(diff), "target_share_seconds": 10},
           "admin": {"bind": "127.0.0.1:%d" % admin}, "economics": economics}
    # Pool difficulty equal to the miners': every accepted share is forwarded and credited.
    s = Scenario(hashgate, algorithm=algorithm, pool_args=["--difficulty", diff, "--nbits", nbits], config=cfg)
    try:
        s.miners(2, 12, "--worker-prefix", "rig.")
        wait_for(lambda: api(admin, "pools")["pools"][0]["accepted"] >= 20, 30, "pool verdicts")
        time.sleep(1.2)  # one more snapshot
        pools = api(admin, "pools")["pools"]
        workers = api(admin, "workers")["workers"]
        status = api(admin, "status")
        m = metrics(admin)
    except Exception:
        s.abort()
        raise
    evs, pool = s.finish()
    D = DIFF1[algorithm] / compact_to_target(int(nbits, 16))  # 1 (sha256d 1d00ffff), 16 (scrypt 1e0ffff0)
    hpd = HASHES_PER_DIFF[algorithm]
    value = MOCK_BLOCK_VALUE / 1e8
    p = pools[0]
    pe = p["economics"]
    check(close(pe["network_difficulty"], D), "network difficulty %s, by hand %s" % (pe["network_difficulty"], D))
    check(pe["block_value"] == value, "block value %s, the mock pool pays %s" % (pe["block_value"], value))
    check(pe["height"] is not None and 5000 < pe["height"] < 5100,
          "height %s (the mock pool starts at 5000, one more each clean job)" % pe["height"])
    # Pool: accepted (by hashgate) and credited (by the pool) rates, each
    # turned into coins a day by hand: rate / hpd * 86400 / D * value.
    check(p["hashrate"] > 0 and pe["accepted_hashrate"] > 0 and pe["credited_hashrate"] == p["hashrate"],
          "pool rates: %s" % p)
    by_hand = p["hashrate"] / hpd * 86400 / D * value
    check(close(pe["coins_per_day_credited"], by_hand), "pool credited %s, by hand %s" % (pe["coins_per_day_credited"], by_hand))
    by_hand = pe["accepted_hashrate"] / hpd * 86400 / D * value
    check(close(pe["coins_per_day_accepted"], by_hand), "pool accepted %s, by hand %s" % (pe["coins_per_day_accepted"], by_hand))
    check(len(workers) == 2, "workers: %s" % [w["name"] for w in workers])
    for w in workers:
        we = w["economics"]
        check(w["hashrate"] > 0 and we["credited_hashrate"] > 0, "worker rates: %s" % w)
        for basis, rate in (("accepted", w["hashrate"]), ("credited", we["credited_hashrate"])):
            by_hand = rate / hpd * 86400 / D * value
            check(close(we["coins_per_day_" + basis], by_hand),
                  "%s %s: %s, by hand %s" % (w["name"], basis, we["coins_per_day_" + basis], by_hand))
    e = status["economics"]
    farm = e["farm"]
    check(close(farm["coins_per_day_credited"], pe["coins_per_day_credited"], 0.02),
          "farm credited %s vs the one pool's %s" % (farm["coins_per_day_credited"], pe["coins_per_day_credited"]))
    mv = metric_value(m, "hashgate_expected_coins_per_day", {"scope": "farm", "name": "farm", "basis": "credited"})
    check(mv is not None and close(mv, farm["coins_per_day_credited"], 0.05),
          "metric farm credited %s vs status %s" % (mv, farm["coins_per_day_credited"]))
    check(metric_value(m, "hashgate_block_value_coins", {"pool": "mock"}) == value, "block value metric")
    price = (economics.get("price") or {}).get("fixed")
    for w in workers:
        we = w["economics"]
        if price is None:
            check(we["money_per_day_accepted"] is None, "no price but money figures: %s" % we)
        else:
            check(close(we["money_per_day_accepted"], we["coins_per_day_accepted"] * price), "money: %s" % we)
    print("  %s: D=%g, block value %g, pool credited %.6g coins/day, accepted %.6g, farm %.6g" %
          (algorithm, D, value, pe["coins_per_day_credited"], pe["coins_per_day_accepted"],
           farm["coins_per_day_credited"]), flush=True)


def test_earnings_scrypt(hashgate):
    earnings_by_hand(hashgate, "scrypt", {"price": {"fixed": 80}, "power": {"price_per_kwh": 0.1}})


def test_earnings_sha256d_no_price(hashgate):
    earnings_by_hand(hashgate, "sha256d", {"power": {"price_per_kwh": 0.1}})


def economics_api(admin):
    return api(admin, "economics")


def test_price_endpoint(hashgate):
    srv = PriceServer()
    port = srv.port
    srv.set({"data": {"price": "101.5"}})  # quoted, as many exchanges do
    admin = free_port()
    cfg = {"admin": {"bind": "127.0.0.1:%d" % admin},
           "economics": {"price": {"url": "http://127.0.0.1:%d/ticker" % port, "path": "data.price",
                                   "refresh_seconds": 0.3, "timeout_seconds": 2, "currency": "EUR"}}}
    s = Scenario(hashgate, algorithm="scrypt", config=cfg)
    try:
        def price_is(v):
            p = economics_api(admin)["price"]
            return p if p["price"] == v and p["last_error"] == "" else None

        def error_starts(prefix):
            p = economics_api(admin)["price"]
            return p if p["last_error"].startswith(prefix) else None

        p = wait_for(lambda: price_is(101.5), 15, "the first price")
        check(p["source"] == "url" and p["fetches_ok"] >= 1 and not p["stale"], "price: %s" % p)
        srv.set({"data": {"price": 120}})
        wait_for(lambda: price_is(120), 10, "the price update")
        # Malformed JSON: the last price stays, marked stale, with its age.
        srv.set(b'{"data": {"price": 12')
        p = wait_for(lambda: error_starts("malformed JSON"), 10, "the malformed-JSON error")
        check(p["price"] == 120 and p["stale"], "after malformed JSON: %s" % p)
        time.sleep(1.5)
        p = economics_api(admin)["price"]
        check(p["price"] == 120 and p["age_seconds"] >= 1.0, "age of the kept price: %s" % p)
        # The answer has no such path.
        srv.set({"data": {"last": 5}})
        p = wait_for(lambda: error_starts("no member 'price' at 'data'"), 10, "the missing-path error")
        check(p["price"] == 120, "after a missing path: %s" % p)
        # Unreachable: the server is gone.
        srv.close()
        p = wait_for(lambda: error_starts("fetch: "), 10, "the unreachable error")
        check(p["price"] == 120 and p["fetches_failed"] >= 3, "while unreachable: %s" % p)
        m = metrics(admin)
        check(metric_value(m, "hashgate_coin_price", {"currency": "EUR", "source": "url"}) == 120, "price metric")
        failed = metric_value(m, "hashgate_coin_price_fetches_total", {"result": "failed"})
        check(failed is not None and failed >= 3, "failed fetches metric %s" % failed)
        age = metric_value(m, "hashgate_coin_price_age_seconds", {})
        check(age is not None and age >= 1, "price age metric %s" % age)
        # Back on the same port: the new price is taken and the error clears.
        srv = PriceServer(port)
        srv.set({"data": {"price": 130.25}})
        wait_for(lambda: price_is(130.25), 10, "the price after the endpoint came back")
    except Exception:
        s.abort()
        srv.close()
        raise
    evs, _ = s.finish()
    srv.close()
    fails = [e for e in events(s.gw.err_lines, "price_fetch_failed")]
    kinds = [e["error"] for e in fails]
    check(any(k.startswith("malformed JSON") for k in kinds) and any(k.startswith("no member 'price'") for k in kinds)
          and any(k.startswith("fetch: ") for k in kinds), "price_fetch_failed lines: %s" % kinds)
    check(all(e.get("kept_price") == 120 for e in fails), "each failure names the kept price: %s" % fails)
    # One line per kind of failure, not one per refresh.
    check(len(fails) <= 6, "%d price_fetch_failed lines for 3 kinds" % len(fails))
    print("  price: %d fetches served, failure lines: %s" % (srv.hits, kinds), flush=True)


def test_guard_board_emulator(hashgate):
    """The board stops receiving work when the price drops below its power
    cost and gets work again when the price rises."""
    d = __import__("tempfile").mkdtemp(prefix="hashgate-econ-")
    emu, link, stats = emulator(d, "bm1370", "ttyecon", "--chips", "1", "--hashrate", "100000",
                                "--difficulty-scale", str(2 ** 20))
    srv = PriceServer()
    srv.set({"price": 1e15})  # surely profitable until the board's figures are known
    admin = free_port()
    diff = test_hw.SHA_DIFF
    cfg = {
        "vardiff": {"initial": diff, "min": diff, "max": diff, "target_share_seconds": 10},
        "admin": {"bind": "127.0.0.1:%d" % admin},
        "hardware": {"boards": [{"name": "b1", "driver": "bm1370", "path": link, "chips": 1, "baud": 1000000,
                                 "difficulty_scale": 2 ** 20}]},
        "economics": {"price": {"url": "http://127.0.0.1:%d/p" % srv.port, "path": "price", "refresh_seconds": 0.3},
                      "power": {"price_per_kwh": 0.1},
                      "boards": [{"name": "b1", "watts": 15}],
                      "guard": {"enabled": True, "margin": 1.0, "resume_margin": 1.05, "window_seconds": 3}},
    }
    s = Scenario(hashgate, algorithm="sha256d",
                 pool_args=["--difficulty", repr(diff), "--job-interval", "2", "--clean-every", "3"], config=cfg)
    try:
        def econ_board():
            return economics_api(admin)["boards"][0]

        wait_for(lambda: board_of(admin, "b1")["accepted"] >= 10 and econ_board()["coins_per_day"] > 0, 60,
                 "the board mining with a hashrate")
        b = econ_board()
        cost = 15 / 1000 * 0.1  # per hour
        breakeven = cost * 24 / b["coins_per_day"]
        check(close(b["power_cost_per_hour"], cost), "cost per hour %s, by hand %s" % (b["power_cost_per_hour"], cost))
        check(b["guard_state"] == "mining", "before: %s" % b)
        # Price falls to a hundredth of break-even: paused after the 3 s window.
        srv.set({"price": breakeven / 100})
        wait_for(lambda: board_of(admin, "b1")["state"] == "paused", 20, "the board paused")
        time.sleep(0.7)  # the emulator writes its stats every 0.5 s
        jobs_at_pause = read_stats(stats)["jobs"]
        works_at_pause = board_of(admin, "b1")["works_sent"]
        time.sleep(3)  # six rounds of work at 0.5 s while mining
        jobs_later = read_stats(stats)["jobs"]
        works_later = board_of(admin, "b1")["works_sent"]
        check(jobs_later == jobs_at_pause and works_later == works_at_pause,
              "work while paused: emulator jobs %d -> %d, works_sent %d -> %d" %
              (jobs_at_pause, jobs_later, works_at_pause, works_later))
        b = econ_board()
        check(b["guard_state"] == "paused" and b["pauses"] == 1 and b["last_change"] == "paused: unprofitable",
              "paused: %s" % b)
        m = metrics(admin)
        check(metric_value(m, "hashgate_board_guard_paused", {"board": "b1"}) == 1, "paused metric")
        check(metric_value(m, "hashgate_board_guard_changes_total", {"board": "b1", "change": "pause"}) == 1,
              "pause counter")
        check('hashgate_board_state{board="b1",state="paused"} 1' in m, "board state metric not paused")
        # Price rises to a hundred times break-even: resumed, work flows again.
        srv.set({"price": breakeven * 100})
        wait_for(lambda: board_of(admin, "b1")["state"] == "mining", 20, "the board resumed")
        wait_for(lambda: read_stats(stats)["jobs"] >= jobs_at_pause + 3, 10, "work reaching the board again")
        accepted = board_of(admin, "b1")["accepted"]
        wait_for(lambda: board_of(admin, "b1")["accepted"] > accepted, 30, "shares after the resume")
        b = econ_board()
        check(b["guard_state"] == "mining" and b["resumes"] == 1 and b["last_change"] == "resumed: profitable",
              "resumed: %s" % b)
        m = metrics(admin)
        check(metric_value(m, "hashgate_board_guard_paused", {"board": "b1"}) == 0, "paused metric after resume")
        check(metric_value(m, "hashgate_board_guard_changes_total", {"board": "b1", "change": "resume"}) == 1,
              "resume counter")
    except Exception:
        s.abort()
        emu.stop()
        srv.close()
        raise
    emu.stop()
    evs, _ = s.finish()
    srv.close()
    paused = events(s.gw.err_lines, "board_guard_paused")
    resumed = events(s.gw.err_lines, "board_guard_resumed")
    check(len(paused) == 1 and len(resumed) == 1, "guard lines: %d paused, %d resumed" % (len(paused), len(resumed)))
    p, r = paused[0], resumed[0]
    check(p["earnings_per_hour"] < p["cost_per_hour"] and close(p["cost_per_hour"], cost) and p["held_seconds"] >= 3,
          "pause line figures: %s" % p)
    check(r["earnings_per_hour"] >= r["threshold_per_hour"] and close(r["threshold_per_hour"], cost * 1.05),
          "resume line figures: %s" % r)
    print("  guard: break-even %.6g, paused at %.6g/h vs cost %.6g/h, resumed at %.6g/h; emulator jobs held at %d "
          "for 3 s" % (breakeven, p["earnings_per_hour"], p["cost_per_hour"], r["earnings_per_hour"], jobs_at_pause),
          flush=True)


def test_groups_by_cidr(hashgate):
    """Miner groups for power (issue 23) by CIDR, by firmware profile and by
    worker pattern: two miners from 127.0.0.1 and three from 127.0.0.2; each
    group counts exactly its workers, with their summed hashrate."""
    admin = free_port()
    diff = 1e-6
    groups = [{"name": "rack-a", "cidrs": ["127.0.0.1/32"], "watts": 500},
              {"name": "rack-b", "cidrs": ["127.0.0.2/31", "127.0.0.9/32"], "watts": 1000},
              {"name": "by-name", "workers": ["rigb.*"], "watts": 10},
              {"name": "by-profile", "profiles": ["default"], "watts": 20},
              {"name": "nobody", "cidrs": ["10.0.0.0/8", "fd00::/8"], "watts": 30}]
    cfg = {"vardiff": {"initial": diff, "min": diff, "max": diff, "target_share_seconds": 10},
           "admin": {"bind": "127.0.0.1:%d" % admin}, "economics": {"groups": groups}}
    s = Scenario(hashgate, algorithm="sha256d", pool_args=["--difficulty", str(diff)], config=cfg)
    try:
        s.miners(2, 3, "--worker-prefix", "riga.")
        s.miners(3, 3, "--worker-prefix", "rigb.", "--source-ips", "127.0.0.2")
        time.sleep(1.2)  # one more snapshot
        workers = api(admin, "workers")["workers"]
        got = {g["name"]: g for g in api(admin, "economics")["groups"]}
    except Exception:
        s.abort()
        raise
    s.finish()
    by_addr = {}
    for w in workers:
        by_addr.setdefault(w["address"], []).append(w)
    check(sorted(by_addr) == ["127.0.0.1", "127.0.0.2"] and len(by_addr["127.0.0.1"]) == 2 and
          len(by_addr["127.0.0.2"]) == 3, "worker addresses: %s" % [(w["name"], w["address"]) for w in workers])
    for name, members in (("rack-a", by_addr["127.0.0.1"]), ("rack-b", by_addr["127.0.0.2"]),
                          ("by-name", [w for w in workers if w["name"].startswith("rigb.")]), ("by-profile", workers),
                          ("nobody", [])):
        g = got[name]
        hs = sum(w["hashrate"] for w in members)
        check(g["workers"] == len(members), "group %s counts %s workers, expected %d" % (name, g["workers"], len(members)))
        check(abs(g["hashrate"] - hs) <= 1e-6 * max(1.0, hs), "group %s hashrate %s, its workers' %s" % (name, g["hashrate"], hs))
    check(got["rack-b"]["hashrate"] > 0 and got["rack-a"]["hashrate"] > 0, "groups without hashrate: %s" % got)
    print("  groups: rack-a (127.0.0.1/32) %d workers, rack-b (127.0.0.2/31 + 127.0.0.9/32) %d, by name %d, "
          "by profile %d, nobody %d" % tuple(got[n]["workers"] for n in ("rack-a", "rack-b", "by-name", "by-profile",
                                                                        "nobody")), flush=True)


if __name__ == "__main__":
    if "--emulator" in sys.argv:
        i = sys.argv.index("--emulator")
        test_hw.EMU = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    run({"earnings_scrypt": test_earnings_scrypt, "earnings_sha256d_no_price": test_earnings_sha256d_no_price,
         "price_endpoint": test_price_endpoint, "guard_board_emulator": test_guard_board_emulator,
         "groups_by_cidr": test_groups_by_cidr})

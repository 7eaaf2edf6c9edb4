#!/usr/bin/env python3
"""Local ASIC boards with the real binary: the mock pool <- hashgate <- an
emulated board on a pseudo-terminal (hashgate-board-emu), one per protocol.
The pool checks every share with OpenSSL; the emulator hashes with OpenSSL
too; hashgate re-hashes every nonce with hashing/. Faults: bad CRCs, junk
bytes, invalid nonces, the board unplugged and plugged back, a silent
board."""
import json
import os
import signal
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Failure, Proc, Scenario, check, events, run  # noqa: E402

EMU = None  # set from --emulator
# Test speed: sha256d boards report at their ticket target times 2^20, scrypt (Zeus) times 2^12.
SHA_DIFF = 2.0 ** -20
SCRYPT_DIFF = 2.0 ** -12


def emulator(d, driver, link_name, *extra):
    link = os.path.join(d, link_name)
    stats = os.path.join(d, link_name + ".json")
    p = Proc([EMU, "--driver", driver, "--link", link, "--stats", stats] + list(extra))
    p.wait_line(lambda l: l.startswith("ready"), stream="out")
    return p, link, stats


def read_stats(path):
    with open(path) as f:
        return json.load(f)


def api(port, what):
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/%s" % (port, what), timeout=5) as r:
        return json.loads(r.read())


def metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def board_of(port, name):
    for b in api(port, "boards")["boards"]:
        if b["name"] == name:
            return b
    raise Failure("no board %s in /api/v1/boards" % name)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = pred()
        except OSError:  # the admin listener may come up a moment after the Stratum one
            r = None
        if r:
            return r
        time.sleep(0.2)
    raise Failure("timed out waiting for " + what)


def scenario(hashgate, algorithm, boards, pool_diff):
    admin = free_port()
    cfg = {
        "vardiff": {"initial": pool_diff, "min": pool_diff, "max": pool_diff, "target_share_seconds": 10},
        "admin": {"bind": "127.0.0.1:%d" % admin},
        "hardware": {"boards": boards},
    }
    s = Scenario(hashgate, algorithm=algorithm,
                 pool_args=["--difficulty", repr(pool_diff), "--job-interval", "2", "--clean-every", "3"], config=cfg)
    return s, admin


def end_to_end(hashgate, driver, algorithm, emu_args, board_extra, seconds, min_accepted):
    d = tempfile.mkdtemp(prefix="hashgate-hw-")
    emu, link, stats = emulator(d, driver, "tty" + driver, *emu_args)
    diff = SHA_DIFF if algorithm == "sha256d" else SCRYPT_DIFF
    board = dict({"name": "b1", "driver": driver, "path": link}, **board_extra)
    s, admin = scenario(hashgate, algorithm, [board], diff)
    try:
        wait_for(lambda: board_of(admin, "b1")["accepted"] >= min_accepted, seconds, "%d accepted shares" % min_accepted)
        b = board_of(admin, "b1")
        workers = {w["name"]: w for w in api(admin, "workers")["workers"]}
        m = metrics(admin)
    except Exception:
        s.abort()
        emu.stop()
        raise
    emu.stop()  # first, so what it sent is all in before hashgate's final counts
    time.sleep(0.5)
    e = read_stats(stats)
    try:
        # The admin API's snapshot trails the loop a little: wait for it to
        # hold what the emulator sent (less the few in flight).
        b_end = wait_for(lambda: (lambda x: x if x["nonces"] >= e["nonces"] - 3 else None)(board_of(admin, "b1")),
                         60, "hashgate's counts to catch up with the emulator's")

        # Board and worker counters, once the pool's answers are in (nothing
        # new comes after the board stopped): the two snapshots agree.
        def settled():
            bb = board_of(admin, "b1")
            ww = {x["name"]: x for x in api(admin, "workers")["workers"]}.get("board.b1")
            return (bb, ww) if ww is not None and abs(ww["accepted"] - bb["accepted"]) <= 2 else None
        b_settled, w = wait_for(settled, 10, "the board's and its worker's accepted counts to agree")
    except Exception:
        s.abort()
        raise
    evs, pool = s.finish()
    after = [x for x in evs if x.get("event") == "board_stats"]
    check(after, "no board_stats line at exit")
    final = after[-1]
    # The pool (OpenSSL) accepted every share hashgate forwarded for the board, and nothing else came.
    c = pool["counts"]
    check(c["accepted"] >= min_accepted, "pool accepted only %d" % c["accepted"])
    check(c["low_difficulty"] == 0 and c["other"] == 0 and c["duplicate"] == 0 and c["unauthorized"] == 0,
          "pool refused some of the board's shares: %s" % c)
    check(all(sh["worker"] == "farm.gw" for sh in pool["shares"]), "shares under an unexpected worker")
    # hashgate's counters agree with one another and with the pool.
    check(workers.get("board.b1") is not None, "the board's worker is missing from /api/v1/workers: %s" % list(workers))
    check(w["accepted"] >= b_settled["accepted"] - 2 and w["accepted"] <= b_settled["accepted"] + 2,
          "worker accepted %d vs board accepted %d" % (w["accepted"], b_settled["accepted"]))
    check(final["accepted"] <= c["accepted"] + c["stale"] + c["late"] + 2 and final["accepted"] >= c["accepted"] - c["late"],
          "board accepted %d at exit, pool accepted %s" % (final["accepted"], c))
    hw_errs = [x for x in evs if x.get("event") in ("board_hardware_error", "board_ready", "board_state")]
    check(b["hardware_errors"] == 0, "hardware errors without faults: %s %s" % (b, hw_errs[:12]))
    check(final["nonces"] <= e["nonces"] and final["nonces"] >= e["nonces"] - 3,
          "hashgate read %d valid nonces, the emulator sent %d" % (final["nonces"], e["nonces"]))
    check(final["hardware_errors"] == 0, "hardware errors at exit: %s" % final)
    print("  %s: emulator nonces %d (stale %d), hashgate nonces %d, submitted %d, accepted %d, pool accepted %d, "
          "hardware errors %d" % (driver, e["nonces"], e["stale_nonces"], final["nonces"], final["submitted"],
                                  final["accepted"], c["accepted"], final["hardware_errors"]), flush=True)
    # Per chip: hashgate attributes each nonce from its bits, the emulator
    # counts by the chip that really hashed it; they agree but for the few
    # nonces in flight at the end.
    hg_chips = [c["nonces"] for c in b_end["chips"]]
    emu_chips = e["nonces_by_chip"] + [0] * (len(hg_chips) - len(e["nonces_by_chip"]))
    check(len(hg_chips) == len(emu_chips) and sum(abs(x - y) for x, y in zip(hg_chips, emu_chips)) <= 3,
          "nonces by chip: hashgate %s (nonces %d), emulator %s" % (hg_chips, b_end["nonces"], e["nonces_by_chip"]))
    print("  %s: nonces by chip: hashgate %s, emulator %s" % (driver, hg_chips, e["nonces_by_chip"]), flush=True)
    check('hashgate_board_nonces_total{board="b1"' in m, "no board metrics in /metrics")
    check('hashgate_board_state{board="b1",state="mining"} 1' in m, "board not mining in /metrics")
    return b, e, pool, evs


def test_bm1370_end_to_end(hashgate):
    b, e, pool, _ = end_to_end(hashgate, "bm1370", "sha256d",
                               ["--chips", "2", "--hashrate", "100000", "--difficulty-scale", str(2 ** 20)],
                               {"chips": 2, "baud": 1000000, "frequency": 490, "difficulty_scale": 2 ** 20},
                               60, 40)
    check(b["chips_found"] == 2 and e["chips_addressed"] == 2, "chips: %s / %s" % (b["chips_found"], e))
    check(e["line_baud"] == 1000000, "the emulator saw the line at %s baud" % e["line_baud"])
    check(abs(e["frequency"] - 490) < 6, "the chips were set to %s MHz" % e["frequency"])
    check(e["version_mask"] == 0x1fffe000, "version mask register %x" % e["version_mask"])
    rolled = [s for s in pool["shares"] if s["version"] & 0x1fffe000]
    check(len(rolled) == len(pool["shares"]), "%d of %d shares carried rolled version bits" %
          (len(rolled), len(pool["shares"])))


def test_zeus_end_to_end(hashgate):
    b, e, _, evs = end_to_end(hashgate, "zeus", "scrypt",
                              ["--chips", "6", "--hashrate", "800", "--difficulty-scale", str(2 ** 12)],
                              {"chips": 6, "frequency": 328, "difficulty_scale": 2 ** 12}, 90, 12)
    check(e["inits"] >= 1, "the golden self-test never ran")
    check(any(x.get("event") == "board_ready" for x in evs), "no board_ready")
    check(abs(e["frequency"] - 328) < 2, "clock %s" % e["frequency"])
    check(abs(e["min_frequency"] - 165) < 1, "no clock ramp from 165 MHz: lowest clock %s" % e["min_frequency"])
    check(sum(1 for n in e["nonces_by_chip"] if n > 0) >= 4, "nonces from too few chips: %s" % e["nonces_by_chip"])


def test_gc3355_end_to_end(hashgate):
    b, e, _, _ = end_to_end(hashgate, "gc3355", "scrypt", ["--chips", "5", "--hashrate", "800"],
                            {"chips": 5, "frequency": 600}, 90, 12)
    check(abs(e["frequency"] - 600) < 1, "PLL %s" % e["frequency"])
    check(e["chips_addressed"] == 5, "sub-chip count %s" % e["chips_addressed"])
    check(e["sha2_off"], "the SHA-2 units were not powered down")
    check(e["baud_register"] == 0xc0001458, "SHA-2 UART word %x" % e["baud_register"])
    check(e["bad_frames"] == 0, "the emulator refused %d commands" % e["bad_frames"])
    # The work packet waits 100 ms after the scrypt reset (a delayed emulator
    # read can shorten one gap it sees, never all of them).
    check(e["paced_work"] >= 1 and e["paced_work"] >= e["jobs"] // 2, "work not paced: %s" % e)
    check(sum(1 for n in e["nonces_by_chip"] if n > 0) >= 4, "nonces from too few chips: %s" % e["nonces_by_chip"])


def test_faults_and_unplug(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-hw-")
    args = ["--chips", "3", "--missing-chip", "1", "--hashrate", "100000", "--difficulty-scale", str(2 ** 20),
            "--fault-crc-every", "6", "--fault-junk-every", "7", "--fault-invalid-every", "5"]
    emu, link, stats = emulator(d, "bm1370", "ttyBM", *args)
    board = {"name": "b1", "driver": "bm1370", "path": link, "chips": 3, "difficulty_scale": 2 ** 20,
             "max_hardware_error_ratio": 0.9}
    s, admin = scenario(hashgate, "sha256d", [board], SHA_DIFF)
    try:
        wait_for(lambda: board_of(admin, "b1")["hardware_errors"] >= 5 and board_of(admin, "b1")["crc_errors"] >= 3,
                 60, "hardware errors and CRC errors")
        emu.stop()  # unplugged: the pty goes away
        e1 = read_stats(stats)
        wait_for(lambda: board_of(admin, "b1")["state"] == "down", 10, "the board marked down")
        b1 = board_of(admin, "b1")
        check(b1["hardware_errors"] <= e1["invalid_nonces"], "more hardware errors (%d) than invalid nonces sent (%d)"
              % (b1["hardware_errors"], e1["invalid_nonces"]))
        check(b1["hardware_errors"] >= e1["invalid_nonces"] - e1["crc_faults"] - e1["junk_faults"] - 2,
              "invalid nonces went uncounted: %d of %d" % (b1["hardware_errors"], e1["invalid_nonces"]))
        check(b1["junk_bytes"] >= 4, "junk not seen: %s" % b1)
        check(b1["chips_found"] == 2 and b1["chips_expected"] == 3, "the missing chip went unnoticed: %s" % b1)
        print("  faults: emulator sent %d invalid nonces, %d bad CRCs, %d junk runs; hashgate counted %d hardware "
              "errors, %d CRC errors, %d junk bytes" % (e1["invalid_nonces"], e1["crc_faults"], e1["junk_faults"],
                                                      b1["hardware_errors"], b1["crc_errors"], b1["junk_bytes"]), flush=True)
        accepted_before = b1["accepted"]
        time.sleep(1.5)
        emu, link, stats = emulator(d, "bm1370", "ttyBM", *args)  # plugged back in, same path
        wait_for(lambda: board_of(admin, "b1")["accepted"] >= accepted_before + 10, 60, "shares after re-plug")
        b2 = board_of(admin, "b1")
        check(b2["reopens"] >= 1, "no reopen counted: %s" % b2)
    except Exception:
        s.abort()
        emu.stop()
        raise
    evs, pool = s.finish()
    emu.stop()
    c = pool["counts"]
    # Invalid nonces were never forwarded: the pool refused nothing.
    check(c["low_difficulty"] == 0 and c["other"] == 0 and c["duplicate"] == 0, "pool refused shares: %s" % c)
    check(any(x.get("event") == "board_down" for x in evs), "no board_down logged")
    check(any(x.get("event") == "board_chips_missing" and x.get("found") == 2 for x in evs),
          "no board_chips_missing logged")


def test_silent_board_restarted(hashgate):
    d = tempfile.mkdtemp(prefix="hashgate-hw-")
    emu, link, stats = emulator(d, "bm1370", "ttyBM", "--hashrate", "100000", "--difficulty-scale", str(2 ** 20),
                                "--silent-after", "3")
    board = {"name": "b1", "driver": "bm1370", "path": link, "difficulty_scale": 2 ** 20, "silent_seconds": 2}
    s, admin = scenario(hashgate, "sha256d", [board], SHA_DIFF)
    try:
        wait_for(lambda: board_of(admin, "b1")["restarts"] >= 1, 30, "a restart of the silent board")
        before = board_of(admin, "b1")["accepted"]
        wait_for(lambda: board_of(admin, "b1")["accepted"] >= before + 10, 30, "shares after the restart")
        e = read_stats(stats)
        check(e["inits"] >= 2 and not e["silent"], "the emulator was not re-initialised: %s" % e)
    except Exception:
        s.abort()
        emu.stop()
        raise
    evs, _ = s.finish()
    emu.stop()
    check(any(x.get("event") == "board_restart" and "silent" in x.get("reason", "") for x in evs),
          "no board_restart for silence logged")


if __name__ == "__main__":
    if "--emulator" in sys.argv:
        i = sys.argv.index("--emulator")
        EMU = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    run({"bm1370_end_to_end": test_bm1370_end_to_end, "zeus_end_to_end": test_zeus_end_to_end,
         "gc3355_end_to_end": test_gc3355_end_to_end, "faults_and_unplug": test_faults_and_unplug,
         "silent_board_restarted": test_silent_board_restarted})

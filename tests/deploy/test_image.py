#!/usr/bin/env python3
"""Builds the container image with Debian's podman/buildah (no Docker engine,
no registry) and checks it the way an operator first uses it:

  --version; the default config starts and /healthz answers on the published
  port; the process runs as uid 10001; the binary carries no debug info; the
  image's HEALTHCHECK passes, also with the admin address moved; `podman stop`
  with a connected miner drains and exits 0 within the README's stop timeout;
  the image size is printed.

Base images: debootstrap (minbase) from the host's own Debian mirror, read
from the apt sources, imported as debian:bookworm and debian:bookworm-slim.
Everything podman keeps (storage, config, run state) lives under
BUILD_DIR/image/, which also caches the rootfs tarballs and the image layers
so that a rerun only rebuilds what changed. Nothing under /etc/containers is
read for storage or changed; containers get slirp4netns networking (no
bridge, no iptables) and publish their ports on 127.0.0.1 only.

  test_image.py --build-dir build/release [--keep]
"""
import argparse
import glob
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Failure, check, free_port  # noqa: E402

SUITE = "bookworm"
IMAGE = "localhost/hashgate:image-test"
# The host lacks CAP_SYS_RESOURCE: podman's default ulimits (raising nofile
# to the hard maximum) fail, so every container gets explicit ones, within
# this process's own hard limits (which the container may keep).
_NOFILE = min(65536, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
_NPROC = min(4096, resource.getrlimit(resource.RLIMIT_NPROC)[1])
ULIMITS = ["--ulimit", "nofile=%d:%d" % (_NOFILE, _NOFILE), "--ulimit", "nproc=%d:%d" % (_NPROC, _NPROC)]
NICE = ["nice", "-n", "10"]


def log(msg):
    print("[image %6.1fs] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()


# ---------------------------------------------------------------- base images

def debian_mirror():
    """The host's Debian mirror for SUITE, from the apt sources (one-line
    .list files and deb822 .sources files)."""
    found = []
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        if not os.path.exists(path):
            continue
        for line in open(path):
            f = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()  # drop [options]
            if len(f) >= 3 and f[0] == "deb" and f[2] == SUITE:
                found.append(f[1])
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in re.split(r"\n\s*\n", open(path).read()):
            fields = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.split()
            if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []) \
                    and fields.get("enabled", ["yes"])[0] != "no":
                found += fields.get("uris", [])
    check(found, "no Debian %s mirror in the apt sources" % SUITE)
    return found[0].rstrip("/")


def base_rootfs(cache):
    """debootstrap once into cache/; returns (full tarball, slim tarball).
    Reused while the mirror is the same."""
    mirror = debian_mirror()
    full, slim = os.path.join(cache, SUITE + ".tar"), os.path.join(cache, SUITE + "-slim.tar")
    stamp = os.path.join(cache, "mirror")
    if os.path.exists(full) and os.path.exists(slim) and os.path.exists(stamp) and open(stamp).read() == mirror:
        log("base rootfs cached (%s)" % mirror)
        return full, slim
    log("debootstrap --variant=minbase %s from %s" % (SUITE, mirror))
    tmp = os.path.join(cache, "rootfs")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    subprocess.run(NICE + ["debootstrap", "--variant=minbase", SUITE, tmp, mirror], check=True,
                   stdout=subprocess.DEVNULL)
    # As the official images: no apt caches or lists in the layer.
    for d in ["var/cache/apt/archives", "var/lib/apt/lists"]:
        for p in glob.glob(os.path.join(tmp, d, "*")):
            if os.path.isfile(p):
                os.remove(p)
    subprocess.run(["tar", "-C", tmp, "--numeric-owner", "-cf", full + ".tmp", "."], check=True)
    # -slim, as Debian's: no documentation, man pages or translations, and
    # dpkg keeps them out of later installs too.
    for d in ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale"]:
        p = os.path.join(tmp, d)
        if os.path.isdir(p):
            shutil.rmtree(p)
            os.makedirs(p)
    os.makedirs(os.path.join(tmp, "etc/dpkg/dpkg.cfg.d"), exist_ok=True)
    with open(os.path.join(tmp, "etc/dpkg/dpkg.cfg.d/docker"), "w") as f:
        f.write("path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n"
                "path-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n"
                "path-exclude /usr/share/locale/*\n")
    subprocess.run(["tar", "-C", tmp, "--numeric-owner", "-cf", slim + ".tmp", "."], check=True)
    shutil.rmtree(tmp)
    os.replace(full + ".tmp", full)
    os.replace(slim + ".tmp", slim)
    with open(stamp, "w") as f:
        f.write(mirror)
    return full, slim


# ---------------------------------------------------------------- podman

class Podman:
    """podman with every file it keeps under `home` (storage, run state,
    networks, config): the host's /etc/containers is left as it is."""

    def __init__(self, home):
        self.home = home
        for d in ("storage", "run", "tmp", "net", "config"):
            os.makedirs(os.path.join(home, d), exist_ok=True)
        conf = os.path.join(home, "config")
        with open(os.path.join(conf, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' % (home, home))
        with open(os.path.join(conf, "containers.conf"), "w") as f:
            # runc: crun refuses this host's cgroup layout. No systemd here:
            # cgroupfs and file events. slirp4netns: no bridge, no iptables.
            f.write('[containers]\nnetns = "slirp4netns"\n'
                    '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    'events_logfile_path = "%s/run/events.log"\ntmp_dir = "%s/tmp"\n'
                    'static_dir = "%s/storage/libpod"\nvolume_path = "%s/storage/volumes"\n'
                    '[network]\nnetwork_config_dir = "%s/net"\n' % ((home,) * 5))
        with open(os.path.join(conf, "registries.conf"), "w") as f:
            f.write('unqualified-search-registries = []\nshort-name-mode = "permissive"\n')
        with open(os.path.join(conf, "policy.json"), "w") as f:
            json.dump({"default": [{"type": "reject"}],
                       "transports": {"docker-archive": {"": [{"type": "insecureAcceptAnything"}]},
                                      "containers-storage": {"": [{"type": "insecureAcceptAnything"}]}}}, f)
        self.env = dict(os.environ,
                        CONTAINERS_CONF=os.path.join(conf, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(conf, "storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=os.path.join(conf, "registries.conf"),
                        TMPDIR=os.path.join(home, "tmp"),
                        XDG_CONFIG_HOME=conf, XDG_RUNTIME_DIR=os.path.join(home, "run"))

    def run(self, *args, check_rc=True, nice=False, timeout=600, quiet=False):
        argv = (NICE if nice else []) + ["podman", "--runtime", "runc"] + list(args)
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check_rc and r.returncode != 0:
            raise Failure("%s -> %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        return r


def http_get(port, path, timeout=2):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as r:
        return r.status, r.read().decode()


def wait_for(pred, what, tries=120, every=0.25):
    for _ in range(tries):
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError):
            pass
        time.sleep(every)
    raise Failure("timed out waiting for " + what)


def readme_stop_timeout():
    """The --stop-timeout of the README's `docker run` example: the test
    stops the container with exactly that."""
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"docker run [^`]*?--stop-timeout (\d+)", text)
    check(m, "the README's docker run example has no --stop-timeout")
    return int(m.group(1))


def drain_seconds():
    m = re.search(r"^\s*drain_seconds:\s*(\d+)", open(os.path.join(ROOT, "conf", "hashgate.yaml")).read(), re.M)
    check(m, "conf/hashgate.yaml has no admin.drain_seconds")
    return int(m.group(1))


class Miner:
    """A miner that subscribes, authorizes and then stays connected, the
    case that makes a stop wait for the whole drain."""

    def __init__(self, port):
        self.sock = wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=2), "the Stratum port")
        self.sock.settimeout(30)
        self.buf = b""
        self.lines = []
        self.send({"id": 1, "method": "mining.subscribe", "params": ["image-test/1.0"]})
        self.send({"id": 2, "method": "mining.authorize", "params": ["image.worker1", "x"]})
        self.read_until(lambda m: m.get("id") == 2)

    def send(self, obj):
        self.sock.sendall((json.dumps(obj) + "\n").encode())

    def read_until(self, pred):
        """Messages until pred matches one; None at EOF."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                msg = json.loads(line)
                self.lines.append(msg)
                if pred(msg):
                    return msg
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data


# ---------------------------------------------------------------- the test

def import_bases(pm, cache, full, slim):
    """Imports the tarballs as debian:bookworm(-slim) unless this very
    tarball is already there (a re-import would change the base image's id
    and throw away the cached build layers)."""
    stamp = os.path.join(cache, "imported")
    want = "%s %d\n%s %d\n" % (full, os.path.getmtime(full), slim, os.path.getmtime(slim))
    have = open(stamp).read() if os.path.exists(stamp) else ""
    exists = all(pm.run("image", "exists", "docker.io/library/debian:" + t, check_rc=False).returncode == 0
                 for t in (SUITE, SUITE + "-slim"))
    if have == want and exists:
        log("base images already imported")
        return
    for tar, tag in ((full, SUITE), (slim, SUITE + "-slim")):
        pm.run("import", "--change", "CMD [\"bash\"]", tar, "docker.io/library/debian:" + tag, nice=True)
    with open(stamp, "w") as f:
        f.write(want)
    log("imported debian:%s and debian:%s-slim" % (SUITE, SUITE))


def run_container(pm, name, stop_timeout, ports, env=()):
    pm.run("rm", "-f", name, check_rc=False)
    args = ["run", "-d", "--name", name, "--network", "slirp4netns", "--stop-timeout", str(stop_timeout)] + ULIMITS
    for host_port, ctr_port in ports:
        args += ["-p", "127.0.0.1:%d:%d" % (host_port, ctr_port)]
    for e in env:
        args += ["-e", e]
    pm.run(*(args + [IMAGE]))


def test_image(args):
    cache = os.path.join(os.path.abspath(args.build_dir), "image")
    os.makedirs(cache, exist_ok=True)
    check(os.geteuid() == 0, "building base images (debootstrap) and rootful podman need root")
    for tool in ("podman", "buildah", "debootstrap", "runc", "slirp4netns"):
        check(shutil.which(tool), "%s is missing (scripts/deps.sh --test installs it)" % tool)
    full, slim = base_rootfs(cache)
    pm = Podman(os.path.join(cache, "podman"))
    import_bases(pm, cache, full, slim)

    t_build = time.monotonic()
    log("podman build (chroot isolation, host network, docker format)")
    pm.run("build", "--pull=never", "--isolation=chroot", "--network=host", "--format", "docker", "--layers",
           "-t", IMAGE, "-f", os.path.join(ROOT, "Dockerfile"), ROOT, nice=True, timeout=2400)
    log("built in %.0f s" % (time.monotonic() - t_build))
    info = json.loads(pm.run("image", "inspect", IMAGE).stdout)[0]
    size = info["Size"]
    check(info["Config"].get("User") == "10001:10001", "image user: %r" % info["Config"].get("User"))
    hc = (info.get("Healthcheck") or {}).get("Test") or []
    check("--healthcheck" in hc, "the image has no HEALTHCHECK (OCI format drops it): %r" % info)

    r = pm.run("run", "--rm", "--network", "none", *ULIMITS, IMAGE, "--version")
    check(r.stdout.startswith("hashgate ") and "allocator:" in r.stdout, "--version: %r" % r.stdout)
    version = r.stdout.splitlines()[0]

    # The shipped binary: stripped (the debug info stays in the build tree).
    pm.run("rm", "-f", "hg-copy", check_rc=False)
    pm.run("create", "--name", "hg-copy", IMAGE)
    out = tempfile.mkdtemp(prefix="hashgate-image-")
    try:
        pm.run("cp", "hg-copy:/usr/local/bin/hashgate", out)
    finally:
        pm.run("rm", "-f", "hg-copy", check_rc=False)
    binary = os.path.join(out, "hashgate")
    sections = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True, check=True).stdout
    check(".debug_info" not in sections and ".symtab" not in sections, "the image's binary is not stripped")
    binary_size = os.path.getsize(binary)
    shutil.rmtree(out)

    stop_timeout = readme_stop_timeout()
    check(stop_timeout >= drain_seconds() + 5,
          "README's --stop-timeout %d < drain_seconds %d + 5 s for the pools' answers" % (stop_timeout, drain_seconds()))
    names = ["hg-default", "hg-moved"]
    try:
        # The default config: Stratum 3333 and admin 9100, published on loopback only.
        ps, pa = free_port(), free_port()
        run_container(pm, "hg-default", stop_timeout, [(ps, 3333), (pa, 9100)])
        status, body = wait_for(lambda: http_get(pa, "/healthz"), "/healthz on the published admin port")
        check(status == 200 and body.strip() == "ok", "/healthz: %d %r" % (status, body))
        bound = pm.run("port", "hg-default").stdout.split()
        check(sorted(b for b in bound if ":" in b) == sorted(["127.0.0.1:%d" % ps, "127.0.0.1:%d" % pa]),
              "published ports: %r" % bound)
        top = pm.run("top", "hg-default", "user", "args").stdout.splitlines()[1:]
        users = {l.split(None, 1)[1].strip(): l.split()[0] for l in top if l.strip()}
        gw_users = [u for a, u in users.items() if "/usr/local/bin/hashgate" in a and "tini" not in a]
        check(gw_users == ["10001"], "the gateway's user: %r" % users)
        r = pm.run("healthcheck", "run", "hg-default", check_rc=False)
        check(r.returncode == 0, "the image's HEALTHCHECK failed: %s %s" % (r.stdout, r.stderr))

        # The admin server moved: the HEALTHCHECK follows it, the old fixed probe would not.
        pm2 = free_port()
        run_container(pm, "hg-moved", stop_timeout, [(pm2, 9200)], env=["HASHGATE_ADMIN_BIND=0.0.0.0:9200"])
        wait_for(lambda: http_get(pm2, "/healthz")[0] == 200, "/healthz on the moved admin port")
        r = pm.run("healthcheck", "run", "hg-moved", check_rc=False)
        check(r.returncode == 0, "HEALTHCHECK with the admin on :9200 failed: %s %s" % (r.stdout, r.stderr))
        old = pm.run("exec", "hg-moved", "/usr/local/bin/hashgate", "--healthcheck", "127.0.0.1:9100", check_rc=False)
        check(old.returncode == 1, "a probe of the unused :9100 answered: %d" % old.returncode)
        pm.run("rm", "-f", "hg-moved")

        # Stop with a connected miner that does not leave: the whole drain,
        # then exit 0 (not 137) within the README's stop timeout.
        miner = Miner(ps)
        t_stop = time.monotonic()
        r = pm.run("stop", "hg-default", timeout=stop_timeout + 60)
        stop_s = time.monotonic() - t_stop
        reconnect = miner.read_until(lambda m: m.get("method") == "client.reconnect")
        check(reconnect is not None, "the miner got no client.reconnect before the close: %r" % miner.lines[-3:])
        check(miner.read_until(lambda m: False) is None, "the miner's connection stayed open after the stop")
        state = json.loads(pm.run("inspect", "hg-default").stdout)[0]["State"]
        r = pm.run("logs", "hg-default")
        logs = r.stdout + r.stderr  # the default config logs text lines: "TIME LEVEL EVENT key=value..."
        check(state["ExitCode"] == 0, "exit code after podman stop: %d (137: killed before the drain ended)\n%s" %
              (state["ExitCode"], logs[-2000:]))
        events = {l.split()[2]: l for l in logs.splitlines() if len(l.split()) > 2}
        for e in ("drain_started", "drain_finished"):
            check(e in events, "no %s in the container's log:\n%s" % (e, logs[-2000:]))
        check(re.search(r"\bminers_left=1\b", events["drain_finished"]), "drain_finished: %s" % events["drain_finished"])
    finally:
        for n in names:
            pm.run("rm", "-f", n, check_rc=False)
    store = subprocess.run(["du", "-sm", os.path.join(cache, "podman", "storage")], capture_output=True,
                           text=True).stdout.split()[0]
    print("image %s: %s; %.1f MB (binary %.1f MB, stripped); runs as 10001; HEALTHCHECK ok on :9100 and on a "
          "moved admin; stop with a connected miner drained (drain_started..drain_finished, miners_left 1) and "
          "exited 0 in %.1f s (--stop-timeout %d); podman storage %s MB; total %.0f s" %
          (IMAGE, version, size / 1e6, binary_size / 1e6, stop_s, stop_timeout, store, time.monotonic() - T0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    try:
        test_image(args)
    except Failure as e:
        print("FAIL: %s" % e)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

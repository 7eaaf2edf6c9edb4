"""A throwaway PostgreSQL server for tests and benchmarks: initdb and pg_ctl
from Debian's `postgresql` package, a data directory in a temporary
directory, listening on 127.0.0.1 only, password (SCRAM) authentication.
PostgreSQL refuses to run as root, so under root the server runs as the
`postgres` user the package creates (its directory handed to that user)."""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile


def pg_bindir():
    """The newest /usr/lib/postgresql/N/bin that has initdb, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class PgCluster:
    """initdb + pg_ctl start; `url` is a libpq URI for database `ledger`."""

    def __init__(self, password, user="hashgate", database="ledger"):
        self.bindir = pg_bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL is not installed (scripts/deps.sh --test installs postgresql)")
        self.user, self.password, self.database = user, password, database
        self.dir = tempfile.mkdtemp(prefix="hashgate-pg-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = _free_port()
        self.run_as = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.run_as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        pwfile = os.path.join(self.dir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(password + "\n")
        if self.run_as:
            os.chown(pwfile, self.run_as["user"], self.run_as["group"])
        self._server([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", user, "--auth=scram-sha-256",
                      "--pwfile=" + pwfile, "-E", "UTF8", "--no-sync"])
        os.unlink(pwfile)
        self.start()
        self.client(["createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", user, database])
        self.url = "postgresql://%s:%s@127.0.0.1:%d/%s" % (user, password, self.port, database)

    def _server(self, argv, timeout=60):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=self.dir, **self.run_as)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s%s" % (os.path.basename(argv[0]), r.stdout[-800:], r.stderr[-800:]))
        return r

    def client(self, argv, timeout=30):
        env = dict(os.environ, PGPASSWORD=self.password, PGCONNECT_TIMEOUT="10")
        argv = [os.path.join(self.bindir, argv[0])] + argv[1:]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (os.path.basename(argv[0]), r.stderr[-800:]))
        return r.stdout

    def start(self):
        # Unix socket in our own directory (not /var/run/postgresql); TCP on
        # loopback only; fsync off: a test server, thrown away afterwards.
        self._server([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-t", "60",
                      "-o", "-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off" % (self.port, self.dir),
                      "start"])

    def stop(self):
        self._server([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"])

    def query(self, sql):
        """Rows of `sql` as lists of strings (psql, unaligned, tab-separated)."""
        out = self.client(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", self.database,
                           "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        return [line.split("\t") for line in out.splitlines() if line]

    def destroy(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - already stopped, or never started
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

"""A private MariaDB server for end-to-end tests.

One server per pytest session (see shared_server()): its own datadir made by
mariadb-install-db, its own UNIX socket and a loopback TCP port, all under one temporary
directory that is removed when the server stops. Runs as root (--user=root) or as the
invoking user. The server is stopped at interpreter exit even when tests fail, and it
dies with the test process (PR_SET_PDEATHSIG) if pytest itself is killed.

Usage from a test module:

    from mariadb import shared_server

    @pytest.fixture(scope="session")
    def mariadb():
        return shared_server()

    def test_x(mariadb):
        mariadb.create_database("mail", "CREATE TABLE t (k VARCHAR(64));")
        mariadb.sql("INSERT INTO t VALUES ('a')", db="mail")
        ... mariadb.socket, mariadb.port, mariadb.user, mariadb.password ...

Nothing here reads /etc/mysql: every client and server call passes --no-defaults.
"""
import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from mailsystem import free_port

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"

# The account the tests' .cf files log in with; created for 'localhost' (socket) and
# '127.0.0.1' (TCP) so both kinds of hosts entries work.
TEST_USER = "postern"
TEST_PASSWORD = "p0stern-test"


class MariaDBError(RuntimeError):
    pass


def _die_with_parent():
    """preexec_fn: the server gets SIGTERM when the test process goes away."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class MariaDB:
    """A private mariadbd. start() creates the datadir on first use; stop() and start()
    again keep the data, socket path and port (restart tests rely on that)."""

    def __init__(self, base_dir=None):
        self.base = Path(base_dir or tempfile.mkdtemp(prefix="postern-mariadb-"))
        self.datadir = self.base / "data"
        self.socket = str(self.base / "mysqld.sock")
        self.pidfile = self.base / "mysqld.pid"
        self.errlog = self.base / "mysqld.err"
        self.port = free_port()
        self.user = TEST_USER
        self.password = TEST_PASSWORD
        self.proc = None
        self._installed = False

    # ---- lifecycle -------------------------------------------------------------------

    def _user_args(self):
        return ["--user=root"] if os.geteuid() == 0 else []

    def _install(self):
        self.datadir.mkdir(parents=True, exist_ok=True)
        argv = [INSTALL_DB, "--no-defaults", f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal", "--skip-test-db",
                "--skip-name-resolve", *self._user_args()]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise MariaDBError(f"mariadb-install-db failed ({r.returncode}):\n"
                               f"{r.stdout}\n{r.stderr}")
        self._installed = True

    def start(self, timeout=60):
        if self.running():
            return self
        if not self._installed:
            self._install()
        argv = [MARIADBD, "--no-defaults", f"--datadir={self.datadir}",
                f"--socket={self.socket}", f"--port={self.port}",
                "--bind-address=127.0.0.1", f"--pid-file={self.pidfile}",
                f"--log-error={self.errlog}", "--skip-log-bin", "--skip-name-resolve",
                "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
                "--performance-schema=OFF",
                f"--tmpdir={self.base}", *self._user_args()]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise MariaDBError(f"mariadbd exited with {self.proc.returncode}:\n"
                                   f"{self.log_tail()}")
            if self._ping():
                break
            time.sleep(0.05)
        else:
            self.stop()
            raise MariaDBError(f"mariadbd did not answer within {timeout}s:\n{self.log_tail()}")
        self._ensure_test_user()
        return self

    def stop(self, timeout=30):
        """Stops the server (SIGTERM, then SIGKILL); data stays for a later start()."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self):
        """Stops the server abruptly, as a crash would (SIGKILL)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def destroy(self):
        """Stops the server and removes its directory."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines=30):
        try:
            return "\n".join(self.errlog.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no error log)"

    # ---- SQL -------------------------------------------------------------------------

    def _client(self, sql, db=None, user="root", password=None, timeout=60):
        argv = [CLIENT, "--no-defaults", f"--socket={self.socket}", f"--user={user}",
                "--batch", "--skip-column-names", "--raw"]
        if password is not None:
            argv.append(f"--password={password}")
        if db:
            argv.append(f"--database={db}")
        return subprocess.run(argv, input=sql, capture_output=True, text=True,
                              timeout=timeout)

    def _ping(self):
        if not os.path.exists(self.socket):
            return False
        return self._client("SELECT 1", timeout=10).returncode == 0

    def sql(self, statements, db=None):
        """Runs SQL as the server's root; returns the rows as lists of strings."""
        r = self._client(statements, db=db)
        if r.returncode != 0:
            raise MariaDBError(f"SQL failed: {r.stderr.strip()}\n--- SQL:\n{statements}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def _ensure_test_user(self):
        pw = self.password.replace("'", "''")
        self.sql("".join(
            f"CREATE USER IF NOT EXISTS '{self.user}'@'{host}' IDENTIFIED BY '{pw}';"
            for host in ("localhost", "127.0.0.1")))

    def create_database(self, name, schema_sql="", grant=True):
        """(Re)creates database `name`, runs `schema_sql` in it and grants the test
        user read access (SELECT and EXECUTE, as a mail server's account would have)."""
        self.sql(f"DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}` "
                 "CHARACTER SET utf8mb4;")
        if schema_sql:
            self.sql(schema_sql, db=name)
        if grant:
            self.sql("".join(
                f"GRANT SELECT, EXECUTE ON `{name}`.* TO '{self.user}'@'{host}';"
                for host in ("localhost", "127.0.0.1")))

    def general_log(self, on):
        """Turns the server's query log on or off (tests use it to see what SQL ran)."""
        logfile = self.base / "general.log"
        if on:
            self.sql(f"SET GLOBAL general_log_file='{logfile}'; SET GLOBAL log_output='FILE';"
                     " SET GLOBAL general_log=1;")
        else:
            self.sql("SET GLOBAL general_log=0;")
        return logfile

    def cf_text(self, dbname, hosts=None, **params):
        """Text of a mysql_table(5) file for this server; params become name = value."""
        lines = [f"hosts = {hosts or 'unix:' + self.socket}",
                 f"user = {self.user}", f"password = {self.password}",
                 f"dbname = {dbname}"]
        lines += [f"{k} = {v}" for k, v in params.items()]
        return "\n".join(lines) + "\n"


_shared = None


def shared_server():
    """The session's server, started on first use and stopped at exit."""
    global _shared
    if _shared is None:
        server = MariaDB()
        atexit.register(server.destroy)
        server.start()
        _shared = server
    elif not _shared.running():
        _shared.start()
    return _shared

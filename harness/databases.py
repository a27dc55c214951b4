"""Throwaway Redis and MariaDB servers (the OS packages' binaries) on free loopback ports,
each with a password, for the mappers' dbMethod pushes. Stopped and removed afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.support import free_port, port_open, wait_for

REDIS = "/usr/bin/redis-server"
MARIADB = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"


@dataclass
class Server:
    """A database server the test can stop and start again on the same port and data."""

    args: list[str]
    port: int
    what: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(lambda: port_open(self.port), timeout=60, what=self.what)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(60)
            self.process = None


def _owned(path: Path, user: str) -> list[str]:
    """As root, the server runs as its own system user (both refuse or warn as root)."""
    if os.geteuid() != 0:
        return []
    shutil.chown(path, user)
    return [f"--user={user}"]


@contextmanager
def redis_server(password: str) -> Iterator[Server]:
    if not os.path.exists(REDIS):
        raise RuntimeError("redis-server is missing: `make test` installs it")
    with tempfile.TemporaryDirectory(prefix="kedge-redis-") as tmp:
        port = free_port()
        args = [REDIS, "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp,
                "--save", "", "--appendonly", "no", "--requirepass", password]  # fmt: skip
        server = Server(args, port, "Redis")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def mariadb_server(database: str, user: str, password: str) -> Iterator[Server]:
    """A server with `database` and `user` (who may use only that database) created."""
    if not os.path.exists(MARIADB):
        raise RuntimeError("mariadb-server is missing: `make test` installs it")
    with tempfile.TemporaryDirectory(prefix="kedge-mariadb-") as tmp:
        root, port = Path(tmp), free_port()
        data, sock = root / "data", root / "mysqld.sock"
        data.mkdir()
        as_user = _owned(root, "mysql") and _owned(data, "mysql")
        subprocess.run(
            [INSTALL_DB, "--no-defaults", f"--datadir={data}", *as_user,
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip
        args = [MARIADB, "--no-defaults", f"--datadir={data}", f"--socket={sock}",
                f"--port={port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
                f"--pid-file={root / 'mysqld.pid'}", "--innodb-flush-log-at-trx-commit=0",
                *as_user]  # fmt: skip
        server = Server(args, port, "MariaDB")
        server.start()
        try:
            _create(sock, database, user, password)
            yield server
        finally:
            server.stop()


def _create(sock: Path, database: str, user: str, password: str) -> None:
    import pymysql

    admin = pymysql.connect(unix_socket=str(sock), user="root", autocommit=True)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}`")
            cursor.execute("CREATE USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
            cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@'127.0.0.1'", (user,))
    finally:
        admin.close()

"""A throwaway PostgreSQL server (the OS package's binaries) on a free loopback port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.support import free_port, port_open, wait_for


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is missing: `make test` installs it")
    return Path(found[-1]).parent


@contextmanager
def postgres() -> Iterator[str]:
    """Yields a SQLAlchemy URL; the server and its data are gone afterwards. The data lives
    outside pytest's private temporary tree, which the postgres user could not enter."""
    with tempfile.TemporaryDirectory(prefix="kedge-pg-") as tmp:
        yield from _serve(Path(tmp))


def _serve(workdir: Path) -> Iterator[str]:
    bin_dir, port = _binaries(), free_port()
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    user = "postgres" if as_user else os.environ.get("USER", "postgres")
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [*as_user, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port),
         "-k", str(workdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: port_open(port), timeout=30, what="PostgreSQL")
        yield f"postgresql+psycopg://{user}@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(30)

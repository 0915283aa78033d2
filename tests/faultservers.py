"""Servers a fault test may break without disturbing anyone else.

- `PrivatePostgres`: a throwaway PostgreSQL cluster, started with the same
  initdb/pg_ctl flags as scripts/services.sh but on its own port, so a test
  may restart it (and require passwords) while other tests use the shared one.
- `TcpProxy`: forwards a local port to a real server (the moto S3 server);
  `down()` refuses new connections and cuts the open ones until `up()`, which
  is what a restarting server looks like to a client, without losing its data.
- `BlackHole`: a port whose connections are never answered: a hung server.
"""

from __future__ import annotations

import atexit
import glob
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from pathlib import Path


def free_port() -> int:
    """A free TCP port on 127.0.0.1 below the ephemeral range.

    Below it, no outgoing connection can take the port as its own while a
    server (or the proxy during an outage) is down, so it can be bound again.
    """
    with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as fh:
        first_ephemeral = int(fh.read().split()[0])
    for port in random.sample(range(20_000, first_ephemeral), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql (scripts/services.sh installs them)")
    return Path(found[-1]).parent


class PrivatePostgres:
    """A PostgreSQL cluster of one test module: TCP on 127.0.0.1:port, admin through its Unix socket.

    With a password, TCP logins need it (scram-sha-256) and the socket stays
    `trust` for the test's own administration; without one, all is trust.
    """

    def __init__(self, password: str | None = None):
        self.password = password
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="sparkify-faults-pg-", dir="/tmp"))
        self.bin = _pg_bin()
        self.log = self.root / "log"

    def _as_postgres(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    def _ctl(self, *args: str) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-t", "60", *args)

    def start(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        if not (self.root / "data" / "PG_VERSION").exists():
            auth = ["--auth-local=trust", "--auth-host=trust"]
            if self.password:
                pwfile = self.root / "pwfile"
                pwfile.write_text(self.password + "\n")
                if os.geteuid() == 0:
                    shutil.chown(pwfile, "postgres", "postgres")
                auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
            self._as_postgres(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-U", "postgres", *auth,
                              "-E", "UTF8", "--locale=C.UTF-8", "-N")
        self._ctl("-l", str(self.log), "-o", self._options(), "start")
        atexit.register(self.stop)  # an interrupted test session must not leave the server running
        return self

    def _options(self) -> str:
        return (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.root} "
                "-c fsync=off -c max_connections=100")

    def restart(self) -> None:
        """A fast restart: every session is cut, the server is back when this returns."""
        self._ctl("-l", str(self.log), "-o", self._options(), "-m", "fast", "restart")

    def stop(self) -> None:
        if not self.root.exists():
            return
        try:
            self._ctl("-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{dbname}"

    def admin(self):
        """An autocommit superuser connection through the Unix socket (no password needed)."""
        import psycopg

        return psycopg.connect(host=str(self.root), port=self.port, user="postgres", dbname="postgres",
                               autocommit=True)

    def create_database(self, name: str) -> str:
        from psycopg import sql

        with self.admin() as con:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name


class TcpProxy:
    """127.0.0.1:port -> upstream, byte for byte, with a switch that makes the server vanish."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.cut = 0
        """Connections cut by `down()` so far."""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        """Refuse new connections and reset every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; a bare close() keeps it listening
            listener.close()
        with self._lock:
            doomed, self._open = self._open, set()
        self._reset(*doomed)

    def _reset(self, *socks: socket.socket) -> None:
        """Close with a TCP reset, as a crashing server's kernel would."""
        for sock in socks:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                self.cut += 1
            except OSError:
                pass

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by down()
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # went down meanwhile
                    self._reset(client, server)
                    continue
                self._open |= {client, server}
            done = threading.Barrier(2, action=lambda c=client, s=server: self._forget(c, s))
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, done), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, done: threading.Barrier) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        try:
            done.wait()
        except threading.BrokenBarrierError:
            pass

    def _forget(self, *socks: socket.socket) -> None:
        """Both directions ended: close the pair (unless down() already did)."""
        with self._lock:
            mine = [s for s in socks if s in self._open]
            self._open -= set(mine)
        for sock in mine:
            sock.close()

    def __enter__(self) -> TcpProxy:
        self.up()
        return self

    def __exit__(self, *exc) -> None:
        self.down()


class BlackHole:
    """A listening port that never accepts: connects may complete, but no byte ever comes back."""

    def __enter__(self) -> BlackHole:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(1024)
        self.port = self._sock.getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()

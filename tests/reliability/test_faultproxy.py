"""The fault-injection proxy itself, against the real server: each mode does what it says.

The byte-level checks speak the one exchange of the protocol that needs no
authentication: an SSLRequest (8 bytes) answered by one byte, ``S`` or
``N``. The rest goes through blocking psycopg3 connections.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import psycopg3
import psycopg3_sync
from faultproxy import FaultProxy
from fix_wait import wait_until
from psycopg3.conninfo import conninfo_to_dict

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def ssl_probe(proxy: FaultProxy, timeout: float = 5.0) -> socket.socket:
    """Connect a raw socket through the proxy and send an SSLRequest."""
    sock = socket.create_connection((proxy.host, proxy.port), timeout=timeout)
    sock.sendall(SSL_REQUEST)
    return sock


@pytest.fixture
def conn(proxy_dsn: str) -> Iterator[psycopg3_sync.Connection]:
    with psycopg3_sync.connect(proxy_dsn, autocommit=True, sslmode="disable") as connection:
        yield connection


def test_dsn_rewrites_host_and_port(proxy: FaultProxy, dsn: str) -> None:
    original = conninfo_to_dict(dsn + " hostaddr=127.0.0.1 application_name=kept")
    rewritten = conninfo_to_dict(proxy.dsn(dsn + " hostaddr=127.0.0.1 application_name=kept"))
    assert rewritten["host"] == "127.0.0.1"
    assert rewritten["port"] == str(proxy.port) != original["port"]
    assert "hostaddr" not in rewritten
    assert rewritten["application_name"] == "kept"
    assert rewritten["user"] == original["user"]


def test_listens_on_loopback_only(proxy: FaultProxy) -> None:
    assert proxy.host == "127.0.0.1"
    assert proxy._listener is not None
    assert proxy._listener.getsockname() == ("127.0.0.1", proxy.port)


def test_forward_relays_and_counts(proxy: FaultProxy, proxy_dsn: str) -> None:
    assert (proxy.connections, proxy.bytes_to_client, proxy.bytes_to_server) == (0, 0, 0)
    with psycopg3_sync.connect(proxy_dsn) as conn:
        before = proxy.bytes_to_client
        row = conn.execute("select repeat('x', 200000)").fetchone()
        assert row is not None and row[0] == "x" * 200000
        assert proxy.bytes_to_client - before > 200000
        assert proxy.bytes_to_server > 0
        assert proxy.connections == 1
    with psycopg3_sync.connect(proxy_dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert proxy.connections == 2


def test_freeze_stops_a_live_stream(
    proxy: FaultProxy, conn: psycopg3_sync.Connection, admin: psycopg3_sync.Connection
) -> None:
    # A result the server produces over about two seconds, flushed every 8 kB.
    result: list[Any] = []
    query = "select g, repeat('x', 1000), pg_sleep(0.005) from generate_series(1, 400) g"
    pid = conn.pgconn.backend_pid
    start = proxy.bytes_to_client
    worker = threading.Thread(target=lambda: result.append(conn.execute(query).fetchall()))
    worker.start()
    try:
        wait_until(lambda: proxy.bytes_to_client - start > 50_000, "50 kB of the result")
        proxy.freeze()
        frozen_at = proxy.bytes_to_client

        def server_done() -> bool:
            # Finished, or blocked writing to the frozen proxy: it sent all it could.
            row = admin.execute(
                "select state = 'idle' or wait_event = 'ClientWrite'"
                " from pg_stat_activity where pid = %s",
                (pid,),
            ).fetchone()
            return row == (True,)

        wait_until(server_done, "the server to send all it could")
        assert proxy.bytes_to_client == frozen_at
        assert worker.is_alive()
        assert not result
    finally:
        proxy.forward()
        worker.join(10)
    assert len(result[0]) == 400
    assert [row[0] for row in result[0]] == list(range(1, 401))


def test_freeze_relays_nothing_either_way(proxy: FaultProxy) -> None:
    sock = socket.create_connection((proxy.host, proxy.port), timeout=5)
    with sock:
        wait_until(lambda: proxy.connections == 1, "the proxy to accept")
        proxy.freeze()
        sock.sendall(SSL_REQUEST)
        # The request waits, unread, in the frozen proxy's socket.
        wait_until(lambda: proxy.unread_from_clients == 8, "the request in the proxy's socket")
        # Time is the subject: nothing comes back during half a second.
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        assert proxy.bytes_to_server == 0
        proxy.forward()
        sock.settimeout(5)
        assert sock.recv(1) in (b"S", b"N")
        assert proxy.bytes_to_server == 8
        assert proxy.unread_from_clients == 0


def test_close_sends_fin_and_refuses(proxy: FaultProxy, conn: psycopg3_sync.Connection) -> None:
    probe = ssl_probe(proxy)
    with probe:
        assert probe.recv(1) in (b"S", b"N")
        proxy.close()
        assert probe.recv(1) == b""  # FIN, not a reset
    with pytest.raises(psycopg3.OperationalError):
        conn.execute("select 1")
    assert conn.closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=5)
    # forward() listens again on the same port.
    proxy.forward()
    with ssl_probe(proxy) as again:
        assert again.recv(1) in (b"S", b"N")


def test_reset_sends_rst_and_refuses(proxy: FaultProxy) -> None:
    probe = ssl_probe(proxy)
    with probe:
        assert probe.recv(1) in (b"S", b"N")
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            probe.recv(1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((proxy.host, proxy.port), timeout=5)


def test_deaf_connects_hang(proxy: FaultProxy) -> None:
    live = ssl_probe(proxy)
    with live:
        assert live.recv(1) in (b"S", b"N")
        proxy.deaf()
        # Every later connect hangs in the handshake, even several in a row.
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                socket.create_connection((proxy.host, proxy.port), timeout=0.5)
            # A lower bound, that load cannot break: it hung until the timeout.
            assert time.monotonic() - started >= 0.4
        # A connection relayed before goes on being relayed.
        live.sendall(SSL_REQUEST)
    assert proxy.connections == 1
    proxy.forward()
    with ssl_probe(proxy) as again:
        assert again.recv(1) in (b"S", b"N")
    assert proxy.connections == 2


def test_trickle_delays_each_byte(proxy: FaultProxy, proxy_dsn: str) -> None:
    proxy.trickle(1, 0.02)
    started = time.monotonic()
    with ssl_probe(proxy) as probe:
        assert probe.recv(1) in (b"S", b"N")
    # Eight bytes written one at a time, 20 ms apart: time is the subject, and
    # a lower bound that load cannot break.
    assert time.monotonic() - started >= 7 * 0.02
    proxy.trickle(1, 0)
    with psycopg3_sync.connect(proxy_dsn, sslmode="disable") as conn:
        row = conn.execute("select string_agg(g::text, ',') from generate_series(1, 2000) g")
        assert row.fetchone() == (",".join(str(g) for g in range(1, 2001)),)


def test_cut_after_drops_both_sides(proxy: FaultProxy, conn: psycopg3_sync.Connection) -> None:
    proxy.cut_after(b"cut-here")
    assert conn.execute("select 'no cut'").fetchone() == ("no cut",)
    sent = proxy.bytes_to_server
    with pytest.raises(psycopg3.OperationalError):
        conn.execute("select 'cut-here'")
    assert conn.closed
    # The chunk with the pattern reached the server; nothing came back.
    assert proxy.bytes_to_server > sent
    # New connections are cut too, once the pattern passes.
    proxy.cut_after(SSL_REQUEST[4:])
    with ssl_probe(proxy) as probe:
        assert probe.recv(1) == b""


def test_corrupt_flips_one_byte_per_connection(proxy: FaultProxy) -> None:
    proxy.corrupt(0)
    for _ in range(2):
        with ssl_probe(proxy) as probe:
            assert probe.recv(1) in (bytes([ord("S") ^ 0xFF]), bytes([ord("N") ^ 0xFF]))


def test_corrupt_on_a_live_connection_counts_from_now(
    proxy: FaultProxy, conn: psycopg3_sync.Connection
) -> None:
    assert conn.execute("select 1").fetchone() == (1,)
    proxy.corrupt(0)  # the type byte of the next message
    # libpq reports the lost synchronisation; which exception class the driver
    # makes of it is the business of test_network_faults (L10).
    with pytest.raises(psycopg3.DatabaseError, match="unexpected response"):
        conn.execute("select 2")


def test_reset_after_counts_bytes(proxy: FaultProxy, conn: psycopg3_sync.Connection) -> None:
    before = proxy.bytes_to_client
    proxy.reset_after(100_000)
    with pytest.raises(psycopg3.OperationalError):
        conn.execute("select repeat('x', 1000000)")
    assert conn.closed
    assert proxy.bytes_to_client - before == 100_000


def test_stop_closes_everything(dsn: str) -> None:
    params = conninfo_to_dict(dsn)
    baseline = open_fds()
    with FaultProxy("127.0.0.1", int(params["port"])) as proxy:
        port = proxy.port
        probe = ssl_probe(proxy)
        assert probe.recv(1) in (b"S", b"N")
        proxy.deaf()
    assert not proxy._thread.is_alive()
    assert probe.recv(1) == b""
    probe.close()
    assert open_fds() == baseline
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    with pytest.raises(RuntimeError):
        proxy.forward()

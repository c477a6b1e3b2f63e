"""Helpers of the LISTEN/NOTIFY tests: sending, and notifying while a query runs.

Plain functions (no fixtures) shared by ``tests/adapters/test_notify*.py``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg3_sync
from fix_wait import wait_until


def send(dsn: str, channel: str, *payloads: str) -> int:
    """NOTIFY from a connection of its own; return its backend pid."""
    with psycopg3_sync.connect(dsn, autocommit=True) as conn:
        for payload in payloads:
            conn.execute("select pg_notify(%s, %s)", (channel, payload))
        return conn.pgconn.backend_pid


#: The advisory lock a listener's query waits for in ``notify_while_busy``.
BUSY_KEY = 1515
#: A query that runs until ``notify_while_busy`` lets it end.
BUSY_QUERY = f"select pg_advisory_xact_lock({BUSY_KEY})"


def notify_while_busy(admin: Any, pid: int, payload: str) -> threading.Thread:
    """Hold backend ``pid`` in ``BUSY_QUERY`` until ``payload`` was sent on "ch".

    ``admin`` takes the lock the query waits for; the thread (started) waits
    for the backend to be stuck on it, notifies, then lets the query end: the
    notification certainly arrives while the query runs.
    """
    admin.execute("select pg_advisory_lock(%s)", (BUSY_KEY,))

    def run() -> None:
        query = "select wait_event_type from pg_stat_activity where pid = %s"
        wait_until(
            lambda: admin.execute(query, (pid,)).fetchone() == ("Lock",),
            f"backend {pid} to wait for the advisory lock",
        )
        admin.execute("select pg_notify('ch', %s)", (payload,))
        admin.execute("select pg_advisory_unlock(%s)", (BUSY_KEY,))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def fd_is_open(fd: int) -> bool:
    """Whether ``fd`` is an open file descriptor of this process."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True

"""``closed`` answers True, never raises, once a lost connection is closed.

Found by the every-yield sweep (``transaction-rollback``, sync, close from
another thread): the block's ROLLBACK fails on the shut-down socket, and
``conn.closed`` then raised ``OperationalError`` instead of answering.
"""

from __future__ import annotations

import pytest

import psycopg3
import psycopg3_sync
from psycopg3.abc import shutdown_socket


class Boom(Exception):
    pass


def test_closed_after_a_failed_block_exit(dsn: str) -> None:
    conn = psycopg3_sync.connect(dsn, autocommit=True)
    with pytest.raises(Boom):
        with conn.transaction():
            conn.execute("select 1")
            shutdown_socket(conn.pgconn.socket)  # what close() from another thread does first
            raise Boom
    conn.close()
    assert conn.closed
    with pytest.raises(psycopg3.Error):
        conn.execute("select 1")

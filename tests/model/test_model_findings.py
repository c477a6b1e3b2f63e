"""Examples pinning what the model-based tests (test_model_connection.py) found."""

from __future__ import annotations

import logging
import threading

import pytest

import psycopg3_sync
from fix_wait import wait_until
from psycopg3 import errors


def test_notifies_beside_another_threads_command_does_not_warn(
    dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Found sharing an autocommit connection between threads: a command of
    # another thread in progress (libpq ACTIVE) was taken for a transaction.
    with (
        psycopg3_sync.connect(dsn, autocommit=True) as conn,
        psycopg3_sync.connect(dsn, autocommit=True) as admin,
    ):
        pid = conn.info.backend_pid
        outcome: list[BaseException] = []

        def sleep() -> None:
            try:
                conn.execute("select pg_sleep(60)")
            except errors.QueryCanceled as ex:
                outcome.append(ex)

        thread = threading.Thread(target=sleep)
        thread.start()
        try:
            query = "select state from pg_stat_activity where pid = %s and query like %s"
            wait_until(
                lambda: admin.execute(query, (pid, "%pg_sleep(60)%")).fetchone() == ("active",),
                "the sleep to start",
            )
            with caplog.at_level(logging.WARNING, logger="psycopg3"):
                # notifies() looks at the transaction status when called.
                iteration = conn.notifies(timeout=0)
        finally:
            conn.cancel()
            thread.join()
        assert len(outcome) == 1
        assert list(iteration) == []
        assert not [r for r in caplog.records if "inside a transaction" in r.message]

"""A large result does not starve other tasks; a cancellation at a checkpoint takes nothing.

Rule 8 of ``psycopg3._block_lock`` (``test_checkpoints.py`` checks that
every coroutine is a checkpoint), in every async flavour:

1. While one task iterates with ``async for`` over 200,000 rows already
   received (or writes them to a COPY), another task counts its turns: it
   must get turns all along, never more than ``CHECKPOINT_ROWS`` rows apart
   (twice that on trio, see ``_check_fair()``). Causality, no clock.
2. A cancellation delivered at one of the checkpoints that do not wait
   takes nothing: no row skipped, no COPY data written, the error leaving a
   block kept, and the connection answers the next query.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from fix_flavours import ASYNC_FLAVOURS
from psycopg3._block_lock import CHECKPOINT_ROWS

pytestmark = pytest.mark.anyio

COPY_OUT = "copy (select generate_series(1, 10)) to stdout"


# -- 1. a large result does not starve the other tasks ---------------------------

ROWS = 200_000


class Turns:
    """Another task's turns, and the longest run of rows taken while it had none."""

    def __init__(self) -> None:
        self.count = 0
        self.stop = False
        self._seen = 0
        self._run = 0
        self.longest_run = 0

    async def take(self) -> None:
        """The other task: one turn per checkpoint of the iterating one."""
        while not self.stop:
            self.count += 1
            await anyio.lowlevel.checkpoint()

    def row(self) -> None:
        """Count a row taken by the iterating task."""
        if self.count == self._seen:
            self._run += 1
            self.longest_run = max(self.longest_run, self._run)
        else:
            self._seen = self.count
            self._run = 1


async def _iterate(rows: AsyncIterator[Any]) -> Turns:
    turns = Turns()
    taken = 0
    async with anyio.create_task_group() as group:
        group.start_soon(turns.take)
        async for _ in rows:
            taken += 1
            turns.row()
        turns.stop = True
    assert taken == ROWS
    return turns


def _check_fair(turns: Turns, flavour: Any) -> None:
    # asyncio runs its ready tasks in turn: the other task runs at each of
    # our checkpoints. trio shuffles each batch of runnable tasks: two of
    # our turns may follow each other.
    longest = CHECKPOINT_ROWS * (2 if flavour.backend == "trio" else 1)
    assert turns.longest_run <= longest, "the other task was starved"
    assert turns.count >= ROWS // CHECKPOINT_ROWS // 2


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_over_received_rows_lets_others_run(aconn: Any, flavour: Any) -> None:
    cur = await aconn.execute("select generate_series(1, %s)", (ROWS,))
    _check_fair(await _iterate(cur), flavour)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_over_a_server_cursor_batch_lets_others_run(
    aconn: Any, flavour: Any
) -> None:
    cur = aconn.cursor("checkpoints_fair")
    cur.itersize = ROWS + 1  # one batch, then the loop over its rows
    await cur.execute("select generate_series(1, %s)", (ROWS,))
    _check_fair(await _iterate(cur), flavour)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_copy_rows_let_others_run(aconn: Any, flavour: Any) -> None:
    # A block of COPY data read at once holds thousands of these short rows,
    # parsed with no wait.
    statement = f"copy (select 1 from generate_series(1, {ROWS})) to stdout"
    async with aconn.cursor().copy(statement) as copy:
        _check_fair(await _iterate(copy.rows()), flavour)


async def _written(copy: Any) -> AsyncIterator[int]:
    for value in range(ROWS):
        await copy.write_row((value,))
        yield value


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_copy_write_row_lets_others_run(aconn: Any, flavour: Any) -> None:
    # Rows gathered in a buffer, sent to a socket that takes them at once.
    await aconn.execute("create temp table checkpoints_fair (x int)")
    async with aconn.cursor().copy("copy checkpoints_fair from stdin") as copy:
        _check_fair(await _iterate(_written(copy)), flavour)


# -- 2. a cancellation at a checkpoint takes nothing ------------------------------


async def _cancelled(call: Callable[[], Awaitable[Any]]) -> None:
    """Run ``call`` in a cancel scope cancelled beforehand: it must stop at its checkpoint."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await call()
    assert scope.cancelled_caught


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_fetch_takes_no_row(aconn: Any) -> None:
    cur = await aconn.execute("select generate_series(1, 5)")
    await _cancelled(cur.fetchone)
    await _cancelled(cur.fetchall)
    await _cancelled(lambda: cur.scroll(3))
    assert await cur.fetchone() == (1,)
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_async_for_cancelled_between_rows_resumes_at_the_next(aconn: Any) -> None:
    cur = await aconn.execute("select generate_series(1, %s)", (3 * CHECKPOINT_ROWS,))
    with anyio.CancelScope() as scope:
        async for (last,) in cur:
            if last == CHECKPOINT_ROWS // 2:
                scope.cancel()  # raised at the next checkpoint, before taking a row
    assert scope.cancelled_caught
    assert await cur.fetchone() == (last + 1,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_cursor_close_closes(aconn: Any) -> None:
    cur = await aconn.execute("select 1")
    await _cancelled(cur.close)
    assert cur.closed
    cur = await aconn.execute("select 2")
    assert await cur.fetchone() == (2,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_copy_read_takes_nothing(aconn: Any) -> None:
    statement = f"copy (select generate_series(1, {3 * CHECKPOINT_ROWS})) to stdout"
    async with aconn.cursor().copy(statement) as copy:
        await _cancelled(copy.read_row)
        assert await copy.read_row() == ("1",)
        # (Not in the middle of rows(): the next yield may be a wait for data,
        # where a cancellation aborts the COPY, see psycopg3._copy's rule 6.)
        await _cancelled(copy.rows().__anext__)
        assert await copy.read_row() == ("2",)
        await _cancelled(copy.read)
        assert await copy.read_row() == ("3",)
        while await copy.read():
            pass
    cur = await aconn.execute("select 3")
    assert await cur.fetchone() == (3,)


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_cancelled_copy_write_writes_nothing(aconn: Any) -> None:
    await aconn.execute("create temp table checkpoints_in (x int)")
    async with aconn.cursor().copy("copy checkpoints_in from stdin") as copy:
        await _cancelled(lambda: copy.write_row((1,)))
        await _cancelled(lambda: copy.write("2\n"))
        await copy.write_row((3,))
    cur = await aconn.execute("select x from checkpoints_in")
    assert await cur.fetchall() == [(3,)]


@pytest.mark.parametrize("flavour", ASYNC_FLAVOURS, indirect=True)
async def test_block_left_by_an_error_keeps_it_when_cancelled(aconn: Any) -> None:
    # Leaving adds no checkpoint: the pending cancellation does not replace the error.
    cur = await aconn.execute("select 1")
    with pytest.raises(ZeroDivisionError):
        with anyio.CancelScope() as scope:
            async with cur:
                scope.cancel()
                1 / 0
    assert cur.closed
    with pytest.raises(ZeroDivisionError):
        with anyio.CancelScope() as scope:
            async with aconn.cursor().copy(COPY_OUT) as copy:
                while await copy.read():
                    pass
                scope.cancel()
                1 / 0
    cur = await aconn.execute("select 1")
    assert await cur.fetchone() == (1,)

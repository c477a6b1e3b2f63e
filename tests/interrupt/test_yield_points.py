"""The every-yield harness itself: it interrupts where it says, and counts only its own."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import pytest

from interrupt.yield_points import Interrupter, counted
from psycopg3.waiting import Ready, Wait


def three_waits(log: list[str]) -> Generator[tuple[int, Wait], Ready, str]:
    for i in range(3):
        try:
            yield (i, Wait.R)
        except GeneratorExit:
            log.append(f"closed at {i}")
            raise
    return "done"


def drive(gen: Generator[Any, Any, Any]) -> Any:
    """A waiter without waiting: every request is answered ready at once."""
    try:
        next(gen)
        while True:
            gen.send(Ready.R)
    except StopIteration as ex:
        return ex.value
    except BaseException:
        gen.close()
        raise


def ctrl_c() -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("at", [0, 1, 2])
def test_interrupts_at_yield_k_with_the_generator_closed_there(at: int) -> None:
    log: list[str] = []
    interrupter = Interrupter("sync", at=at)
    interrupter.arm(ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        drive(counted(three_waits(log), interrupter.on_yield))
    assert interrupter.fired
    assert interrupter.count == at + 1
    assert log == [f"closed at {at}"]


def test_a_command_ending_first_is_not_interrupted() -> None:
    log: list[str] = []
    interrupter = Interrupter("sync", at=3)
    interrupter.arm(ctrl_c)
    assert drive(counted(three_waits(log), interrupter.on_yield)) == "done"
    assert (interrupter.fired, interrupter.count, log) == (False, 3, [])


def test_counts_only_the_armed_thread() -> None:
    interrupter = Interrupter("sync", at=0)
    interrupter.arm(ctrl_c)
    other: list[Any] = []

    def elsewhere() -> None:
        other.append(drive(counted(three_waits([]), interrupter.on_yield)))

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert other == ["done"]
    assert (interrupter.fired, interrupter.count) == (False, 0)

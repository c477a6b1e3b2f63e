"""The effects a pool procedure yields, and the shape of a procedure.

Layer: pool procedures (``psycopg3._pool_procs`` yields them; the pool
drivers ``psycopg3._async_pool`` and ``psycopg3._blocking_pool`` perform
them). A procedure is a generator, like the libpq generators one level up:
it never waits, it yields an effect when it needs something only a
framework can do and is sent the effect's result.

The effects, and what an interpreter sends back:

- ``WaitEvent(event, timeout)``: wait until the event is set (True) or
  ``timeout`` seconds passed (False; None: no limit).
- ``Drive(conn, gen)``: drive the ``PQGen`` with the flavour's waiter,
  holding ``conn``'s lock; its result. The lock is free when this is
  yielded: a blocking interpreter takes it without waiting, or raises
  ``ProgrammingError``.
- ``Connect()``: a new connection of the flavour.
- ``Close(conn)``: the connection's ``close()``; None.
- ``CallBack(fn, arg)``: ``fn(arg)``, awaited by an async interpreter
  unless ``plain``; None.
- ``Spawn(procedure, name)``: start the procedure in the background
  (a task, a thread named ``<pool>-<name>``); None.
- ``Shielded(procedure)``: run the procedure to its end even if the caller
  is cancelled meanwhile, then let the cancellation go on; its result.
- ``StopBackground(timeout)``: stop what ``Spawn`` started (cancel tasks,
  join threads), ``timeout`` seconds at most; None.

An interpreter raising while it performs an effect (a timeout, a
cancellation, Ctrl-C) throws the exception into the procedure at its
``yield``: the procedure cleans up (hands a connection on, closes a
half-opened one) and re-raises. The code between two ``yield`` s touches the
books: an async interpreter runs it between two ``await`` s, a blocking one
under the pool's mutex (never across an effect), so each stretch is atomic.

Must not: import a concurrency framework.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from .waiting import PQGen

__all__ = [
    "PoolEvent",
    "Procedure",
    "Effect",
    "WaitEvent",
    "Drive",
    "Connect",
    "Close",
    "CallBack",
    "Spawn",
    "Shielded",
    "StopBackground",
    "Stepper",
]

T = TypeVar("T")


class PoolEvent(Protocol):
    """What the pool needs of a framework's event: ``set()`` it (waiting is a hook)."""

    def set(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WaitEvent:
    event: PoolEvent
    timeout: float | None


@dataclass(frozen=True, slots=True)
class Drive:
    conn: Any
    gen: PQGen[Any]


@dataclass(frozen=True, slots=True)
class Connect:
    pass


@dataclass(frozen=True, slots=True)
class Close:
    conn: Any


@dataclass(frozen=True, slots=True)
class CallBack:
    fn: Callable[[Any], Any]
    arg: Any
    #: A plain function in every flavour (``reconnect_failed``): never awaited.
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Spawn:
    procedure: Procedure[None]
    name: str


@dataclass(frozen=True, slots=True)
class Shielded:
    procedure: Procedure[Any]


@dataclass(frozen=True, slots=True)
class StopBackground:
    timeout: float


Effect = WaitEvent | Drive | Connect | Close | CallBack | Spawn | Shielded | StopBackground
#: A pool procedure: yields effects, is sent their results, returns a ``T``.
Procedure = Generator[Effect, Any, T]


class Stepper(Generic[T]):
    """A procedure run one effect at a time: what every interpreter does the same.

    ``advance()`` sends the procedure the result of the last effect (or
    throws in the exception that performing it raised) and returns the
    next effect, or None once the procedure returned ``result``. The
    interpreter performs each effect and sets ``value``, or ``error`` if
    performing it raised (see the module's docstring).
    """

    __slots__ = ("procedure", "value", "error", "result")

    def __init__(self, procedure: Procedure[T]):
        self.procedure = procedure
        #: What performing the last effect returned, or raised.
        self.value: Any = None
        self.error: BaseException | None = None
        self.result: T

    def advance(self) -> Effect | None:
        try:
            if self.error is None:
                value, self.value = self.value, None
                return self.procedure.send(value)
            error, self.error = self.error, None
            return self.procedure.throw(error)
        except StopIteration as ex:
            self.result = ex.value
            return None

"""What an adapter gives the core: its framework's primitives, in one object.

An adapter subclasses ``AsyncFramework`` (asyncio, trio, anyio) or
``BlockingFramework`` (threads, gevent) once and hands an instance to its
connection class (``framework = ...``). Everything else — connecting,
waiting with the interruption policy, closing while another task or thread
waits, cancel requests, ending blocks under cancellation — is written once,
in ``AsyncConnectionBase`` or ``BlockingConnectionBase``, on these methods.

Must not: import asyncio, trio, anyio, threading, gevent or any other
framework, nor a selector when imported (``BlockingFramework``'s default
``wait_any_readable`` imports ``select`` when it first waits).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, Protocol, TypeVar

from .generators import wait_readable
from .waiting import PQGen, Ready

__all__ = ["AsyncFramework", "AsyncLock", "AsyncEvent", "BlockingFramework", "PlainLock"]

T = TypeVar("T")


class AsyncLock(Protocol):
    """What we need of a framework's lock (``asyncio.Lock``, ``trio.Lock``...)."""

    async def acquire(self) -> Any: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


class AsyncEvent(Protocol):
    """What we need of a framework's event (``asyncio.Event``, ``trio.Event``...)."""

    async def wait(self) -> Any: ...

    def set(self) -> Any: ...


class AsyncFramework(ABC):
    """The primitives of one async framework, as the core uses them.

    Subclass it once per framework; the methods are called from the
    framework's own tasks, except ``call_in_home()``.
    """

    #: The framework's name, for messages.
    name: str = "an async framework"

    @abstractmethod
    async def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        """The waiter: drive ``gen`` to its end (see "The waiter contract").

        :param timeout: after this many seconds without the fd being ready,
            send the generator ``Ready.NONE``.
        """

    @abstractmethod
    def wake_waiters(self, fileno: int) -> None:
        """Make every wait on ``fileno`` raise at once: the fd is about to close.

        trio and anyio call it ``notify_closing()``. Called from the
        framework's own thread, before the fd closes.
        """

    @abstractmethod
    async def resolve(self, host: str, port: str) -> list[str]:
        """Resolve a host name to numeric addresses without blocking the loop.

        libpq's own lookup would block it: the core resolves host names
        with this first and gives libpq ``hostaddr``.
        """

    @abstractmethod
    async def shield(self, work: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
        """Run ``work()`` to its end though the calling task is cancelled meanwhile.

        A cancellation received meanwhile must not be lost: raise it once
        ``work()`` ended (asyncio), or let the framework deliver it at the
        next checkpoint (trio's cancellation is level-triggered).

        :param timeout: cancel ``work()`` after this many seconds and raise
            the built-in ``TimeoutError``; None: no limit.
        """

    @abstractmethod
    def cancelled_error(self) -> type[BaseException]:
        """The exception class of the framework's cancellation."""

    @abstractmethod
    async def checkpoint(self) -> None:
        """Let other tasks run, and raise a pending cancellation (trio's checkpoint).

        Awaited by the calls of the async API that do not wait otherwise,
        and every ``CHECKPOINT_ROWS`` rows of a large result (see rule 8 of
        ``psycopg3._block_lock``).
        """

    @abstractmethod
    def new_lock(self) -> AsyncLock:
        """A new lock of the framework (not reentrant)."""

    @abstractmethod
    def new_event(self) -> AsyncEvent:
        """A new event of the framework."""

    @abstractmethod
    def current_task(self) -> Hashable:
        """What tells the running task from the others (the task object)."""

    def home(self) -> Hashable | None:
        """The running event loop (or what names it), None outside any.

        A connection belongs to the loop it was made in: from any other,
        its commands raise ``InterfaceError``. The default, None, turns
        that check off.
        """
        return None

    def call_in_home(self, home: Hashable, action: Callable[[], None]) -> bool:
        """Have the loop ``home`` run ``action`` soon; called from another thread.

        :return: False if that loop no longer runs (``action`` is then run
            by the caller: no wait of that loop can be in progress).
        """
        return False


class PlainLock(Protocol):
    """What we need of a blocking framework's lock: ``threading.Lock``'s methods."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...

    def locked(self) -> bool: ...


class BlockingFramework(ABC):
    """The primitives of one blocking framework (threads, gevent, eventlet).

    Subclass it once per framework and set an instance as the ``framework``
    of a ``BlockingConnectionBase`` subclass: the whole blocking API is
    written once there, on these methods.
    """

    #: The framework's name, for messages.
    name: str = "a blocking framework"

    #: Whether ``connect()`` resolves host names with ``resolve()`` first:
    #: libpq's own lookup blocks the calling thread, harmless with real
    #: threads, but it would freeze a whole hub of green threads.
    resolve_names: bool = False

    @abstractmethod
    def wait(self, gen: PQGen[T], *, timeout: float | None = None) -> T:
        """The waiter: drive ``gen`` to its end, blocking the running thread or greenlet.

        :param timeout: after this many seconds without the fd being ready,
            send the generator ``Ready.NONE``.
        """

    @abstractmethod
    def new_lock(self) -> PlainLock:
        """A new lock of the framework, not reentrant (``threading.Lock()``)."""

    @abstractmethod
    def current_task(self) -> Hashable:
        """What tells the running thread (or greenlet) from the others."""

    def resolve(self, host: str, port: str) -> list[str]:
        """Resolve a host name to numeric addresses, blocking only the running greenlet.

        Used when ``resolve_names`` is True.
        """
        raise NotImplementedError(f"{self.name} does not resolve host names")

    def wait_any_readable(self, filenos: Sequence[int], *, timeout: float | None = None) -> bool:
        """Block the running thread (or greenlet) until one of ``filenos`` is readable.

        ``notifies()`` waits with it on the socket and on a wake-up pipe
        that another thread writes to when it queues a notification (see
        ``psycopg3._notify``, rule 10). A hang-up or an error counts as
        readable.

        The default gathers the fds in one ``epoll`` fd, readable when one
        of them is, and waits on it with ``wait()``: right for any
        framework, whose waiter (and interruption) it uses. Where there is
        no ``epoll`` (other systems; gevent's ``monkey.patch_all()``
        removes it) it calls ``select.poll()`` itself: right for threads,
        and for gevent once patched; another framework of green threads
        there overrides this method.

        :param timeout: give up after this many seconds; None: no limit.
        :return: whether one of them is readable (False: the timeout expired).
        """
        # (Imported here, like ``socket`` in ``shutdown_socket``: importing
        # the core imports no selector; only this wait, when made, needs one.)
        import select

        if hasattr(select, "epoll"):
            with select.epoll() as gathered:
                for fileno in filenos:
                    gathered.register(fileno, select.EPOLLIN)
                return self.wait(wait_readable(gathered.fileno()), timeout=timeout) != Ready.NONE
        poller = select.poll()
        for fileno in filenos:
            poller.register(fileno, select.POLLIN)
        # (In whole milliseconds, rounded up: never back before the timeout.)
        return bool(poller.poll(None if timeout is None else math.ceil(timeout * 1000.0)))

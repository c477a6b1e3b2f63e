"""What an adapter author builds on: the base classes and the waiter protocol.

An adapter for a new framework imports from here (and ``psycopg3.waiting``)
and nothing private: see ``docs/adapters.md`` for the contract and a worked
example. Must not: import any concurrency framework.
"""

from __future__ import annotations

from ._async_blocks import AsyncCopy, AsyncPipeline
from ._async_connection import AsyncConnectionBase, AsyncLock, ConnectContext
from ._async_cursor import AsyncCursorBase
from ._async_pool import AsyncPoolBase
from ._block_lock import AsyncConnectionLock, ConnectionLock
from ._blocking_blocks import Copy
from ._blocking_connection import BlockingConnectionBase, BlockingLock, DeferringLock
from ._blocking_cursor import BlockingCursorBase, BlockingServerCursorBase
from ._blocking_pool import BlockingPoolBase
from ._cancel import WorkerStarter, start_os_thread
from ._connection_base import (
    CANCEL_RETRY_INTERVAL,
    CANCEL_TIMEOUT,
    DRAIN_TIMEOUT,
    RECOVER_POLL_INTERVAL,
    BaseConnection,
    shutdown_socket,
)
from ._copy import BaseCopy
from ._cursor_base import BaseCursor, Params, Query, Row
from ._framework import AsyncEvent, AsyncFramework, BlockingFramework, PlainLock
from ._notify import AsyncNotifies, NotifyIteration
from ._pipeline import BasePipeline
from ._pool import PoolPolicy, PoolWaiter
from ._pool_effects import PoolEvent
from ._pool_io import health_gen, is_clean, reset_gen
from ._pool_procs import PoolProcedures
from ._prepare import DEFAULT_PREPARE_THRESHOLD
from ._server_cursor import AsyncServerCursorBase, BaseServerCursor
from .waiting import AsyncWaiter, PQGen, Ready, Wait, Waiter

__all__ = [
    "BaseConnection",
    "BaseCursor",
    "BlockingConnectionBase",
    "BlockingFramework",
    "PlainLock",
    "BlockingCursorBase",
    "BlockingServerCursorBase",
    "BlockingLock",
    "DeferringLock",
    "BlockingPoolBase",
    "PoolProcedures",
    "AsyncConnectionBase",
    "AsyncFramework",
    "AsyncEvent",
    "AsyncCursorBase",
    "AsyncPoolBase",
    "PoolEvent",
    "PoolPolicy",
    "PoolWaiter",
    "health_gen",
    "is_clean",
    "reset_gen",
    "BaseServerCursor",
    "AsyncServerCursorBase",
    "BaseCopy",
    "Copy",
    "AsyncCopy",
    "AsyncLock",
    "ConnectionLock",
    "AsyncConnectionLock",
    "ConnectContext",
    "CANCEL_TIMEOUT",
    "CANCEL_RETRY_INTERVAL",
    "RECOVER_POLL_INTERVAL",
    "DRAIN_TIMEOUT",
    "DEFAULT_PREPARE_THRESHOLD",
    "NotifyIteration",
    "AsyncNotifies",
    "BasePipeline",
    "AsyncPipeline",
    "PQGen",
    "Wait",
    "Ready",
    "Waiter",
    "AsyncWaiter",
    "Params",
    "Query",
    "Row",
    "shutdown_socket",
    "WorkerStarter",
    "start_os_thread",
]

"""psycopg3: the framework-free core of a PostgreSQL adapter built on libpq.

This package connects to nothing by itself: install an adapter
(``psycopg3_sync``, ``psycopg3_asyncio``, ``psycopg3_trio``) to drive it. It
holds what every flavour shares: errors, adaptation, the libpq binding.
Layer: the top of the core (the facade): importing it registers the built-in
adapters on ``psycopg3.adapters`` (``_adapt.defaults``); its modules import
downward only (``tests/core/test_layers.py``, "The layers" in
``docs/adapters.md``).

Must not: import a concurrency framework, ``select`` or ``selectors`` (a test
checks ``sys.modules`` after importing it).
"""

from __future__ import annotations

from . import errors, pq
from ._adapt import defaults as _defaults  # noqa: F401 - fills psycopg3.adapters, once
from ._async_blocks import AsyncCopy, AsyncPipeline, AsyncTransaction
from ._blocking_blocks import Copy, Pipeline, Transaction
from ._column import Column
from ._conn_info import ConnectionInfo
from ._dbapi_errors import *  # noqa: F403 - the DB-API exceptions (psycopg3.errors.Error...)
from ._dbapi_errors import __all__ as __all__  # the exports start with their names
from ._notify import Notify
from ._tpc import Xid
from ._transaction import IsolationLevel, Rollback
from ._version import __version__
from .adapt import adapters

__all__ += (
    "__version__",
    "errors",
    "pq",
    "adapters",
    "Column",
    "ConnectionInfo",
    "Copy",
    "AsyncCopy",
    "Notify",
    "IsolationLevel",
    "Rollback",
    "Transaction",
    "AsyncTransaction",
    "Pipeline",
    "AsyncPipeline",
    "Xid",
)

"""The blocking ``Connection`` and ``connect()``: the core's blocking base on threads.

The API and its logic are ``psycopg3.abc.BlockingConnectionBase``'s; this
module gives it threads' primitives (``THREADS``: ``wait_select``,
``threading.Lock``, the thread identity) and the types of this package's
classes. Layer: adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from psycopg3.abc import DEFAULT_PREPARE_THRESHOLD, BlockingConnectionBase
from psycopg3.rows import ConnectionRow, RowFactory

from .cursor import Cursor, ServerCursor
from .waiting import THREADS

if TYPE_CHECKING:
    from psycopg3.abc import Params, Query

__all__ = ["Connection", "connect"]

R = TypeVar("R")


class Connection(BlockingConnectionBase, Generic[ConnectionRow]):
    """A connection to a PostgreSQL server, for blocking code.

    Safe to share between threads: its operations are serialised by a lock,
    and a ``transaction()`` or ``pipeline()`` block owns it for the thread
    that entered it until the block ends (other threads wait meanwhile).
    Use as a context manager to commit on success (roll back on error) and
    close at the end of the block. Generic in the type of its cursors' rows,
    which ``connect(..., row_factory=...)`` decides.
    """

    framework = THREADS
    cursor_class = Cursor
    server_cursor_class = ServerCursor

    if TYPE_CHECKING:  # typing only: the base's methods run

        @overload
        def cursor(
            self, *, binary: bool = False, row_factory: None = None
        ) -> Cursor[ConnectionRow]: ...

        @overload
        def cursor(self, *, binary: bool = False, row_factory: RowFactory[R]) -> Cursor[R]: ...

        @overload
        def cursor(
            self,
            name: str,
            *,
            binary: bool = False,
            row_factory: None = None,
            scrollable: bool | None = None,
            withhold: bool = False,
        ) -> ServerCursor[ConnectionRow]: ...

        @overload
        def cursor(
            self,
            name: str,
            *,
            binary: bool = False,
            row_factory: RowFactory[R],
            scrollable: bool | None = None,
            withhold: bool = False,
        ) -> ServerCursor[R]: ...

        def cursor(self, *args: Any, **kwargs: Any) -> Any: ...

        # (The base's connect() returns the connection's own type: these
        # overloads refine its row type, which the base cannot express.)
        @overload  # type: ignore[override]
        @classmethod
        def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: RowFactory[R],
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> Connection[R]: ...

        @overload
        @classmethod
        def connect(
            cls,
            conninfo: str = "",
            *,
            autocommit: bool = False,
            row_factory: None = None,
            prepare_threshold: int | None = DEFAULT_PREPARE_THRESHOLD,
            **kwargs: Any,
        ) -> Connection: ...

        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any: ...

        def execute(
            self,
            query: Query,
            params: Params | None = None,
            *,
            binary: bool = False,
            prepare: bool | None = None,
        ) -> Cursor[ConnectionRow]: ...


connect = Connection.connect

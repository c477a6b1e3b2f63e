"""Two-phase commit: transaction ids (``Xid``) and the ``tpc_*`` generators.

Must not: wait, sleep, or import a concurrency framework.

The life of a two-phase transaction on a connection:

1. ``tpc_begin(xid)`` opens a transaction (outside any, not in autocommit)
   and remembers ``xid``; ``commit()``, ``rollback()`` and ``transaction()``
   are refused until it ends.
2. ``tpc_prepare()`` sends ``PREPARE TRANSACTION``: the work survives the
   connection, the server keeps it under the transaction id.
3. ``tpc_commit()`` / ``tpc_rollback()`` end it: ``COMMIT PREPARED`` /
   ``ROLLBACK PREPARED`` if it was prepared, else a one-phase COMMIT /
   ROLLBACK. Given an ``xid`` (outside any transaction), they end a prepared
   transaction left by another session: ``tpc_recover()`` lists them.

Transaction ids follow the XA model (format id, global transaction id,
branch qualifier). On the server they are strings: ``<format_id>_<gtrid in
base64>_<bqual in base64>``; any other string is a valid id too, read back
with ``format_id`` None.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode, b64encode
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from . import errors
from ._arguments import wrong_argument
from .pq import ExecStatus, PGconn, PGresult, TransactionStatus
from .waiting import PQGen

if TYPE_CHECKING:
    from ._transaction import BaseTransaction

__all__ = ["Xid", "TwoPhaseCommit"]

_XA_ID = re.compile(r"(\d+)_([A-Za-z0-9+/=]*)_([A-Za-z0-9+/=]*)")
_MAX_PART_LENGTH = 64
_MAX_FORMAT_ID = 2**31 - 1
_RECOVER_QUERY = (
    b"SELECT gid, extract(epoch FROM prepared)::float8, owner, database"
    b" FROM pg_catalog.pg_prepared_xacts ORDER BY prepared"
)


class Xid(tuple[int | None, str, str | None]):
    """A two-phase commit transaction id: ``(format_id, gtrid, bqual)``.

    A sequence of those three items, as PEP 249 asks (``format_id, gtrid,
    bqual = xid``); ``tpc_recover()`` fills in the attributes ``prepared``,
    ``owner`` and ``database``, which take no part in equality. Build one
    with ``conn.xid()``. ``str(xid)`` is the transaction id the server sees.
    """

    #: When the transaction was prepared (from ``tpc_recover()``).
    prepared: datetime | None
    #: The user who prepared it (from ``tpc_recover()``).
    owner: str | None
    #: The database it was prepared in (from ``tpc_recover()``).
    database: str | None

    def __new__(
        cls,
        format_id: int | None,
        gtrid: str,
        bqual: str | None,
        prepared: datetime | None = None,
        owner: str | None = None,
        database: str | None = None,
    ) -> Xid:
        self = super().__new__(cls, (format_id, gtrid, bqual))
        self.prepared = prepared
        self.owner = owner
        self.database = database
        return self

    def __getnewargs__(self) -> tuple[object, ...]:
        return (*self, self.prepared, self.owner, self.database)

    @property
    def format_id(self) -> int | None:
        """The XA format id (0 to 2**31 - 1), or None for an id that is not XA."""
        return self[0]

    @property
    def gtrid(self) -> str:
        """The global transaction id (at most 64 characters for an XA id)."""
        return self[1]

    @property
    def bqual(self) -> str | None:
        """The branch qualifier (at most 64 characters), None for a non-XA id."""
        return self[2]

    def __repr__(self) -> str:
        return (
            f"Xid(format_id={self.format_id!r}, gtrid={self.gtrid!r}, bqual={self.bqual!r},"
            f" prepared={self.prepared!r}, owner={self.owner!r}, database={self.database!r})"
        )

    def __str__(self) -> str:
        if self.format_id is None:
            return self.gtrid
        gtrid = b64encode(self.gtrid.encode("utf-8")).decode("ascii")
        bqual = b64encode((self.bqual or "").encode("utf-8")).decode("ascii")
        return f"{self.format_id}_{gtrid}_{bqual}"

    @classmethod
    def from_parts(cls, format_id: int | None, gtrid: str, bqual: str | None) -> Xid:
        """Build a checked id: XA when ``format_id`` is an int, else a plain string id.

        :raises ProgrammingError: if a part is out of range or of the wrong type.
        """
        if not isinstance(gtrid, str):
            raise errors.ProgrammingError(f"gtrid must be a str, got {type(gtrid).__name__}")
        if format_id is None:
            if bqual is not None:
                raise errors.ProgrammingError("bqual must be None when format_id is None")
            return cls(None, gtrid, None)
        if not isinstance(format_id, int) or not 0 <= format_id <= _MAX_FORMAT_ID:
            raise errors.ProgrammingError(
                f"format_id must be an int between 0 and {_MAX_FORMAT_ID}, got {format_id!r}"
            )
        if not isinstance(bqual, str):
            raise errors.ProgrammingError("bqual must be a str when format_id is given")
        for name, part in (("gtrid", gtrid), ("bqual", bqual)):
            if len(part.encode("utf-8")) > _MAX_PART_LENGTH:
                raise errors.ProgrammingError(
                    f"{name} must be at most {_MAX_PART_LENGTH} bytes long, got {part!r}"
                )
        return cls(format_id, gtrid, bqual)

    @classmethod
    def from_string(cls, text: str) -> Xid:
        """Parse a transaction id as the server shows it; a non-XA string gives format_id None."""
        match = _XA_ID.fullmatch(text)
        if match is not None:
            try:
                gtrid = b64decode(match.group(2), validate=True).decode("utf-8")
                bqual = b64decode(match.group(3), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                pass
            else:
                format_id = int(match.group(1))
                if format_id <= _MAX_FORMAT_ID:
                    return cls(format_id, gtrid, bqual)
        return cls(None, text, None)


class TwoPhaseCommit:
    """The two-phase commit part of ``BaseConnection`` (a mixin)."""

    #: The id of the two-phase transaction in progress, if any.
    _tpc_xid: Xid | None = None
    #: Whether that transaction was prepared.
    _tpc_prepared = False

    if TYPE_CHECKING:  # provided by BaseConnection
        pgconn: PGconn
        _autocommit: bool
        _transaction_blocks: list[BaseTransaction]

        @property
        def encoding(self) -> str: ...
        def _check_usable(self) -> None: ...
        def _begin_command(self) -> bytes: ...
        def _exec_command_gen(self, command: bytes) -> PQGen[None]: ...
        def _results_gen(self) -> PQGen[list[PGresult]]: ...
        def _check_results(self, results: list[PGresult]) -> None: ...

    def xid(self, format_id: int | None, gtrid: str, bqual: str | None) -> Xid:
        """Return a transaction id to pass to ``tpc_begin()``.

        :param format_id: the XA format id (0 to 2**31 - 1), or None for a
            plain string id (``gtrid`` alone, ``bqual`` None).
        :param gtrid: the global transaction id.
        :param bqual: the branch qualifier.
        :raises ProgrammingError: if a part is out of range.
        """
        return Xid.from_parts(format_id, gtrid, bqual)

    def _check_not_tpc(self, method: str) -> None:
        if self._tpc_xid is not None:
            raise errors.ProgrammingError(
                f"{method}() cannot be used in a two-phase transaction:"
                " use tpc_prepare(), tpc_commit() or tpc_rollback()"
            )

    def _check_no_transaction(self, *, in_tpc: str, in_transaction: str) -> None:
        """Raise ``ProgrammingError`` in a two-phase transaction, or in any open one."""
        if self._tpc_xid is not None:
            raise errors.ProgrammingError(in_tpc)
        if self.pgconn.transaction_status != TransactionStatus.IDLE:
            raise errors.ProgrammingError(in_transaction)

    def _xid_literal(self, xid: Xid) -> bytes:
        return self.pgconn.escape_literal(str(xid).encode(self.encoding))

    def _tpc_begin_gen(self, xid: Xid | str) -> PQGen[None]:
        self._check_usable()
        if not isinstance(xid, Xid):
            if not isinstance(xid, str):
                raise wrong_argument("tpc_begin() xid", xid, "an Xid (from conn.xid()) or a str")
            xid = Xid.from_string(xid)
        self._check_no_transaction(
            in_tpc="a two-phase transaction is already in progress: end it with"
            " tpc_commit() or tpc_rollback() first",
            in_transaction="tpc_begin() must start a new transaction:"
            " call commit() or rollback() first",
        )
        if self._autocommit:
            raise errors.ProgrammingError(
                "two-phase transactions cannot be used in autocommit mode:"
                " set autocommit to False first"
            )
        yield from self._exec_command_gen(self._begin_command())
        self._tpc_xid = xid
        self._tpc_prepared = False

    def _tpc_prepare_gen(self) -> PQGen[None]:
        self._check_usable()
        xid = self._tpc_xid
        if xid is None:
            raise errors.ProgrammingError(
                "tpc_prepare() needs a transaction: call tpc_begin() first"
            )
        if self._tpc_prepared:
            raise errors.ProgrammingError(
                "the two-phase transaction is already prepared: call tpc_commit() or tpc_rollback()"
            )
        if self._transaction_blocks:
            raise errors.ProgrammingError(
                "tpc_prepare() cannot be called inside a transaction() block: leave it first"
            )
        yield from self._exec_command_gen(b"PREPARE TRANSACTION " + self._xid_literal(xid))
        self._tpc_prepared = True

    def _tpc_finish_gen(self, commit: bool, xid: Xid | str | None) -> PQGen[None]:
        """End a two-phase transaction: the current one, or a prepared one given by ``xid``."""
        self._check_usable()
        method = "tpc_commit" if commit else "tpc_rollback"
        verb = b"COMMIT" if commit else b"ROLLBACK"
        if xid is not None:
            if self._tpc_xid is not None or (
                self.pgconn.transaction_status != TransactionStatus.IDLE
            ):
                raise errors.ProgrammingError(
                    f"{method}(xid) ends a recovered transaction and must be called outside"
                    " any transaction: end the current one first"
                )
            if not isinstance(xid, Xid):
                xid = Xid.from_string(xid)
            yield from self._exec_command_gen(verb + b" PREPARED " + self._xid_literal(xid))
            return
        current = self._tpc_xid
        if current is None:
            raise errors.ProgrammingError(
                f"{method}() without an xid needs a two-phase transaction: call tpc_begin() first"
            )
        try:
            if self._tpc_prepared:
                yield from self._exec_command_gen(verb + b" PREPARED " + self._xid_literal(current))
            else:
                # Not prepared: the transaction is still open, end it in one phase.
                yield from self._exec_command_gen(verb)
        finally:
            self._tpc_xid = None
            self._tpc_prepared = False

    def _tpc_recover_gen(self) -> PQGen[list[Xid]]:
        """List the prepared transactions of the server, in the order they were prepared."""
        self._check_usable()
        self.pgconn.send_query(_RECOVER_QUERY)
        results = yield from self._results_gen()
        self._check_results(results)
        result = results[-1]
        if result.status != ExecStatus.TUPLES_OK:  # pragma: no cover - the query returns rows
            raise errors.InternalError(f"unexpected result status {result.status!r}")
        encoding = self.encoding
        xids = []
        for row in range(result.ntuples):
            gid, epoch, owner, database = (result.get_value(row, col) for col in range(4))
            parsed = Xid.from_string((gid or b"").decode(encoding, "replace"))
            prepared = None
            if epoch is not None:
                prepared = _EPOCH + timedelta(seconds=float(epoch))
            xids.append(
                Xid(
                    *parsed,
                    prepared=prepared,
                    owner=(owner or b"").decode(encoding, "replace"),
                    database=(database or b"").decode(encoding, "replace"),
                )
            )
        return xids


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

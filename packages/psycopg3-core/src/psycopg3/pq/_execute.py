"""The query, COPY, notification and pipeline methods of ``PGconn``.

Must not: wait on the socket, interpret results, or reach libpq without the
``_ptr()`` guard and the ``_cstrings`` checks (see ``pgconn``'s rules).
"""

from __future__ import annotations

from collections.abc import Sequence
from ctypes import byref, c_void_p, string_at
from typing import TYPE_CHECKING, Any

from ..errors import NotSupportedError, OperationalError
from . import _libpq as impl
from ._cstrings import build_oids, build_params, check_length, check_nul, check_result_format
from ._enums import Format, PipelineStatus, pipeline_status
from .misc import PGnotify, version_string
from .pgresult import PGresult

__all__ = ["ExecuteMixin", "missing_feature"]

_Buffer = bytes | bytearray | memoryview


def missing_feature(feature: str, needed: int) -> NotSupportedError:
    """The error for a feature that the loaded libpq is too old to offer."""
    return NotSupportedError(
        f"{feature} needs libpq {version_string(needed)} or later;"
        f" the loaded libpq is {version_string()}"
    )


class ExecuteMixin:
    """Sending queries and reading their results; mixed into `PGconn`."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Provided by PGconn, which this mixes into.
        def _ptr(self) -> int: ...

        def _error(self, what: str) -> OperationalError: ...

    # --- the arguments shared by the blocking and the sending calls ---
    #
    # PQexecParams and PQsendQueryParams take the same arguments (so do
    # PQprepare / PQsendPrepare and PQexecPrepared / PQsendQueryPrepared):
    # each pair's checks and C arrays are built once, here, and the libpq
    # function of either kind called with them.

    def _call_params(
        self,
        func: Any,
        command: bytes,
        param_values: Sequence[bytes | None] | None,
        param_types: Sequence[int] | None,
        param_formats: Sequence[int] | None,
        result_format: int,
    ) -> Any:
        ptr = self._ptr()
        check_nul(command, "query")
        n, oids, values, lengths, formats = build_params(
            param_values or (), param_types, param_formats
        )
        return func(
            ptr, command, n, oids, values, lengths, formats, check_result_format(result_format)
        )

    def _call_prepare(
        self, func: Any, name: bytes, command: bytes, param_types: Sequence[int] | None
    ) -> Any:
        ptr = self._ptr()
        check_nul(name, "statement name")
        check_nul(command, "query")
        n = len(param_types) if param_types else 0
        oids = build_oids(param_types, n) if param_types else None
        return func(ptr, name, command, n, oids)

    def _call_prepared(
        self,
        func: Any,
        name: bytes,
        param_values: Sequence[bytes | None] | None,
        param_formats: Sequence[int] | None,
        result_format: int,
    ) -> Any:
        ptr = self._ptr()
        check_nul(name, "statement name")
        n, _, values, lengths, formats = build_params(param_values or (), None, param_formats)
        return func(ptr, name, n, values, lengths, formats, check_result_format(result_format))

    # --- blocking execution ---

    def _result(self, res_ptr: int | None, what: str) -> PGresult:
        if not res_ptr:
            raise self._error(what)
        return PGresult(res_ptr)

    def exec_(self, command: bytes) -> PGresult:
        """Run a command and wait for its (last) result (``PQexec``)."""
        ptr = self._ptr()
        return self._result(impl.PQexec(ptr, check_nul(command, "query")), "executing the query")

    def exec_params(
        self,
        command: bytes,
        param_values: Sequence[bytes | None] | None,
        param_types: Sequence[int] | None = None,
        param_formats: Sequence[int] | None = None,
        result_format: int = Format.TEXT,
    ) -> PGresult:
        """Run a command with separate parameters and wait (``PQexecParams``)."""
        res = self._call_params(
            impl.PQexecParams, command, param_values, param_types, param_formats, result_format
        )
        return self._result(res, "executing the query")

    def prepare(
        self, name: bytes, command: bytes, param_types: Sequence[int] | None = None
    ) -> PGresult:
        """Prepare a named statement and wait (``PQprepare``)."""
        res = self._call_prepare(impl.PQprepare, name, command, param_types)
        return self._result(res, "preparing")

    def exec_prepared(
        self,
        name: bytes,
        param_values: Sequence[bytes | None] | None,
        param_formats: Sequence[int] | None = None,
        result_format: int = Format.TEXT,
    ) -> PGresult:
        """Run a prepared statement and wait (``PQexecPrepared``)."""
        res = self._call_prepared(
            impl.PQexecPrepared, name, param_values, param_formats, result_format
        )
        return self._result(res, "executing the prepared statement")

    def describe_prepared(self, name: bytes) -> PGresult:
        """Describe a prepared statement and wait (``PQdescribePrepared``)."""
        ptr = self._ptr()
        res = impl.PQdescribePrepared(ptr, check_nul(name, "statement name"))
        return self._result(res, "describing the prepared statement")

    def describe_portal(self, name: bytes) -> PGresult:
        """Describe a portal and wait (``PQdescribePortal``)."""
        ptr = self._ptr()
        res = impl.PQdescribePortal(ptr, check_nul(name, "portal name"))
        return self._result(res, "describing the portal")

    # --- asynchronous execution ---

    def _check_sent(self, rv: int, what: str) -> None:
        if not rv:
            raise self._error(what)

    def send_query(self, command: bytes) -> None:
        """Send a command without waiting for its results (``PQsendQuery``)."""
        ptr = self._ptr()
        self._check_sent(impl.PQsendQuery(ptr, check_nul(command, "query")), "sending the query")

    def send_query_params(
        self,
        command: bytes,
        param_values: Sequence[bytes | None] | None,
        param_types: Sequence[int] | None = None,
        param_formats: Sequence[int] | None = None,
        result_format: int = Format.TEXT,
    ) -> None:
        """Send a command with separate parameters (``PQsendQueryParams``).

        :param param_values: the values, None for NULL; text-format values
            must not contain NUL.
        :param param_types: type OIDs, 0 to let the server infer.
        :param param_formats: 0 (text) or 1 (binary) per parameter; None: text.
        :param result_format: the format of every result column.
        :raises DataError: for a NUL in the query or a text parameter, or a
            parameter longer than libpq can send.
        :raises OperationalError: if libpq could not send the query.
        """
        rv = self._call_params(
            impl.PQsendQueryParams, command, param_values, param_types, param_formats, result_format
        )
        self._check_sent(rv, "sending the query")

    def send_prepare(
        self, name: bytes, command: bytes, param_types: Sequence[int] | None = None
    ) -> None:
        """Send a request to prepare a named statement (``PQsendPrepare``)."""
        rv = self._call_prepare(impl.PQsendPrepare, name, command, param_types)
        self._check_sent(rv, "sending prepare")

    def send_query_prepared(
        self,
        name: bytes,
        param_values: Sequence[bytes | None] | None,
        param_formats: Sequence[int] | None = None,
        result_format: int = Format.TEXT,
    ) -> None:
        """Send the execution of a prepared statement (``PQsendQueryPrepared``)."""
        rv = self._call_prepared(
            impl.PQsendQueryPrepared, name, param_values, param_formats, result_format
        )
        self._check_sent(rv, "sending the prepared statement")

    def send_describe_prepared(self, name: bytes) -> None:
        """Send a request to describe a prepared statement."""
        ptr = self._ptr()
        rv = impl.PQsendDescribePrepared(ptr, check_nul(name, "statement name"))
        self._check_sent(rv, "sending describe")

    def send_describe_portal(self, name: bytes) -> None:
        """Send a request to describe a portal."""
        ptr = self._ptr()
        rv = impl.PQsendDescribePortal(ptr, check_nul(name, "portal name"))
        self._check_sent(rv, "sending describe")

    def send_close_prepared(self, name: bytes) -> None:
        """Send a request to close a prepared statement (libpq >= 17)."""
        ptr = self._ptr()
        if impl.PQsendClosePrepared is None:
            raise missing_feature("send_close_prepared", 170000)
        rv = impl.PQsendClosePrepared(ptr, check_nul(name, "statement name"))
        self._check_sent(rv, "sending close")

    def send_close_portal(self, name: bytes) -> None:
        """Send a request to close a portal (libpq >= 17)."""
        ptr = self._ptr()
        if impl.PQsendClosePortal is None:
            raise missing_feature("send_close_portal", 170000)
        rv = impl.PQsendClosePortal(ptr, check_nul(name, "portal name"))
        self._check_sent(rv, "sending close")

    def consume_input(self) -> None:
        """Read what the server sent, without blocking (``PQconsumeInput``)."""
        if not impl.PQconsumeInput(self._ptr()):
            raise self._error("reading from the server")

    def is_busy(self) -> bool:
        """True if `get_result()` would block (``PQisBusy``)."""
        return bool(impl.PQisBusy(self._ptr()))

    def flush(self) -> int:
        """Try to send the queued output: 0 when all sent, 1 if more remains.

        :raises OperationalError: if sending failed.
        """
        rv = int(impl.PQflush(self._ptr()))
        if rv < 0:
            raise self._error("flushing to the server")
        return rv

    def get_result(self) -> PGresult | None:
        """Return the next result of the query sent, None when there is no more."""
        res_ptr = impl.PQgetResult(self._ptr())
        return PGresult(res_ptr) if res_ptr else None

    def set_single_row_mode(self) -> None:
        """Receive the results of the query just sent one row at a time."""
        if not impl.PQsetSingleRowMode(self._ptr()):
            raise OperationalError("setting the single row mode failed")

    def notifies(self) -> PGnotify | None:
        """Return the next notification received, None if there is none."""
        notify_ptr = impl.PQnotifies(self._ptr())
        if not notify_ptr:
            return None
        try:
            c = notify_ptr.contents
            return PGnotify(c.relname or b"", c.be_pid, c.extra or b"")
        finally:
            impl.PQfreemem(notify_ptr)

    # --- COPY ---

    def put_copy_data(self, buffer: _Buffer) -> int:
        """Send data during COPY FROM STDIN: 1 if queued, 0 if it would block."""
        ptr = self._ptr()
        data = buffer if isinstance(buffer, bytes) else bytes(buffer)
        rv = int(impl.PQputCopyData(ptr, data, check_length(len(data), "COPY data")))
        if rv < 0:
            raise self._error("sending COPY data")
        return rv

    def put_copy_end(self, error: bytes | None = None) -> int:
        """End COPY FROM STDIN; a non-None *error* makes the server abort the COPY."""
        ptr = self._ptr()
        message = None if error is None else check_nul(error, "COPY error message")
        rv = int(impl.PQputCopyEnd(ptr, message))
        if rv < 0:
            raise self._error("ending COPY")
        return rv

    def get_copy_data(self, async_: int) -> tuple[int, bytes]:
        """Receive a row of COPY TO STDOUT.

        :param async_: nonzero to return (0, b"") instead of blocking.
        :return: (length, data); length -1 when the COPY is done.
        :raises OperationalError: if libpq reports an error (-2).
        """
        ptr = self._ptr()
        buffer = c_void_p()
        get = impl.PQgetCopyData if async_ else impl.PQgetCopyData_waiting
        nbytes = int(get(ptr, byref(buffer), async_))
        if nbytes == -2:
            raise self._error("receiving COPY data")
        if buffer.value is None:
            return nbytes, b""
        try:
            return nbytes, string_at(buffer.value, nbytes)
        finally:
            impl.PQfreemem(buffer.value)

    # --- pipeline mode (libpq >= 14) ---

    def _pipeline_call(self, func: Any, what: str) -> None:
        ptr = self._ptr()
        if func is None:
            raise missing_feature(what, 140000)
        if func(ptr) != 1:
            raise self._error(what)

    @property
    def pipeline_status(self) -> PipelineStatus:
        """Whether the connection is in pipeline mode (always OFF before 14)."""
        ptr = self._ptr()
        if impl.PQpipelineStatus is None:
            return PipelineStatus.OFF
        return pipeline_status(impl.PQpipelineStatus(ptr))

    def enter_pipeline_mode(self) -> None:
        """Enter pipeline mode (the connection must be idle)."""
        self._pipeline_call(impl.PQenterPipelineMode, "entering pipeline mode")

    def exit_pipeline_mode(self) -> None:
        """Leave pipeline mode (every result must have been read)."""
        self._pipeline_call(impl.PQexitPipelineMode, "exiting pipeline mode")

    def pipeline_sync(self) -> None:
        """Mark a synchronisation point in the pipeline and flush."""
        self._pipeline_call(impl.PQpipelineSync, "pipeline sync")

    def send_flush_request(self) -> None:
        """Ask the server to flush its output buffer (pipeline mode)."""
        self._pipeline_call(impl.PQsendFlushRequest, "sending a flush request")

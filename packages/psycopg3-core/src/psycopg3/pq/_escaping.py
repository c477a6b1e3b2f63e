"""Quoting and escaping in the connection's encoding, and password hashing; mixed into ``PGconn``.

Must not: send anything to the server, or reach libpq without the ``_ptr()``
guard and the ``_cstrings`` checks (see ``pgconn``'s rules); every string
libpq allocates here is freed here (``_take_string``).
"""

from __future__ import annotations

from ctypes import byref, c_int, c_size_t, create_string_buffer, string_at
from typing import TYPE_CHECKING

from ..errors import OperationalError
from . import _libpq as impl
from ._cstrings import check_nul

__all__ = ["EscapingMixin"]

_Buffer = bytes | bytearray | memoryview


class EscapingMixin:
    """Escaping values and identifiers, hashing passwords; mixed into `PGconn`."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Provided by PGconn, which this mixes into.
        def _ptr(self) -> int: ...

        def _error(self, what: str) -> OperationalError: ...

    def _take_string(self, c_ptr: int | None, what: str, size: int = -1) -> bytes:
        if not c_ptr:
            raise self._error(what)
        try:
            return string_at(c_ptr, size)
        finally:
            impl.PQfreemem(c_ptr)

    def escape_literal(self, data: _Buffer) -> bytes:
        """Quote a value as an SQL string literal, quotes included."""
        ptr = self._ptr()
        value = check_nul(bytes(data), "literal")
        return self._take_string(impl.PQescapeLiteral(ptr, value, len(value)), "escaping")

    def escape_identifier(self, data: _Buffer) -> bytes:
        """Quote a name as an SQL identifier, double quotes included."""
        ptr = self._ptr()
        value = check_nul(bytes(data), "identifier")
        return self._take_string(impl.PQescapeIdentifier(ptr, value, len(value)), "escaping")

    def escape_string(self, data: _Buffer) -> bytes:
        """Escape a value for use inside single quotes (no quotes added)."""
        ptr = self._ptr()
        value = check_nul(bytes(data), "string")
        out = create_string_buffer(2 * len(value) + 1)
        error = c_int()
        size = impl.PQescapeStringConn(ptr, out, value, len(value), byref(error))
        if error.value:
            raise self._error("escaping the string")
        return out.raw[:size]

    def escape_bytea(self, data: _Buffer) -> bytes:
        """Encode binary data as the text form of a bytea (``PQescapeByteaConn``)."""
        ptr = self._ptr()
        value = bytes(data)
        size = c_size_t()
        out = impl.PQescapeByteaConn(ptr, value, len(value), byref(size))
        # size counts the terminating NUL.
        return self._take_string(out, "escaping bytea", max(size.value - 1, 0))

    def encrypt_password(
        self, password: bytes, user: bytes, algorithm: bytes | None = None
    ) -> bytes:
        """Hash a password client-side for ALTER ROLE (``PQencryptPasswordConn``).

        :param algorithm: b"scram-sha-256" or b"md5"; None: the server's
            ``password_encryption``.
        """
        ptr = self._ptr()
        check_nul(password, "password")
        check_nul(user, "user name")
        if algorithm is not None:
            check_nul(algorithm, "algorithm")
        out = impl.PQencryptPasswordConn(ptr, password, user, algorithm)
        return self._take_string(out, "encrypting the password")

"""What libpq knows of a connection: server, session parameters, conninfo; mixed into ``PGconn``.

Read-only accessors, one libpq call each. Must not: change the connection's
state, wait on the socket, or reach libpq without the ``_ptr()`` guard and
the ``_cstrings`` checks (see ``pgconn``'s rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _libpq as impl
from ._cstrings import check_nul
from ._execute import missing_feature
from .misc import ConninfoOption, options_from_array

__all__ = ["InfoMixin"]


class InfoMixin:
    """The server's and the session's description; mixed into `PGconn`."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Provided by PGconn, which this mixes into.
        def _ptr(self) -> int: ...

    def parameter_status(self, name: bytes) -> bytes | None:
        """Return a parameter the server reported (e.g. b"client_encoding")."""
        value: bytes | None = impl.PQparameterStatus(self._ptr(), check_nul(name, "parameter name"))
        return value

    @property
    def server_version(self) -> int:
        """The server version as a number (150004 for 15.4), 0 if unknown."""
        return int(impl.PQserverVersion(self._ptr()))

    @property
    def protocol_version(self) -> int:
        """The frontend/backend protocol version (3)."""
        return int(impl.PQprotocolVersion(self._ptr()))

    @property
    def backend_pid(self) -> int:
        """The process id of the server backend."""
        return int(impl.PQbackendPID(self._ptr()))

    @property
    def db(self) -> bytes:
        """The database name."""
        return impl.PQdb(self._ptr()) or b""

    @property
    def user(self) -> bytes:
        """The user name."""
        return impl.PQuser(self._ptr()) or b""

    @property
    def password(self) -> bytes:
        """The password used (b"" if none). Never shown by repr."""
        return impl.PQpass(self._ptr()) or b""

    @property
    def host(self) -> bytes:
        """The host name or socket directory of the server."""
        return impl.PQhost(self._ptr()) or b""

    @property
    def hostaddr(self) -> bytes:
        """The IP address of the server (libpq >= 12)."""
        ptr = self._ptr()
        if impl.PQhostaddr is None:  # pragma: no cover - libpq < 12
            raise missing_feature("PGconn.hostaddr", 120000)
        return impl.PQhostaddr(ptr) or b""

    @property
    def port(self) -> bytes:
        """The port of the server."""
        return impl.PQport(self._ptr()) or b""

    @property
    def options(self) -> bytes:
        """The command-line options passed in the connection request."""
        return impl.PQoptions(self._ptr()) or b""

    @property
    def ssl_in_use(self) -> bool:
        """True if the connection uses SSL."""
        return bool(impl.PQsslInUse(self._ptr()))

    @property
    def needs_password(self) -> bool:
        """True if authentication needed a password and none was given."""
        return bool(impl.PQconnectionNeedsPassword(self._ptr()))

    @property
    def used_password(self) -> bool:
        """True if authentication used a password."""
        return bool(impl.PQconnectionUsedPassword(self._ptr()))

    @property
    def info(self) -> list[ConninfoOption]:
        """The connection options in use (``PQconninfo``)."""
        array = impl.PQconninfo(self._ptr())
        if not array:
            raise MemoryError("libpq could not allocate the conninfo options")
        try:
            return options_from_array(array)
        finally:
            impl.PQconninfoFree(array)

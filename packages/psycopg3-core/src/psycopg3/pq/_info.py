"""What libpq knows of a connection: server, session parameters, conninfo; mixed into ``PGconn``.

Read-only accessors, one libpq call each. Must not: change the connection's
state, wait on the socket, or reach libpq without the ``_ptr()`` guard and
the ``_cstrings`` checks (see ``pgconn``'s rules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _libpq as impl
from ._accessors import libpq_property, or_empty
from ._cstrings import check_nul
from ._execute import missing_feature
from .misc import ConninfoOption, take_options

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

    # One libpq call each, on the connection's pointer (see ``_accessors``).
    server_version = libpq_property(
        impl.PQserverVersion, int, "The server version as a number (150004 for 15.4), 0 if unknown."
    )
    protocol_version = libpq_property(
        impl.PQprotocolVersion, int, "The frontend/backend protocol version (3)."
    )
    backend_pid = libpq_property(impl.PQbackendPID, int, "The process id of the server backend.")
    db = libpq_property(impl.PQdb, or_empty, "The database name.")
    user = libpq_property(impl.PQuser, or_empty, "The user name.")
    password = libpq_property(
        impl.PQpass, or_empty, 'The password used (b"" if none). Never shown by repr.'
    )
    host = libpq_property(impl.PQhost, or_empty, "The host name or socket directory of the server.")

    @property
    def hostaddr(self) -> bytes:
        """The IP address of the server (libpq >= 12)."""
        ptr = self._ptr()
        if impl.PQhostaddr is None:  # pragma: no cover - libpq < 12
            raise missing_feature("PGconn.hostaddr", 120000)
        return impl.PQhostaddr(ptr) or b""

    port = libpq_property(impl.PQport, or_empty, "The port of the server.")
    options = libpq_property(
        impl.PQoptions, or_empty, "The command-line options passed in the connection request."
    )
    ssl_in_use = libpq_property(impl.PQsslInUse, bool, "True if the connection uses SSL.")
    needs_password = libpq_property(
        impl.PQconnectionNeedsPassword,
        bool,
        "True if authentication needed a password and none was given.",
    )
    used_password = libpq_property(
        impl.PQconnectionUsedPassword, bool, "True if authentication used a password."
    )

    @property
    def info(self) -> list[ConninfoOption]:
        """The connection options in use (``PQconninfo``)."""
        return take_options(impl.PQconninfo(self._ptr()), "the conninfo options")

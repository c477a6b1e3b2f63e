"""``conn.info``: what a connection is connected to, read from libpq.

Must not: send anything to the server, or show the password (in ``repr``,
``dsn`` or ``get_parameters()``). Every value is read when asked: they can
change (``SET TimeZone``, a transaction starting). Once the connection is
closed, ``transaction_status`` says UNKNOWN and the other values raise
``OperationalError``.
"""

from __future__ import annotations

import os
from datetime import tzinfo
from typing import overload

from ._encodings import pgconn_py_encoding
from .conninfo import make_conninfo
from .pq import PGconn, TransactionStatus

__all__ = ["ConnectionInfo"]


class _Text:
    # A str attribute of ConnectionInfo: the libpq connection's bytes attribute
    # of that name, decoded in the connection's encoding when asked.

    def __init__(self, attr: str, doc: str):
        self.attr = attr
        self.__doc__ = doc

    @overload
    def __get__(self, info: None, owner: type) -> _Text: ...

    @overload
    def __get__(self, info: ConnectionInfo, owner: type) -> str: ...

    def __get__(self, info: ConnectionInfo | None, owner: type) -> str | _Text:
        if info is None:
            return self
        return info._text(getattr(info.pgconn, self.attr))


class ConnectionInfo:
    """Information about a connection and its server session.

    :param pgconn: the libpq connection to describe.
    """

    __slots__ = ("pgconn",)

    #: The kind of server (for code written for several databases).
    vendor = "PostgreSQL"

    def __init__(self, pgconn: PGconn):
        self.pgconn = pgconn

    def __repr__(self) -> str:
        cls = f"{type(self).__module__}.{type(self).__qualname__}"
        if self.pgconn.closed:
            return f"<{cls} [closed] at 0x{id(self):x}>"
        return f"<{cls} {self.dsn!r} at 0x{id(self):x}>"

    def _text(self, value: bytes) -> str:
        return value.decode(self.encoding, "replace")

    host = _Text("host", "The server's host name, or the directory of its Unix socket.")
    hostaddr = _Text("hostaddr", 'The server\'s IP address ("" over a Unix socket).')

    @property
    def port(self) -> int:
        """The server's port."""
        # libpq reports the port it used; "" only if it has none to report.
        return int(self.pgconn.port or b"5432")

    dbname = _Text("db", "The database name.")
    user = _Text("user", "The user name.")
    password = _Text(
        "password", "The password given to connect (never shown by ``repr`` or ``dsn``)."
    )
    options = _Text("options", "The command-line options sent in the connection request.")

    @property
    def ssl_in_use(self) -> bool:
        """True if the connection is encrypted with TLS (whatever ``sslmode`` asked for).

        ``sslmode=prefer`` or ``allow`` may end up on either kind of
        connection: this says which one was made.
        """
        return self.pgconn.ssl_in_use

    @property
    def backend_pid(self) -> int:
        """The process id of the server process serving this connection."""
        return self.pgconn.backend_pid

    @property
    def server_version(self) -> int:
        """The server's version as a number: 150004 for 15.4."""
        return self.pgconn.server_version

    @property
    def transaction_status(self) -> TransactionStatus:
        """IDLE, ACTIVE (a command runs), INTRANS, INERROR or UNKNOWN (connection bad or closed)."""
        if self.pgconn.closed:
            return TransactionStatus.UNKNOWN
        return self.pgconn.transaction_status

    def parameter_status(self, name: str) -> str | None:
        """Return a parameter the server reports (``TimeZone``, ``server_version``…).

        :param name: the parameter's name, as ``SHOW`` spells it.
        :return: its value, or None if the server does not report it.
        """
        value = self.pgconn.parameter_status(name.encode(self.encoding))
        return None if value is None else self._text(value)

    @property
    def encoding(self) -> str:
        """The Python codec of the client encoding (``"utf-8"``, ``"iso8859-1"``…).

        ``SQL_ASCII`` has no codec of its own: its text is read as UTF-8, other
        bytes kept as surrogates (``surrogateescape``), and this says ``"utf-8"``.
        An encoding without a Python codec (``EUC_TW``, ``MULE_INTERNAL``) gives
        the driver's "ASCII only" codec for it (``"psycopg3_ascii_only_euc_tw"``):
        ``str.encode()`` with it converts ASCII and raises for anything else,
        where UTF-8 would produce bytes the server reads as other characters.
        """
        return pgconn_py_encoding(self.pgconn).python_codec

    @property
    def timezone(self) -> tzinfo:
        """The session's ``TimeZone`` as a Python tzinfo (UTC if Python does not know it)."""
        # Imported here: the datetime adapters import much of the package.
        from .types._datetime_common import session_timezone

        return session_timezone(self.pgconn)

    def get_parameters(self) -> dict[str, str]:
        """Return the connection parameters that differ from their defaults, without the password.

        A default is the value of the parameter's environment variable if set,
        else libpq's compiled-in value.
        """
        params: dict[str, str] = {}
        for opt in self.pgconn.info:
            if opt.keyword is None or opt.val is None or opt.keyword == b"password":
                continue
            default = os.environ.get(opt.envvar.decode()) if opt.envvar else None
            if default is None and opt.compiled is not None:
                default = opt.compiled.decode("utf-8", "replace")
            value = opt.val.decode("utf-8", "replace")
            if value and value != default:
                params[opt.keyword.decode("utf-8")] = value
        return params

    @property
    def dsn(self) -> str:
        """A conninfo string of the connection's parameters, without the password."""
        return make_conninfo("", **self.get_parameters())

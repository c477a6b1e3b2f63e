"""The libpq façade of psycopg3: bytes in, bytes out; mechanism, no policy.

Must not: wait on sockets, decode or adapt values, or decide what a result
means. The implementation is picked once, at import: only "ctypes" exists
for now; the ``PSYCOPG3_IMPL`` environment variable may name it explicitly.
"""

from __future__ import annotations

import os

_requested = os.environ.get("PSYCOPG3_IMPL", "")
if _requested not in ("", "ctypes"):
    raise ImportError(
        f"PSYCOPG3_IMPL={_requested!r} is not an available libpq implementation:"
        " the only one is 'ctypes' (or leave the variable unset)"
    )

from . import _enums  # noqa: E402 - the implementation check must come first
from ._enums import *  # noqa: E402, F403 - the enumerations, named once in _enums.__all__
from ._live import live_objects  # noqa: E402
from .misc import (  # noqa: E402
    Conninfo,
    ConninfoOption,
    PGnotify,
    error_message,
    unescape_bytea,
    version,
    version_string,
)
from .pgcancel import PGcancel, PGcancelConn  # noqa: E402
from .pgconn import NoticeHandler, PGconn  # noqa: E402
from .pgresult import Loader, PGresult  # noqa: E402

#: The name of the implementation in use.
__impl__ = "ctypes"

#: The path or name libpq was loaded from.
from ._libpq import libpq_path  # noqa: E402

__all__ = [
    "__impl__",
    "live_objects",
    "libpq_path",
    "version",
    "version_string",
    "error_message",
    "unescape_bytea",
    "PGconn",
    "PGresult",
    "PGcancel",
    "PGcancelConn",
    "PGnotify",
    "NoticeHandler",
    "Loader",
    "Conninfo",
    "ConninfoOption",
]
# The enumerations, listed once: in ``_enums.__all__``.
__all__.extend(_enums.__all__)

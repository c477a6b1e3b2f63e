"""Load libpq and declare the C signature of every function psycopg3 calls.

Must not: wrap, check or convert anything (that is ``pgconn``/``pgresult``'s
job, and ``_cstrings``' for the C strings and ints we build); hold any state
beyond the loaded library.

Rules of this module:

1. Opaque pointers (``PGconn *``, ``PGresult *``, ``PGcancel *``) are
   ``c_void_p``: ctypes hands them back as plain ints, or None for NULL.
2. A ``char *`` that libpq allocates and we must ``PQfreemem`` is declared
   ``c_void_p`` too, never ``c_char_p`` (which would copy the text and lose
   the pointer to free).
3. Functions newer than the oldest libpq we support are declared only when
   the loaded library has them; otherwise the module name is None.
4. A function that may wait (on the network, DNS, files, or a result not yet
   read) is declared ``waits=True``: it releases the GIL for the call. Every
   other one keeps it: on a connection in nonblocking mode, as every
   psycopg3 connection is, they return at once, and releasing the GIL around
   each of them hands it to another thread many times per query (a pool of
   threads then spends its time switching). ``PQsendQuery*``, ``PQflush`` and
   ``PQputCopy*`` can wait only in blocking mode, which only a direct user of
   ``psycopg3.pq`` can set.
5. Within a chapter of libpq's documentation, the functions of one C
   signature are declared by one ``_declare_each`` call, its names unpacked
   in the same order (a test checks each module name against its function).
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_void_p,
)
from typing import Any

# The names the dynamic loader finds by itself, tried before ctypes.util:
# find_library() imports subprocess (and with it select and selectors), which
# the core must not pull in where the loader's own search is enough.
_SONAMES = ("libpq.so.5", "libpq.5.dylib", "libpq.dll")


def _load_libpq() -> tuple[str, ctypes.CDLL]:
    override = os.environ.get("PSYCOPG3_LIBPQ")
    if override:
        return override, ctypes.CDLL(override)
    for name in _SONAMES:
        try:
            return name, ctypes.CDLL(name)
        except OSError:
            pass
    from ctypes.util import find_library

    found = find_library("pq")
    if found is None:
        raise OSError(f"libpq not found (tried {', '.join(_SONAMES)} and find_library)")
    return found, ctypes.CDLL(found)


try:
    libpq_path, _lib_waiting = _load_libpq()
except OSError as exc:  # pragma: no cover - depends on the machine
    raise ImportError(
        f"psycopg3 cannot load libpq ({exc}); set PSYCOPG3_LIBPQ to its path"
    ) from exc

# The same loaded library, through functions that keep the GIL (rule 4).
_lib = ctypes.PyDLL(libpq_path, handle=_lib_waiting._handle)


def _declare(name: str, restype: Any, argtypes: list[Any], *, waits: bool = False) -> Any:
    func = getattr(_lib_waiting if waits else _lib, name)
    func.restype = restype
    func.argtypes = argtypes
    return func


def _declare_if_present(
    name: str, restype: Any, argtypes: list[Any], *, waits: bool = False
) -> Any:
    if not hasattr(_lib, name):
        return None
    return _declare(name, restype, argtypes, waits=waits)


def _declare_each(
    names: str, restype: Any, argtypes: list[Any], *, waits: bool = False, if_present: bool = False
) -> list[Any]:
    # The functions named in *names* (separated by spaces), of one C
    # signature. Unpacked into module names listed in the same order: a test
    # checks that each module name is its function's.
    declare = _declare_if_present if if_present else _declare
    return [declare(name, restype, argtypes, waits=waits) for name in names.split()]


Oid = c_uint


class PGnotify_struct(Structure):
    """libpq's ``PGnotify`` (its public fields, then the private link)."""

    _fields_ = [
        ("relname", c_char_p),
        ("be_pid", c_int),
        ("extra", c_char_p),
        ("next", c_void_p),
    ]


class PQconninfoOption_struct(Structure):
    """libpq's ``PQconninfoOption``: one entry of an array ended by a NULL keyword."""

    _fields_ = [
        ("keyword", c_char_p),
        ("envvar", c_char_p),
        ("compiled", c_char_p),
        ("val", c_char_p),
        ("label", c_char_p),
        ("dispchar", c_char_p),
        ("dispsize", c_int),
    ]


PQnoticeReceiver = CFUNCTYPE(None, c_void_p, c_void_p)

_conn = c_void_p
_res = c_void_p
_char_array = POINTER(c_char_p)
_int_array = POINTER(c_int)
_oid_array = POINTER(Oid)

# --- Database Connection Control Functions ---

PQconnectdb = _declare("PQconnectdb", _conn, [c_char_p], waits=True)
PQconnectStart = _declare("PQconnectStart", _conn, [c_char_p], waits=True)
PQconnectPoll = _declare("PQconnectPoll", c_int, [_conn], waits=True)
PQconndefaults = _declare("PQconndefaults", POINTER(PQconninfoOption_struct), [], waits=True)
PQconninfoParse = _declare(
    "PQconninfoParse", POINTER(PQconninfoOption_struct), [c_char_p, POINTER(c_void_p)]
)
PQconninfo = _declare("PQconninfo", POINTER(PQconninfoOption_struct), [_conn])
PQconninfoFree = _declare("PQconninfoFree", None, [POINTER(PQconninfoOption_struct)])
PQfinish = _declare("PQfinish", None, [_conn], waits=True)
PQping = _declare("PQping", c_int, [c_char_p], waits=True)

# --- Connection Status Functions ---

PQdb, PQuser, PQpass, PQhost, PQport, PQoptions, PQerrorMessage = _declare_each(
    "PQdb PQuser PQpass PQhost PQport PQoptions PQerrorMessage", c_char_p, [_conn]
)
PQhostaddr = _declare_if_present("PQhostaddr", c_char_p, [_conn])  # libpq >= 12
PQparameterStatus = _declare("PQparameterStatus", c_char_p, [_conn, c_char_p])
(
    PQstatus, PQtransactionStatus, PQprotocolVersion, PQserverVersion, PQsocket, PQbackendPID,
    PQconnectionNeedsPassword, PQconnectionUsedPassword, PQsslInUse,
) = _declare_each(
    "PQstatus PQtransactionStatus PQprotocolVersion PQserverVersion PQsocket PQbackendPID"
    " PQconnectionNeedsPassword PQconnectionUsedPassword PQsslInUse",
    c_int,
    [_conn],
)  # fmt: skip

# --- Command Execution Functions ---

PQexec = _declare("PQexec", _res, [_conn, c_char_p], waits=True)
PQexecParams = _declare(
    "PQexecParams",
    _res,
    [_conn, c_char_p, c_int, _oid_array, _char_array, _int_array, _int_array, c_int],
    waits=True,
)
PQprepare = _declare("PQprepare", _res, [_conn, c_char_p, c_char_p, c_int, _oid_array], waits=True)
PQexecPrepared = _declare(
    "PQexecPrepared",
    _res,
    [_conn, c_char_p, c_int, _char_array, _int_array, _int_array, c_int],
    waits=True,
)
PQdescribePrepared, PQdescribePortal = _declare_each(
    "PQdescribePrepared PQdescribePortal", _res, [_conn, c_char_p], waits=True
)
PQclosePrepared, PQclosePortal = _declare_each(  # libpq >= 17
    "PQclosePrepared PQclosePortal", _res, [_conn, c_char_p], waits=True, if_present=True
)

PQresultErrorField = _declare("PQresultErrorField", c_char_p, [_res, c_int])
PQclear = _declare("PQclear", None, [_res])

# The result's shape and the values' metadata, by C signature.
PQresultStatus, PQntuples, PQnfields, PQbinaryTuples, PQnparams = _declare_each(
    "PQresultStatus PQntuples PQnfields PQbinaryTuples PQnparams", c_int, [_res]
)
PQresultErrorMessage, PQcmdStatus, PQcmdTuples = _declare_each(
    "PQresultErrorMessage PQcmdStatus PQcmdTuples", c_char_p, [_res]
)
PQfname = _declare("PQfname", c_char_p, [_res, c_int])
PQftable, PQftype, PQparamtype = _declare_each("PQftable PQftype PQparamtype", Oid, [_res, c_int])
PQftablecol, PQfformat, PQfmod, PQfsize = _declare_each(
    "PQftablecol PQfformat PQfmod PQfsize", c_int, [_res, c_int]
)
# Declared twice on purpose. Text values never contain NUL, so the c_char_p
# form returns them as bytes in one call (the fast path of loading rows); a
# binary value may contain NUL, so it is read through a plain pointer with
# PQgetlength and ctypes.string_at.
PQgetvalue_text = _declare("PQgetvalue", c_char_p, [_res, c_int, c_int])
# _lib["name"] (unlike _lib.name) builds a new function object each time, so
# this second declaration does not change the first one's restype.
PQgetvalue_ptr = _lib["PQgetvalue"]
PQgetvalue_ptr.restype = POINTER(c_char)
PQgetvalue_ptr.argtypes = [_res, c_int, c_int]
PQgetisnull, PQgetlength = _declare_each("PQgetisnull PQgetlength", c_int, [_res, c_int, c_int])
PQoidValue = _declare("PQoidValue", Oid, [_res])

PQescapeLiteral, PQescapeIdentifier = _declare_each(
    "PQescapeLiteral PQescapeIdentifier", c_void_p, [_conn, c_char_p, c_size_t]
)
PQescapeStringConn = _declare(
    "PQescapeStringConn", c_size_t, [_conn, c_char_p, c_char_p, c_size_t, POINTER(c_int)]
)
PQescapeByteaConn = _declare(
    "PQescapeByteaConn", c_void_p, [_conn, c_char_p, c_size_t, POINTER(c_size_t)]
)
PQunescapeBytea = _declare("PQunescapeBytea", c_void_p, [c_char_p, POINTER(c_size_t)])

# --- Asynchronous Command Processing ---

PQsendQuery, PQsendDescribePrepared, PQsendDescribePortal = _declare_each(
    "PQsendQuery PQsendDescribePrepared PQsendDescribePortal", c_int, [_conn, c_char_p]
)
PQsendClosePrepared, PQsendClosePortal = _declare_each(  # libpq >= 17
    "PQsendClosePrepared PQsendClosePortal", c_int, [_conn, c_char_p], if_present=True
)
PQsendQueryParams = _declare(
    "PQsendQueryParams",
    c_int,
    [_conn, c_char_p, c_int, _oid_array, _char_array, _int_array, _int_array, c_int],
)
PQsendPrepare = _declare("PQsendPrepare", c_int, [_conn, c_char_p, c_char_p, c_int, _oid_array])
PQsendQueryPrepared = _declare(
    "PQsendQueryPrepared",
    c_int,
    [_conn, c_char_p, c_int, _char_array, _int_array, _int_array, c_int],
)
PQgetResult = _declare("PQgetResult", _res, [_conn], waits=True)
PQconsumeInput, PQisBusy, PQisnonblocking, PQflush, PQsetSingleRowMode = _declare_each(
    "PQconsumeInput PQisBusy PQisnonblocking PQflush PQsetSingleRowMode", c_int, [_conn]
)
PQsetnonblocking = _declare("PQsetnonblocking", c_int, [_conn, c_int], waits=True)
PQsetChunkedRowsMode = _declare_if_present("PQsetChunkedRowsMode", c_int, [_conn, c_int])  # 17

# --- Cancelling Queries in Progress ---

PQgetCancel = _declare("PQgetCancel", c_void_p, [_conn])
PQfreeCancel = _declare("PQfreeCancel", None, [c_void_p])
PQcancel = _declare("PQcancel", c_int, [c_void_p, c_char_p, c_int], waits=True)

# The non-blocking cancel API of libpq 17 (PGcancelConn *, opaque).
PQcancelCreate = _declare_if_present("PQcancelCreate", c_void_p, [_conn])
PQcancelStart, PQcancelBlocking, PQcancelPoll = _declare_each(
    "PQcancelStart PQcancelBlocking PQcancelPoll", c_int, [c_void_p], waits=True, if_present=True
)
PQcancelStatus, PQcancelSocket = _declare_each(
    "PQcancelStatus PQcancelSocket", c_int, [c_void_p], if_present=True
)
PQcancelErrorMessage = _declare_if_present("PQcancelErrorMessage", c_char_p, [c_void_p])
PQcancelReset = _declare_if_present("PQcancelReset", None, [c_void_p])
PQcancelFinish = _declare_if_present("PQcancelFinish", None, [c_void_p], waits=True)

# --- Asynchronous Notification ---

PQnotifies = _declare("PQnotifies", POINTER(PGnotify_struct), [_conn])

# --- Functions Associated with the COPY Command ---

PQputCopyData = _declare("PQputCopyData", c_int, [_conn, c_char_p, c_int])
PQputCopyEnd = _declare("PQputCopyEnd", c_int, [_conn, c_char_p])
PQgetCopyData = _declare("PQgetCopyData", c_int, [_conn, POINTER(c_void_p), c_int])
# Its blocking form (async = 0) waits for the row.
PQgetCopyData_waiting = _declare(
    "PQgetCopyData", c_int, [_conn, POINTER(c_void_p), c_int], waits=True
)

# --- Control Functions ---

PQlibVersion = _declare("PQlibVersion", c_int, [])

# --- Notice Processing ---

PQsetNoticeReceiver = _declare("PQsetNoticeReceiver", c_void_p, [_conn, PQnoticeReceiver, c_void_p])

# --- Pipeline Mode ---

# libpq >= 14, but PQsendPipelineSync: 17.
(
    PQpipelineStatus, PQenterPipelineMode, PQexitPipelineMode, PQpipelineSync,
    PQsendFlushRequest, PQsendPipelineSync,
) = _declare_each(
    "PQpipelineStatus PQenterPipelineMode PQexitPipelineMode PQpipelineSync"
    " PQsendFlushRequest PQsendPipelineSync",
    c_int,
    [_conn],
    if_present=True,
)  # fmt: skip

# --- Miscellaneous Functions ---

PQfreemem = _declare("PQfreemem", None, [c_void_p])
PQencryptPasswordConn = _declare(
    "PQencryptPasswordConn", c_void_p, [_conn, c_char_p, c_char_p, c_char_p], waits=True
)

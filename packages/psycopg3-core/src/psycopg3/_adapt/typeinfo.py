"""PostgreSQL type names and OIDs: ``TypeInfo``, its catalog lookup, the built-in types.

Layer: adaptation. Looking a type up in the server's catalog
(`TypeInfo.fetch()`) goes through the public methods of the connection it is
given, duck-typed: this module imports no connection class (they are two
layers up). The query and the parsing of its rows are written once here, and
only the call shape differs between a blocking connection and an async one
(whose ``execute`` is a coroutine function: it gets a coroutine to await).

Must not: talk to libpq, import a connection or cursor module, or import any
concurrency framework.

Rules:

1. A catalog query returns one row per fact of the type (one per enum label,
   one per composite field): scalar columns only, so that looking a type up
   needs no array loader. The first five columns are always the type's
   ``typname``, ``oid``, ``typarray``, ``oid::regtype`` and ``typtype``.
2. The name is resolved by the server with ``to_regtype()``: quoting,
   schema qualification and ``search_path`` work as they do in SQL.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from .. import errors
from .global_map import adapters_of
from .registry import TypesRegistry

if TYPE_CHECKING:
    from .._async_connection import AsyncConnectionBase
    from .._connection_base import BaseConnection
    from .base import AdaptContext

__all__ = ["TypeInfo", "TypesRegistry", "builtin_types"]

InfoT = TypeVar("InfoT", bound="TypeInfo")


class TypeInfo:
    """The identity of a PostgreSQL type.

    :param name: the type's name in ``pg_type`` (``int4``).
    :param oid: the type's OID.
    :param array_oid: the OID of its array type, 0 if it has none.
    :param regtype: the name the server shows in ``::regtype`` (``integer``),
        if different from *name*; lookups accept both.
    """

    __slots__ = ("name", "oid", "array_oid", "regtype")

    def __init__(self, name: str, oid: int, array_oid: int, *, regtype: str | None = None):
        self.name = name
        self.oid = oid
        self.array_oid = array_oid
        self.regtype = regtype or name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} oid={self.oid} array_oid={self.array_oid}>"

    # What the catalog query of this class selects and joins; subclasses add
    # their own facts as further columns (see rule 1).
    _typtype: str | None = None  # the pg_type.typtype required, None for any
    _query = """\
select t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typtype
from pg_type t
where t.oid = to_regtype(%s)"""

    @overload
    @classmethod
    def fetch(  # type: ignore[overload-overlap]
        cls: type[InfoT], conn: AsyncConnectionBase, name: str
    ) -> Awaitable[InfoT | None]: ...

    @overload
    @classmethod
    def fetch(cls: type[InfoT], conn: BaseConnection, name: str) -> InfoT | None: ...

    @classmethod
    def fetch(
        cls: type[InfoT], conn: BaseConnection, name: str
    ) -> InfoT | None | Awaitable[InfoT | None]:
        """Look a type up by name in the server's catalog.

        On an async connection this returns an awaitable:
        ``info = await TypeInfo.fetch(aconn, "mood")``. Outside autocommit the
        query runs in the connection's transaction, as any other would.

        :param conn: a connection, blocking or async.
        :param name: the type's name as written in SQL, maybe schema-qualified
            (``myschema.mood``) or quoted (``'"My Type"'``).
        :return: the type's information, or None if no such type exists.
        :raises ProgrammingError: if the type exists but is not of the kind
            this class describes (an `EnumInfo` of a composite type).
        """
        if inspect.iscoroutinefunction(getattr(conn, "execute", None)):
            return cls._fetch_async(conn, name)  # type: ignore[arg-type]
        cur: Any = conn.cursor()  # type: ignore[attr-defined]
        try:
            cur.execute(cls._query, (name,))
            rows = cur.fetchall()
        finally:
            cur.close()
        return cls._from_rows(name, rows)

    @classmethod
    async def _fetch_async(cls: type[InfoT], conn: AsyncConnectionBase, name: str) -> InfoT | None:
        cur = conn.cursor()
        try:
            await cur.execute(cls._query, (name,))
            rows = await cur.fetchall()
        finally:
            await cur.close()
        return cls._from_rows(name, rows)

    @classmethod
    def _from_rows(cls: type[InfoT], name: str, rows: Sequence[Sequence[Any]]) -> InfoT | None:
        if not rows:
            return None
        typname, oid, array_oid, regtype, typtype = rows[0][:5]
        if cls._typtype is not None and typtype != cls._typtype:
            raise errors.ProgrammingError(
                f"the type {regtype!r} (from {name!r}) is not of the kind {cls.__name__}"
                f" describes (typtype {typtype!r}, expected {cls._typtype!r})"
            )
        return cls(typname, oid, array_oid or 0, regtype=regtype, **cls._facts(rows))

    @classmethod
    def _facts(cls, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        """Return the keyword arguments a subclass reads from its columns after the fifth."""
        return {}

    def register(self, context: AdaptContext | None = None) -> None:
        """Make the type known by name to a context's adapters.

        :param context: a connection or a cursor (only it and what it later
            creates see the type), or None for the global adapters.
        """
        adapters_of(context).types.add(self)


# name, oid, array oid, regtype name when different (from pg_type, PostgreSQL 15).
_BUILTINS: list[tuple[str, int, int, str | None]] = [
    ("bool", 16, 1000, "boolean"),
    ("bytea", 17, 1001, None),
    ("char", 18, 1002, '"char"'),
    ("name", 19, 1003, None),
    ("int8", 20, 1016, "bigint"),
    ("int2", 21, 1005, "smallint"),
    ("int2vector", 22, 1006, None),
    ("int4", 23, 1007, "integer"),
    ("regproc", 24, 1008, None),
    ("text", 25, 1009, None),
    ("oid", 26, 1028, None),
    ("tid", 27, 1010, None),
    ("xid", 28, 1011, None),
    ("cid", 29, 1012, None),
    ("oidvector", 30, 1013, None),
    ("json", 114, 199, None),
    ("xml", 142, 143, None),
    ("point", 600, 1017, None),
    ("lseg", 601, 1018, None),
    ("path", 602, 1019, None),
    ("box", 603, 1020, None),
    ("polygon", 604, 1027, None),
    ("line", 628, 629, None),
    ("cidr", 650, 651, None),
    ("float4", 700, 1021, "real"),
    ("float8", 701, 1022, "double precision"),
    ("unknown", 705, 0, None),
    ("circle", 718, 719, None),
    ("macaddr8", 774, 775, None),
    ("money", 790, 791, None),
    ("macaddr", 829, 1040, None),
    ("inet", 869, 1041, None),
    ("bpchar", 1042, 1014, "character"),
    ("varchar", 1043, 1015, "character varying"),
    ("date", 1082, 1182, None),
    ("time", 1083, 1183, "time without time zone"),
    ("timestamp", 1114, 1115, "timestamp without time zone"),
    ("timestamptz", 1184, 1185, "timestamp with time zone"),
    ("interval", 1186, 1187, None),
    ("timetz", 1266, 1270, "time with time zone"),
    ("bit", 1560, 1561, None),
    ("varbit", 1562, 1563, "bit varying"),
    ("numeric", 1700, 1231, None),
    ("regclass", 2205, 2210, None),
    ("regtype", 2206, 2211, None),
    ("record", 2249, 2287, None),
    ("void", 2278, 0, None),
    ("uuid", 2950, 2951, None),
    ("pg_lsn", 3220, 3221, None),
    ("tsvector", 3614, 3643, None),
    ("jsonb", 3802, 3807, None),
    ("int4range", 3904, 3905, None),
    ("numrange", 3906, 3907, None),
    ("tsrange", 3908, 3909, None),
    ("tstzrange", 3910, 3911, None),
    ("daterange", 3912, 3913, None),
    ("int8range", 3926, 3927, None),
    ("int4multirange", 4451, 6150, None),
    ("nummultirange", 4532, 6151, None),
    ("tsmultirange", 4533, 6152, None),
    ("tstzmultirange", 4534, 6153, None),
    ("datemultirange", 4535, 6155, None),
    ("int8multirange", 4536, 6157, None),
    ("jsonpath", 4072, 4073, None),
]


def builtin_types() -> TypesRegistry:
    """Return a new registry of PostgreSQL's built-in types."""
    registry = TypesRegistry()
    for name, oid, array_oid, regtype in _BUILTINS:
        registry.add(TypeInfo(name, oid, array_oid, regtype=regtype))
    return registry

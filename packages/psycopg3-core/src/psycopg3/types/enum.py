"""Adapters of enums: Python ``enum.Enum`` members <-> PostgreSQL enum types.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. An enum type is registered from the server's catalog: ``EnumInfo.fetch()``
   then `register_enum()`. Its labels load as the members of a Python Enum
   (the user's, matched by member name, or one generated from the labels),
   and the members of that Enum are dumped with the type's OID.
2. The binary format of an enum value is its label, as in text.
3. Without registration, members of any Enum are dumped by name with an
   unknown type (the server infers the enum type from the query), and
   loaded labels are ``str``. An Enum that is also a ``str`` or an ``int``
   (``StrEnum``, ``IntEnum``) is dumped as that type instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import AdaptContext, Buffer, Dumper, Loader, LoadFunction, context_codec
from .._adapt.global_map import adapters_of
from .._adapt.typeinfo import TypeInfo
from ..pq import Format
from .array import register_array

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

__all__ = ["EnumInfo", "register_enum", "EnumDumper", "EnumBinaryDumper", "EnumLoader"]


class EnumInfo(TypeInfo):
    """An enum type and its labels, in their sort order.

    :param labels: the enum's labels.
    """

    __slots__ = ("labels",)

    def __init__(
        self,
        name: str,
        oid: int,
        array_oid: int,
        *,
        regtype: str | None = None,
        labels: Sequence[str] = (),
    ):
        super().__init__(name, oid, array_oid, regtype=regtype)
        self.labels = list(labels)

    _typtype = "e"
    _query = """\
select t.typname, t.oid, t.typarray, t.oid::regtype::text, t.typtype, e.enumlabel
from pg_type t
left join pg_enum e on e.enumtypid = t.oid
where t.oid = to_regtype(%s)
order by e.enumsortorder"""

    @classmethod
    def _facts(cls, rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
        return {"labels": [row[5] for row in rows if row[5] is not None]}


class EnumDumper(Dumper):
    """Dump an Enum member (text): by name, or its label if made by `register_enum()`.

    Subclasses made by `register_enum()` set ``oid`` and ``labels`` (member
    to label); otherwise the type is unknown, for the server to infer.
    """

    labels: dict[Enum, str] | None = None

    def __init__(self, cls: type, context: AdaptContext | None = None):
        super().__init__(cls, context)
        self._codec, self._errors = context_codec(context)

    def dump(self, obj: Any) -> Buffer:
        # A member without a label is sent by name: the server says it is no label.
        label = obj.name if self.labels is None else self.labels.get(obj, obj.name)
        return label.encode(self._codec, self._errors)  # type: ignore[no-any-return]


class EnumBinaryDumper(EnumDumper):
    """Dump an Enum member by name in binary format (the same bytes)."""

    format = Format.BINARY


class EnumLoader(Loader):
    """Load the labels of an enum type as the members of a Python Enum.

    Subclasses made by `register_enum()` set ``enum`` and ``members`` (label
    to member).
    """

    enum: type[Enum]
    members: dict[str, Enum]

    def __init__(self, oid: int, context: AdaptContext | None = None):
        super().__init__(oid, context)
        codec, errors = context_codec(context)
        # Labels as the server sends them -> members: one dict lookup per value.
        self._members = {
            label.encode(codec, errors): member for label, member in self.members.items()
        }

    def load(self, data: Buffer) -> Any:
        return self.load_function()(bytes(data))

    def load_function(self) -> LoadFunction:
        members, enum_name = self._members, self.enum.__name__

        def load(data: bytes) -> Any:
            try:
                return members[data]
            except KeyError:
                raise errors.DataError(
                    f"the enum label {data!r} has no member in {enum_name}"
                    " (was a label added since the type was registered?)"
                ) from None

        return load


class EnumBinaryLoader(EnumLoader):
    """Load an enum in binary format (the label, as in text)."""

    format = Format.BINARY


def register_enum(
    info: EnumInfo, context: AdaptContext | None = None, enum: type[Enum] | None = None
) -> type[Enum]:
    """Load an enum type's labels as members of a Python Enum, and dump its members.

    :param info: the type, from ``EnumInfo.fetch(conn, "mood")``.
    :param context: a connection or cursor (only it and what it later creates
        are affected), or None for the global adapters.
    :param enum: the Enum whose members are named after the labels (labels
        without a member fail to load, members without a label to dump); by
        default one is generated, named after the type, each label the value
        of a member of the same name (or ``label<position>`` for the few
        names Enum refuses: ``""``, ``mro``, ``_sunder_``).
    :return: the Enum used.
    :raises ProgrammingError: if *info* has no labels (was it fetched?).
    """
    if not info.labels:
        raise errors.ProgrammingError(f"the enum {info.name!r} has no labels: use EnumInfo.fetch()")
    if enum is None:
        enum = _generated_enum(info)
        # Generated members hold their label as value (their name may differ).
        members = {member.value: member for member in enum}
    else:
        members = {label: enum[label] for label in info.labels if label in enum.__members__}
    adapters = adapters_of(context)
    info.register(context)
    attrs: dict[str, Any] = {"enum": enum, "members": members}
    for loader in (EnumLoader, EnumBinaryLoader):
        name = f"{loader.__name__}_{info.name}"
        adapters.register_loader(info.oid, type(name, (loader,), attrs))
    attrs = {"oid": info.oid, "labels": {member: label for label, member in members.items()}}
    for dumper in (EnumBinaryDumper, EnumDumper):
        name = f"{dumper.__name__}_{info.name}"
        adapters.register_dumper(enum, type(name, (dumper,), attrs))
    if info.array_oid:
        register_array(info, adapters)
    return enum


# What Enum refuses as a member name; such labels get another name.
def _is_reserved(label: str) -> bool:
    return label in ("", "mro") or (len(label) > 1 and label[0] == label[-1] == "_")


def _generated_enum(info: EnumInfo) -> type[Enum]:
    taken = set(info.labels)
    pairs = []
    for index, label in enumerate(info.labels):
        name = label
        if _is_reserved(label):
            name = f"label{index}"
            while name in taken:
                name += "_"
            taken.add(name)
        pairs.append((name, label))
    return Enum(info.name, pairs)  # type: ignore[return-value]


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Dump the members of any Enum by name, untyped (text format only)."""
    adapters.register_dumper(Enum, EnumDumper)

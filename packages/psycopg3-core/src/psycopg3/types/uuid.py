"""Adapters of UUIDs: ``uuid.UUID`` <-> PostgreSQL uuid, in text and binary format.

Must not: talk to libpq or import any concurrency framework.

The text form is the canonical hyphenated one (what the server prints too);
the binary form is the 16 bytes of the UUID, most significant first, which is
exactly ``UUID.bytes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from .._adapt.base import Buffer
from ..pq import Format
from ._bases import BuiltinDumper, FunctionLoader, register_dumpers, register_loaders

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

UUID_OID = 2950


class UUIDDumper(BuiltinDumper, oid=UUID_OID):
    """Dump a UUID as uuid (text)."""

    def dump(self, obj: Any) -> Buffer:
        return str(obj).encode()


class UUIDBinaryDumper(BuiltinDumper, oid=UUID_OID, format=Format.BINARY):
    """Dump a UUID as uuid (binary: 16 bytes)."""

    def dump(self, obj: Any) -> Buffer:
        return obj.bytes  # type: ignore[no-any-return]


def _load_uuid_text(data: bytes) -> UUID:
    return UUID(data.decode("ascii"))


def _load_uuid_binary(data: bytes) -> UUID:
    return UUID(bytes=data)


class UUIDLoader(FunctionLoader, function=_load_uuid_text):
    """Load a uuid in text format as a UUID."""


class UUIDBinaryLoader(FunctionLoader, function=_load_uuid_binary, format=Format.BINARY):
    """Load a uuid in binary format as a UUID."""


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the uuid adapters on *adapters* (text is the ``%s`` choice)."""
    register_dumpers(adapters, [(UUID, UUIDBinaryDumper, UUIDDumper)])
    register_loaders(adapters, [(UUID_OID, UUIDLoader, UUIDBinaryLoader)])

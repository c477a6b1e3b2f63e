"""Adapters of UUIDs: ``uuid.UUID`` <-> PostgreSQL uuid, in text and binary format.

Must not: talk to libpq or import any concurrency framework.

The text form is the canonical hyphenated one (what the server prints too);
the binary form is the 16 bytes of the UUID, most significant first, which is
exactly ``UUID.bytes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from .._adapt.base import Buffer, Dumper, Loader, LoadFunction
from ..pq import Format

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

UUID_OID = 2950


class UUIDDumper(Dumper):
    """Dump a UUID as uuid (text)."""

    oid = UUID_OID

    def dump(self, obj: Any) -> Buffer:
        return str(obj).encode()


class UUIDBinaryDumper(Dumper):
    """Dump a UUID as uuid (binary: 16 bytes)."""

    oid = UUID_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return obj.bytes  # type: ignore[no-any-return]


def _load_uuid_text(data: bytes) -> UUID:
    return UUID(data.decode("ascii"))


def _load_uuid_binary(data: bytes) -> UUID:
    return UUID(bytes=data)


class UUIDLoader(Loader):
    """Load a uuid in text format as a UUID."""

    def load(self, data: Buffer) -> Any:
        return _load_uuid_text(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_uuid_text


class UUIDBinaryLoader(Loader):
    """Load a uuid in binary format as a UUID."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return _load_uuid_binary(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_uuid_binary


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the uuid adapters on *adapters* (text is the ``%s`` choice)."""
    adapters.register_dumper(UUID, UUIDBinaryDumper)
    adapters.register_dumper(UUID, UUIDDumper)
    adapters.register_loader(UUID_OID, UUIDLoader)
    adapters.register_loader(UUID_OID, UUIDBinaryLoader)

"""Adapters of network addresses: ``ipaddress`` objects <-> inet and cidr.

Must not: talk to libpq or import any concurrency framework.

Rules:

1. ``IPv4Address``/``IPv6Address`` and ``IPv4Interface``/``IPv6Interface``
   are passed as inet, ``IPv4Network``/``IPv6Network`` as cidr.
2. An inet value without a mask (the server omits ``/32`` and ``/128``) loads
   as an Address, one with a mask as an Interface; cidr loads as a Network.
3. The binary form is: family (2 for IPv4, 3 for IPv6: PostgreSQL's own
   numbering, not the platform's AF_INET6), mask bits, is-cidr flag, number
   of address bytes, then the address bytes.
"""

from __future__ import annotations

import struct
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
    ip_interface,
    ip_network,
)
from typing import TYPE_CHECKING, Any

from .. import errors
from .._adapt.base import Buffer, Dumper, Loader, LoadFunction
from ..pq import Format

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap

INET_OID, CIDR_OID = 869, 650

_PGSQL_AF_INET = 2
_PGSQL_AF_INET6 = 3
_header = struct.Struct("!BBBB")

Address = IPv4Address | IPv6Address
Interface = IPv4Interface | IPv6Interface
Network = IPv4Network | IPv6Network


def _family(version: int) -> int:
    return _PGSQL_AF_INET if version == 4 else _PGSQL_AF_INET6


def _pack(address: Address, bits: int, is_cidr: int) -> bytes:
    packed = address.packed
    return _header.pack(_family(address.version), bits, is_cidr, len(packed)) + packed


class _NetTextDumper(Dumper):
    def dump(self, obj: Any) -> Buffer:
        return str(obj).encode()


class InetDumper(_NetTextDumper):
    """Dump an Address or an Interface as inet (text)."""

    oid = INET_OID


class CidrDumper(_NetTextDumper):
    """Dump a Network as cidr (text)."""

    oid = CIDR_OID


class AddressBinaryDumper(Dumper):
    """Dump an Address as inet (binary, full mask)."""

    oid = INET_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack(obj, obj.max_prefixlen, 0)


class InterfaceBinaryDumper(Dumper):
    """Dump an Interface as inet (binary, the address and its mask)."""

    oid = INET_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack(obj.ip, obj.network.prefixlen, 0)


class NetworkBinaryDumper(Dumper):
    """Dump a Network as cidr (binary)."""

    oid = CIDR_OID
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        return _pack(obj.network_address, obj.prefixlen, 1)


def _load_inet_text(data: bytes) -> Address | Interface:
    text = data.decode("ascii")
    return ip_interface(text) if "/" in text else ip_address(text)


def _load_cidr_text(data: bytes) -> Network:
    return ip_network(data.decode("ascii"))


def _unpack(data: bytes) -> tuple[bytes, int]:
    family, bits, _, size = _header.unpack_from(data)
    address = data[4:]
    if family not in (_PGSQL_AF_INET, _PGSQL_AF_INET6) or len(address) != size:
        raise errors.DataError(f"bad inet/cidr binary value: {data!r}")
    return address, bits


def _load_inet_binary(data: bytes) -> Address | Interface:
    address, bits = _unpack(data)
    if bits == len(address) * 8:
        return ip_address(address)
    return ip_interface((address, bits))


def _load_cidr_binary(data: bytes) -> Network:
    address, bits = _unpack(data)
    return ip_network((address, bits))


class InetLoader(Loader):
    """Load inet in text format as an Address (no mask) or an Interface."""

    def load(self, data: Buffer) -> Any:
        return _load_inet_text(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_inet_text


class InetBinaryLoader(Loader):
    """Load inet in binary format as an Address (full mask) or an Interface."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return _load_inet_binary(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_inet_binary


class CidrLoader(Loader):
    """Load cidr in text format as a Network."""

    def load(self, data: Buffer) -> Any:
        return _load_cidr_text(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_cidr_text


class CidrBinaryLoader(Loader):
    """Load cidr in binary format as a Network."""

    format = Format.BINARY

    def load(self, data: Buffer) -> Any:
        return _load_cidr_binary(bytes(data))

    def load_function(self) -> LoadFunction:
        return _load_cidr_binary


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the inet/cidr adapters on *adapters* (text is the ``%s`` choice)."""
    classes: list[tuple[type, type[Dumper], type[Dumper]]] = [
        (IPv4Address, AddressBinaryDumper, InetDumper),
        (IPv6Address, AddressBinaryDumper, InetDumper),
        (IPv4Interface, InterfaceBinaryDumper, InetDumper),
        (IPv6Interface, InterfaceBinaryDumper, InetDumper),
        (IPv4Network, NetworkBinaryDumper, CidrDumper),
        (IPv6Network, NetworkBinaryDumper, CidrDumper),
    ]
    for cls, binary_dumper, text_dumper in classes:
        adapters.register_dumper(cls, binary_dumper)
        adapters.register_dumper(cls, text_dumper)
    adapters.register_loader(INET_OID, InetLoader)
    adapters.register_loader(INET_OID, InetBinaryLoader)
    adapters.register_loader(CIDR_OID, CidrLoader)
    adapters.register_loader(CIDR_OID, CidrBinaryLoader)

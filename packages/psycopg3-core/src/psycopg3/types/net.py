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
from .._adapt.base import Buffer
from ..pq import Format
from ._bases import BuiltinDumper, FunctionLoader, register_dumpers, register_loaders

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


class _NetTextDumper(BuiltinDumper):
    def dump(self, obj: Any) -> Buffer:
        return str(obj).encode()


class InetDumper(_NetTextDumper, oid=INET_OID):
    """Dump an Address or an Interface as inet (text)."""


class CidrDumper(_NetTextDumper, oid=CIDR_OID):
    """Dump a Network as cidr (text)."""


class AddressBinaryDumper(BuiltinDumper, oid=INET_OID, format=Format.BINARY):
    """Dump an Address as inet (binary, full mask)."""

    def dump(self, obj: Any) -> Buffer:
        return _pack(obj, obj.max_prefixlen, 0)


class InterfaceBinaryDumper(BuiltinDumper, oid=INET_OID, format=Format.BINARY):
    """Dump an Interface as inet (binary, the address and its mask)."""

    def dump(self, obj: Any) -> Buffer:
        return _pack(obj.ip, obj.network.prefixlen, 0)


class NetworkBinaryDumper(BuiltinDumper, oid=CIDR_OID, format=Format.BINARY):
    """Dump a Network as cidr (binary)."""

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


class InetLoader(FunctionLoader, function=_load_inet_text):
    """Load inet in text format as an Address (no mask) or an Interface."""


class InetBinaryLoader(FunctionLoader, function=_load_inet_binary, format=Format.BINARY):
    """Load inet in binary format as an Address (full mask) or an Interface."""


class CidrLoader(FunctionLoader, function=_load_cidr_text):
    """Load cidr in text format as a Network."""


class CidrBinaryLoader(FunctionLoader, function=_load_cidr_binary, format=Format.BINARY):
    """Load cidr in binary format as a Network."""


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Register the inet/cidr adapters on *adapters* (text is the ``%s`` choice)."""
    register_dumpers(
        adapters,
        [
            (IPv4Address, AddressBinaryDumper, InetDumper),
            (IPv6Address, AddressBinaryDumper, InetDumper),
            (IPv4Interface, InterfaceBinaryDumper, InetDumper),
            (IPv6Interface, InterfaceBinaryDumper, InetDumper),
            (IPv4Network, NetworkBinaryDumper, CidrDumper),
            (IPv6Network, NetworkBinaryDumper, CidrDumper),
        ],
    )
    register_loaders(
        adapters,
        [(INET_OID, InetLoader, InetBinaryLoader), (CIDR_OID, CidrLoader, CidrBinaryLoader)],
    )

"""The description of a result column, as DB-API's 7-item sequences.

Must not: do I/O; it only reads the fields of a result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .pq import PGresult

_NUMERIC_OID = 1700
_VARLENA_WITH_LENGTH = {1042, 1043}  # bpchar, varchar: typmod is length + 4


class Column:
    """One column of a result: ``name``, ``type_code`` and the DB-API sizes.

    Compares and unpacks like the 7-item sequence of the DB-API.
    """

    __slots__ = ("name", "type_code", "display_size", "internal_size", "precision", "scale")

    def __init__(self, result: PGresult, index: int, encoding: str):
        raw_name = result.fname(index)
        self.name = raw_name.decode(encoding, "replace") if raw_name is not None else ""
        self.type_code = result.ftype(index)
        fsize = result.fsize(index)
        fmod = result.fmod(index)
        self.internal_size: int | None = fsize if fsize >= 0 else None
        self.display_size: int | None = None
        self.precision: int | None = None
        self.scale: int | None = None
        if self.type_code == _NUMERIC_OID and fmod >= 4:
            self.precision = ((fmod - 4) >> 16) & 0xFFFF
            self.scale = (fmod - 4) & 0xFFFF
            self.display_size = self.precision
        elif self.type_code in _VARLENA_WITH_LENGTH and fmod >= 4:
            self.display_size = fmod - 4

    def _as_tuple(self) -> tuple[Any, ...]:
        return (
            self.name,
            self.type_code,
            self.display_size,
            self.internal_size,
            self.precision,
            self.scale,
            None,
        )

    @property
    def null_ok(self) -> None:
        """Unknown for PostgreSQL results: always None."""
        return None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._as_tuple())

    def __len__(self) -> int:
        return 7

    def __getitem__(self, index: int) -> Any:
        return self._as_tuple()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Column):
            return self._as_tuple() == other._as_tuple()
        if isinstance(other, tuple):
            return self._as_tuple() == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._as_tuple())

    def __repr__(self) -> str:
        return f"<Column {self.name!r}, type_code={self.type_code}>"

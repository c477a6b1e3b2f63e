"""How many libpq objects the binding holds right now, per kind.

Every wrapper that owns a libpq pointer counts itself when made and when it
frees the pointer (``PQfinish``, ``PQclear``, ``PQfreeCancel``), so a test can
prove that every object made was freed exactly once, on every path, errors
and interruptions included (see ``live_objects()``).

The counters are ``itertools.count`` objects: ``next()`` on one is a single C
call, atomic under the GIL, so threads freeing objects at once never lose a
count, and it costs next to nothing on the path of every query.
"""

from __future__ import annotations

import itertools

__all__ = ["live_objects"]


class _Tally:
    __slots__ = ("made", "freed")

    def __init__(self) -> None:
        self.made = itertools.count()
        self.freed = itertools.count()


PGCONN = _Tally()
PGRESULT = _Tally()
PGCANCEL = _Tally()


def _value(counter: itertools.count[int]) -> int:
    # repr() is "count(N)": the one way to read a count without advancing it.
    return int(repr(counter)[6:-1])


def live_objects() -> dict[str, int]:
    """Return the number of made-and-not-yet-freed objects, per kind.

    Keys: ``"PGconn"``, ``"PGresult"`` (owned results only: the notices
    libpq lends are not ours to free), ``"PGcancel"``. A connection dropped
    in a forked child without ``PQfinish`` (it belongs to the parent) counts
    as released.
    """
    return {
        name: _value(tally.made) - _value(tally.freed)
        for name, tally in (("PGconn", PGCONN), ("PGresult", PGRESULT), ("PGcancel", PGCANCEL))
    }

"""Adapters of hstore, registered from the server's catalog.

Must not: talk to libpq or import any concurrency framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._adapt.adapters_map import AdaptersMap


def register_default_adapters(adapters: AdaptersMap) -> None:
    """Install the default dumpers and loaders of this family on *adapters*."""

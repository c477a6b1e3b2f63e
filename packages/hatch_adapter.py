"""The build hook of the three adapters: their version is the core's, and they pin the core to it.

Not a module of any distribution: hatchling runs it while building
psycopg3-sync, psycopg3-asyncio or psycopg3-trio. The core's ``_version.py``
is the one place where the project's version is written; an adapter is
always released with, and depends on, the very same core
(``psycopg3-core==<version>``, plus the ``extra-dependencies`` of its
``[tool.hatch.metadata.hooks.custom]`` table).

Why a custom hook, written here once: hatchling's built-in version source
could read the core's file, but no built-in option can write that version
into a dependency, so a metadata hook is needed. Hatchling loads a hook from
a path inside the project, so each adapter keeps a ``hatch_build.py`` of
two statements that runs this file; this file is the only place holding the
logic. Symlinks would avoid those two statements, but break on checkouts
without symlink support (git on Windows, by default).

An sdist builds alone: hatchling (1.22 and later, hence the adapters'
``build-system.requires``) takes the version and the dependencies of a
project built from an sdist from its ``PKG-INFO``, so there this hook is
loaded but never called; the sdist carries a copy of this file next to
``hatch_build.py`` (``force-include`` in each adapter's pyproject.toml) only
so that it can be loaded.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface


def core_version(adapter_root: str) -> str:
    """Return the version written in the core's ``_version.py``, next to the adapter."""
    path = Path(adapter_root).parent / "psycopg3-core" / "src" / "psycopg3" / "_version.py"
    if not path.is_file():
        raise RuntimeError(
            f"cannot find the psycopg3-core version in {path}: build an adapter from the"
            " repository, or from its sdist with hatchling >= 1.22 (which reads PKG-INFO)"
        )
    match = re.search(r'__version__ = "([^"]+)"', path.read_text())
    if not match:
        raise RuntimeError(f'no __version__ = "..." line in {path}')
    return match.group(1)


class AdapterMetadataHook(MetadataHookInterface):
    """Set the adapter's version and dependencies from the core's version."""

    def update(self, metadata: dict[str, Any]) -> None:
        version = core_version(self.root)
        metadata["version"] = version
        extra = list(self.config.get("extra-dependencies", []))
        metadata["dependencies"] = [f"psycopg3-core=={version}", *extra]

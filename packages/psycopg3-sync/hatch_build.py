"""Build hook: take the version from psycopg3-core and pin the core to it.

The core's ``_version.py`` is the one place where the version is written; an
adapter is always released with, and depends on, the exact same core.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

HERE = Path(__file__).parent
CORE_VERSION_FILE = HERE.parent / "psycopg3-core" / "src" / "psycopg3" / "_version.py"
# Copied next to this file when an sdist is built, so the sdist builds alone.
LOCAL_VERSION_FILE = HERE / "_core_version.py"


def read_core_version() -> str:
    for candidate in (CORE_VERSION_FILE, LOCAL_VERSION_FILE):
        if candidate.exists():
            match = re.search(r'__version__ = "([^"]+)"', candidate.read_text())
            if match:
                return match.group(1)
    raise RuntimeError(f"cannot find the psycopg3-core version in {CORE_VERSION_FILE}")


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        version = read_core_version()
        metadata["version"] = version
        extra = list(self.config.get("extra-dependencies", []))
        metadata["dependencies"] = [f"psycopg3-core=={version}", *extra]

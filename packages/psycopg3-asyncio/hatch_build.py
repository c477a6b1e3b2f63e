"""This adapter's build hook: the one the three adapters share, ``packages/hatch_adapter.py``."""

from __future__ import annotations

from pathlib import Path
from runpy import run_path

# One folder up in the repository; an sdist carries a copy next to this file.
_shared = next(
    p / "hatch_adapter.py" for p in Path(__file__).parents[:2] if (p / "hatch_adapter.py").exists()
)
AdapterMetadataHook = run_path(str(_shared))["AdapterMetadataHook"]

"""The four distributions build as wheels that declare what they need.

Each adapter pins the core at the very same version (one version for the
project, written in the core), declares its framework, and ships
``py.typed``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import psycopg3

ROOT = Path(__file__).parent.parent
DISTS = {
    "psycopg3-core": ("psycopg3", []),
    "psycopg3-sync": ("psycopg3_sync", []),
    "psycopg3-asyncio": ("psycopg3_asyncio", []),
    "psycopg3-trio": ("psycopg3_trio", ["trio"]),
}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    packages = [str(ROOT / "packages" / name) for name in DISTS]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(out), *packages],
        check=True,
        capture_output=True,
    )
    found = {}
    for wheel in out.glob("*.whl"):
        dist = wheel.name.split("-")[0].replace("_", "-")
        found[dist] = wheel
    assert set(found) == set(DISTS)
    return found


@pytest.mark.parametrize("dist", list(DISTS))
def test_wheel_metadata(wheels: dict[str, Path], dist: str) -> None:
    package, frameworks = DISTS[dist]
    with zipfile.ZipFile(wheels[dist]) as zf:
        names = zf.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(zf.read(metadata_name).decode())
    assert metadata["Version"] == psycopg3.__version__
    assert f"{package}/py.typed" in names
    assert f"{package}/__init__.py" in names
    requires = metadata.get_all("Requires-Dist") or []
    if dist == "psycopg3-core":
        assert requires == []
    else:
        assert f"psycopg3-core=={psycopg3.__version__}" in requires
        for framework in frameworks:
            assert any(r.startswith(framework) for r in requires), requires
    # Nothing of the tests or the tools leaks into a wheel.
    assert not any(n.startswith(("tests/", "tools/")) for n in names)

"""The four distributions build as wheels that declare what they need.

Each adapter pins the core at the very same version (one version for the
project, written in the core), declares its framework, and ships
``py.typed``; its sdist builds the same wheel away from the repository.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
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


def wheel_metadata(wheel: Path) -> tuple[list[str], Message]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        return names, Parser().parsestr(zf.read(metadata_name).decode())


@pytest.mark.parametrize("dist", list(DISTS))
def test_wheel_metadata(wheels: dict[str, Path], dist: str) -> None:
    package, frameworks = DISTS[dist]
    names, metadata = wheel_metadata(wheels[dist])
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


@pytest.mark.parametrize("dist", ["psycopg3-sync", "psycopg3-trio"])
def test_adapter_sdist_builds_alone(tmp_path: Path, dist: str) -> None:
    # An adapter's sdist, unpacked away from the repository (no core next to
    # it), still builds a wheel pinning the core: its build hook is shared
    # with the other adapters (packages/hatch_adapter.py), and travels in it.
    build = [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)]
    subprocess.run(build, cwd=ROOT / "packages" / dist, check=True, capture_output=True)
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        # The "data" filter where this Python has it (3.10.12+), which warns without it.
        tf.extractall(
            tmp_path / "alone", **({"filter": "data"} if hasattr(tarfile, "data_filter") else {})
        )
    (unpacked,) = (tmp_path / "alone").iterdir()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path / "wheel"), str(unpacked)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    _, metadata = wheel_metadata(wheel)
    assert metadata["Version"] == psycopg3.__version__
    requires = metadata.get_all("Requires-Dist") or []
    assert f"psycopg3-core=={psycopg3.__version__}" in requires
    for framework in DISTS[dist][1]:
        assert any(r.startswith(framework) for r in requires), requires

"""Root of the test suite: loads the fixture modules, one per concern.

Fixtures live in ``tests/fix_<concern>.py`` and every such file is loaded as a
plugin from here, so adding one needs no edit to this file. The pytest
configuration (root ``pyproject.toml``) puts ``tests/`` and ``tools/`` on
``sys.path``: fixture modules import as ``fix_db``, the cluster helper as
``pgcluster``; ``tests`` itself need not be a package.
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted(path.stem for path in Path(__file__).parent.glob("fix_*.py"))

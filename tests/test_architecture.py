"""The shape rules that matter (no import cycles, errors as a leaf, layers), held by import-linter."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    """`lint-imports` with the contracts of pyproject.toml ([tool.importlinter])."""
    command = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    result = subprocess.run([command], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_feature_that_keeps_personal_data_forgets_it_with_an_erased_national(app):
    """Erasure reaches exposure rows and welfare records through hooks those features register, so that
    nationals depend on neither; a feature that stopped registering would keep what it holds."""
    from registry.nationals.services import ERASURE_HOOKS
    assert {f"{hook.__module__}.{hook.__name__}" for hook in ERASURE_HOOKS} >= {
        "registry.crises.services._forget_exposures", "registry.rosters.services._forget_welfare"}

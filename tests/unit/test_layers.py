"""The house's rules, checked: the layers (no module imports a layer above its own, and
the engine reaches no AWS library, even indirectly), and no module in `src/durable` over
the house's 500 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "durable"
MAX_MODULE_LINES = 500


def test_every_layer_imports_only_from_the_layers_below_it() -> None:
    # pyproject.toml's [tool.importlinter] contracts; the report names any broken import.
    # In a process of its own: import-linter configures logging, disabling other loggers.
    checked = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_no_module_is_longer_than_the_house_allows() -> None:
    lengths = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    too_long = {name: lines for name, lines in lengths.items() if lines > MAX_MODULE_LINES}
    assert too_long == {}

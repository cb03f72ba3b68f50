"""The package's shape: sub-packages read as the pipeline, each importing only those below it,
and no module grows past what a maintainer reads in one sitting."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "s2s"

# Lowest first: a sub-package may import itself and those before it, never one after it.
LAYERS = (
    "config",
    "text",
    "data",
    "models",
    "decoding",
    "evaluation",
    "training",
    "analysis",
    "serving",
    "cli",
)
MAX_LINES = 400


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


def s2s_imports(path: Path) -> set[str]:
    """The ``s2s`` sub-packages a module imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "s2s" and len(parts) > 1 and parts[1] in LAYERS:
                found.add(parts[1])
    return found


def test_every_subpackage_is_a_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert subpackages == set(LAYERS)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_module_imports_only_its_own_layer_and_those_below(path):
    own = path.relative_to(PACKAGE).parts[0]
    above = {name for name in s2s_imports(path) if LAYERS.index(name) > LAYERS.index(own)}
    assert not above, f"s2s/{path.relative_to(PACKAGE)} ({own}) imports {sorted(above)}"


def test_text_and_data_never_import_models_decoding_training_or_serving():
    forbidden = {"models", "decoding", "training", "serving"}
    for path in modules():
        if path.relative_to(PACKAGE).parts[0] in ("text", "data"):
            assert not s2s_imports(path) & forbidden, path


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_400_lines(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"s2s/{path.relative_to(PACKAGE)} has {lines} lines"


def test_the_layer_check_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from s2s.serving import export\n", encoding="utf-8")
    assert s2s_imports(module) == {"serving"}

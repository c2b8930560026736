"""Import contracts, checked on the source (every import statement, however deep):

- ``cifar_gui.engine`` (and the headless ``cli`` and ``config``) never import Qt or pyqtgraph,
  anywhere, so the engine runs without a display or Qt installed;
- ``cifar_gui.gui`` never imports Keras or TensorFlow at module level, directly or through a
  module it imports at module level, so the window appears before TensorFlow has loaded
  (seconds); imports inside functions (jobs on worker threads) are allowed;
- the engine modules the window imports (records, run lists, checkpoint state, the runner and
  model-service fronts, events, plots) load neither Keras nor TensorFlow on import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cifar_gui"
QT = ("PySide6", "shiboken6", "pyqtgraph")
HEAVY = ("tensorflow", "keras")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imported(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The absolute module names an import statement names (``from a import b``: a and a.b)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:  # relative: resolve against the importing module's package
        package = module.split(".")
        path = MODULES.get(module)
        if path is None or path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(module: str, *, top_level_only: bool, source: str | None = None) -> set[str]:
    """Every module ``module`` imports; with ``top_level_only``, only those imported when the
    module itself is imported (not inside functions or ``if TYPE_CHECKING:``). ``source``:
    the module's text, when it is not a file of the package."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(_imported(node, module))
            elif top_level_only:
                if isinstance(node, ast.If) and not _is_type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
                elif isinstance(node, ast.Try | ast.With | ast.ClassDef):
                    for field in ("body", "orelse", "finalbody"):
                        visit(getattr(node, field, []))
                    for handler in getattr(node, "handlers", []):
                        visit(handler.body)

    if top_level_only:
        visit(tree.body)
    else:
        found.update(
            name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for name in _imported(node, module)
        )
    return found


def loaded_on_import(module: str, source: str | None = None) -> set[str]:
    """Every module, ours and others', that importing ``module`` loads (statically)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        text = source if current == module else None
        for name in imports(current, top_level_only=True, source=text):
            # Importing a.b.c imports a and a.b first.
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in MODULES:
                    todo.append(prefix)
                elif not prefix.startswith("cifar_gui"):
                    seen.add(prefix)
    return seen


def _names(modules: set[str], roots: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in roots)


HEADLESS = [
    m
    for m in MODULES
    if m.startswith("cifar_gui.engine") or m in ("cifar_gui.cli", "cifar_gui.config")
]
GUI = [m for m in MODULES if m.startswith("cifar_gui.gui")]
KERAS_FREE = [
    "cifar_gui.config",
    "cifar_gui.plots",
    *(
        f"cifar_gui.engine.{name}"
        for name in (
            "checkpoints",
            "events",
            "files",
            "model_service",
            "predictions",
            "record",
            "runner",
            "runs",
        )
    ),
]


@pytest.mark.parametrize("module", HEADLESS)
def test_the_engine_never_imports_qt(module):
    assert not _names(imports(module, top_level_only=False), QT)


@pytest.mark.parametrize("module", GUI)
def test_the_gui_never_imports_keras_or_tensorflow_at_module_level(module):
    assert not _names(loaded_on_import(module), HEAVY)


@pytest.mark.parametrize("module", KERAS_FREE)
def test_engine_modules_the_window_uses_load_no_keras(module):
    assert not _names(loaded_on_import(module), HEAVY + QT)


def test_the_checker_sees_imports_inside_functions_and_through_other_modules():
    """The contracts above can fail: the walker finds a Qt import inside a function and a
    TensorFlow import through another of our modules, and a ``TYPE_CHECKING`` block or a
    function body does not count as loaded on import."""
    probe = "cifar_gui.gui._contract_probe"
    source = (
        "from typing import TYPE_CHECKING\n"
        "from cifar_gui.engine.training import run\n"
        "if TYPE_CHECKING:\n    import keras\n"
        "def job():\n    import PySide6.QtCore\n"
    )
    assert _names(imports(probe, top_level_only=False, source=source), QT) == ["PySide6.QtCore"]
    assert not _names(imports(probe, top_level_only=True, source=source), HEAVY + QT)
    assert "tensorflow" in loaded_on_import(probe, source)  # through engine.training.run

"""Import contracts, checked on the source (every import statement, however deep):

- ``cifar_gui.engine`` (and the headless ``cli`` and ``config``) never import Qt or pyqtgraph,
  anywhere, so the engine runs without a display or Qt installed;
- ``cifar_gui.gui`` never imports Keras or TensorFlow at module level, directly or through a
  module it imports at module level, so the window appears before TensorFlow has loaded
  (seconds);
- the window (``cifar_gui.gui``, ``cifar_gui.app``, ``cifar_gui.selftest``) imports no engine
  module that loads Keras or TensorFlow, not even inside a function (a job on a worker thread
  runs in the window's process too): what needs TensorFlow is asked of the engine service,
  whose child process imports it (``engine/service/handler.py``, reached only from the
  service's child entry point, as the training run's child imports ``training``);
- the engine modules the window imports (records, run lists, checkpoint state, the runner and
  engine-service fronts, events, plots) load neither Keras nor TensorFlow on import;
- no import cycle anywhere in ``cifar_gui`` (an import inside a function counts: it is still
  a dependency; ``if TYPE_CHECKING:`` imports do not);
- the layers hold, each importing only its own and those below it: *base* (``cifar_gui``,
  ``config``, ``plots``, ``resources``, ``settings``, ``tutorial``, ``variant_style``) <
  *engine* < *cli*, *gui* (neither imports the other) < *entry points* (``app``,
  ``__main__``, ``selftest``).

``tests/gui/test_no_tensorflow_in_window.py`` checks the window's process itself at run time.
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


def imports(
    module: str, *, top_level_only: bool, type_checking: bool = False, source: str | None = None
) -> set[str]:
    """Every module ``module`` imports; with ``top_level_only``, only those imported when the
    module itself is imported (not inside functions); ``if TYPE_CHECKING:`` blocks count only
    with ``type_checking``. ``source``: the module's text, when it is not a file of the
    package."""
    tree = ast.parse(MODULES[module].read_text() if source is None else source)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(_imported(node, module))
        elif isinstance(node, ast.If) and _is_type_checking(node):
            for child in [*(node.body if type_checking else []), *node.orelse]:
                visit(child)
        elif not (
            top_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        ):
            for child in ast.iter_child_nodes(node):
                visit(child)

    visit(tree)
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


CLI = ("cifar_gui.cli", "cifar_gui.cli_args", "cifar_gui.cli_progress")  # the headless front
HEADLESS = [
    m for m in MODULES if m.startswith("cifar_gui.engine") or m in (*CLI, "cifar_gui.config")
]
GUI = [m for m in MODULES if m.startswith("cifar_gui.gui")]
KERAS_FREE = [
    "cifar_gui.config",
    "cifar_gui.plots",
    *(
        f"cifar_gui.engine.{name}"
        for name in (
            "training.checkpoints",
            "events",
            "files",
            "service",
            "service.client",
            "service.replies",
            "models.predictions",
            "record",
            "training.runner",
            "study.runs",
            "study.run_folders",
            "data.dataset",
        )
    ),
]


@pytest.mark.parametrize("module", HEADLESS)
def test_the_engine_never_imports_qt(module):
    assert not _names(imports(module, top_level_only=False, type_checking=True), QT)


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
    found = imports(probe, top_level_only=False, type_checking=True, source=source)
    assert _names(found, QT) == ["PySide6.QtCore"]
    assert not _names(imports(probe, top_level_only=True, source=source), HEAVY + QT)
    assert "tensorflow" in loaded_on_import(probe, source)  # through engine.training.run


def dependencies(module: str, source: str | None = None) -> set[str]:
    """Our modules that ``module`` imports anywhere (inside functions too), named as written:
    ``from a.b import c`` depends on ``a.b`` (and on ``a.b.c`` when that is a module)."""
    found = imports(module, top_level_only=False, source=source)
    return {name for name in found if name in MODULES} - {module}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def connect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                connect(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)

    def cycle_through(group: list[str]) -> list[str]:  # the shortest way back to the first
        start, members = group[0], set(group)
        paths, seen = [[start]], {start}
        while paths:
            path = paths.pop(0)
            for other in sorted(graph[path[-1]] & members):
                if other == start:
                    return [*path, start]
                if other not in seen:
                    seen.add(other)
                    paths.append([*path, other])
        raise AssertionError(f"no cycle in {group}")

    return [cycle_through(group) for group in groups]


def test_no_import_cycles():
    graph = {module: dependencies(module) for module in MODULES}
    cycles = [" -> ".join(cycle) for cycle in find_cycles(graph)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_cycle_finder_finds_cycles_and_only_those():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d", "f"}, "f": {"e"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"], ["e", "f", "e"]]
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


WINDOW = [*GUI, "cifar_gui.app", "cifar_gui.selftest"]


def heavy_imports(module: str, source: str | None = None) -> list[str]:
    """What ``module`` imports anywhere that loads Keras or TensorFlow: each as
    ``"name (loads tensorflow, ...)"``."""
    found = []
    for name in sorted(imports(module, top_level_only=False, source=source)):
        loaded = loaded_on_import(name) if name in MODULES else {name}
        heavy = sorted({n.split(".")[0] for n in _names(loaded, HEAVY)})
        if heavy:
            found.append(f"{name} (loads {', '.join(heavy)})")
    return found


@pytest.mark.parametrize("module", WINDOW)
def test_the_window_imports_no_module_that_loads_tensorflow(module):
    assert heavy_imports(module) == []


def test_the_window_contract_sees_an_import_inside_a_job():
    probe = "cifar_gui.gui._contract_probe"
    job = "def job():\n    from cifar_gui.engine.data.augment import preview_augmentations\n"
    assert heavy_imports(probe, job) == ["cifar_gui.engine.data.augment (loads tensorflow)"]
    asked = "def job():\n    from cifar_gui.engine.service import EngineService\n"
    assert heavy_imports(probe, asked) == []


BASE = tuple(
    f"cifar_gui{name}" for name in ("", ".config", ".plots", ".resources", ".settings", ".tutorial")
)
ENTRY_POINTS = ("cifar_gui.app", "cifar_gui.__main__", "cifar_gui.selftest")
BELOW = {  # what each layer may import besides itself
    "base": (),
    "engine": ("base",),
    "cli": ("base", "engine"),
    "gui": ("base", "engine"),
    "entry points": ("base", "engine", "cli", "gui"),
}


def layer(module: str) -> str:
    if module in (*BASE, "cifar_gui.variant_style"):
        return "base"
    if module in ENTRY_POINTS:
        return "entry points"
    if module in CLI:
        return "cli"
    area = module.split(".")[1]
    assert area in ("engine", "gui"), f"{module}: in no layer (add it to one)"
    return area


@pytest.mark.parametrize("module", list(MODULES))
def test_each_layer_imports_only_itself_and_those_below(module):
    own = layer(module)
    wrong = sorted(d for d in dependencies(module) if layer(d) not in (own, *BELOW[own]))
    assert not wrong, f"{module} ({own}) imports {wrong}"


def test_the_layer_check_sees_the_engine_importing_the_window():
    probe = "cifar_gui.engine._contract_probe"
    source = "def f():\n    from cifar_gui.gui.state import AppState\n"
    assert dependencies(probe, source) == {"cifar_gui.gui.state"}
    assert layer("cifar_gui.gui.state") not in ("engine", *BELOW["engine"])

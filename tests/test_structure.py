"""The project's shape: imports flow one way (webapp -> core, training -> core, export -> training -> core), no
import cycles, no module over 400 lines.

Imports are read from the syntax tree: module level and inside functions alike (a lazy import is still a
dependency), and a string naming a project module (``importlib.import_module("training.train")``) counts too.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "training", "export", "webapp")
FORBIDDEN = {
    "core": {"training", "export", "webapp"},
    "webapp": {"training", "export"},
    "training": {"export", "webapp"},
}
MAX_LINES = 400


def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the four packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module ``name`` imports or names in a string."""
    targets = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value
            and " " not in node.value
        ):
            targets.append(node.value)  # a dotted name in a string: perhaps a module imported by name
    found = set()
    for target in targets:
        parts = target.split(".")
        if parts[0] not in PACKAGES:
            continue
        while parts and ".".join(parts) not in known:  # the longest module the name lies in
            parts.pop()
        if parts and ".".join(parts) != name:
            found.add(".".join(parts))
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {
        name: imports(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", set(modules))
        for name, path in modules.items()
    }


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module: the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_the_reader_sees_lazy_and_string_named_imports():
    source = (
        "import importlib\n"
        "from .runtime import load_model\n"
        "def run():\n"
        "    from training.evaluation import protocol\n"
        "    return importlib.import_module('export.cli')\n"
    )
    known = {
        "core.cli",
        "core.runtime",
        "training",
        "training.evaluation",
        "training.evaluation.protocol",
        "export.cli",
    }
    assert imports("core.cli", source, False, known) == {
        "core.runtime",
        "training.evaluation",
        "training.evaluation.protocol",
        "export.cli",
    }


def test_imports_flow_one_way(graph):
    wrong = [
        f"{module} imports {target}"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if target.split(".")[0] in FORBIDDEN.get(module.split(".")[0], ())
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles(graph):
    assert not strongly_connected(graph)


def test_no_python_file_outside_tests_is_over_400_lines():
    files = [p for p in ROOT.rglob("*.py") if not {"tests", ".venv", ".git"} & set(p.relative_to(ROOT).parts)]
    long = {
        str(p.relative_to(ROOT)): n for p in files if (n := p.read_text(encoding="utf-8").count("\n") + 1) > MAX_LINES
    }
    assert files and not long, long

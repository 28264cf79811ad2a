"""The project's shape: imports flow one way (webapp -> core, training -> core, export -> training, core), no
import cycles, no module over 400 lines (JavaScript included), no function over 80 lines.

Imports are read from the syntax tree: module level and inside functions alike (a lazy import is still a
dependency), and a string naming a project module counts too: a dotted name anywhere
(``"training.train"``, an entry point's ``"export.cli:register"``), or any name given to an import function
(``importlib.import_module("training")``). Nothing imports export: the command line finds its sub-command through
its entry point in pyproject.toml.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "training", "export", "webapp")
FORBIDDEN = {
    "core": {"training", "export", "webapp"},
    "webapp": {"training", "export"},
    "training": {"export", "webapp"},
    "export": {"webapp"},
}
IMPORTERS = {"import_module", "__import__", "find_spec", "import_string", "load_entry_point"}
DOTTED = re.compile(r"\w+(\.\w+)+(:\w+)?")  # "training.train", "export.cli:register"
MAX_LINES = 400
MAX_FUNCTION_LINES = 80
SKIPPED = {"tests", ".venv", ".git", "node_modules"}


def project_modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the four packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def named_modules(tree: ast.AST) -> list[str]:
    """Module names in strings: dotted ones (``a.b``, ``a.b:attr``) anywhere, and any string an import function is
    given (``import_module("training")``)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func in IMPORTERS and node.args and isinstance(node.args[0], ast.Constant):
                names.append(str(node.args[0].value))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"\w+(\.\w+)+(:\w+)?", node.value)
        ):
            names.append(node.value.split(":")[0])
    return names


def imports(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules that module ``name`` imports or names in a string."""
    tree = ast.parse(source)
    targets = named_modules(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
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
        "LOADER = 'webapp.files:owner'\n"
        "def run():\n"
        "    from training.evaluation import protocol\n"
        "    importlib.import_module('training')\n"
        "    parser.add_parser('export')  # a sub-command's name, not a module\n"
        "    return importlib.import_module('export.cli')\n"
    )
    known = {
        "core.cli",
        "core.runtime",
        "training",
        "training.evaluation",
        "training.evaluation.protocol",
        "export",
        "export.cli",
        "webapp",
        "webapp.files",
    }
    assert imports("core.cli", source, False, known) == {
        "core.runtime",
        "training",
        "training.evaluation",
        "training.evaluation.protocol",
        "export.cli",
        "webapp.files",
    }


def test_nothing_imports_export_but_its_entry_point(graph):
    into_export = sorted(f"{m} imports {t}" for m, ts in graph.items() for t in ts if t.split(".")[0] == "export")
    assert not [line for line in into_export if not line.startswith("export")], into_export
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^export = "export\.cli:register"$', pyproject, re.MULTILINE)


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


def source_files(suffix: str) -> list[Path]:
    return [p for p in ROOT.rglob(f"*{suffix}") if not SKIPPED & set(p.relative_to(ROOT).parts)]


@pytest.mark.parametrize("suffix", [".py", ".js"])
def test_no_file_outside_tests_is_over_400_lines(suffix):
    files = source_files(suffix)
    long = {
        str(p.relative_to(ROOT)): n for p in files if (n := p.read_text(encoding="utf-8").count("\n") + 1) > MAX_LINES
    }
    assert files and not long, long


def long_functions() -> dict[str, int]:
    """``path::name`` -> lines, of every Python and JavaScript function outside tests over MAX_FUNCTION_LINES."""
    found = {}
    for path in source_files(".py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[f"{path.relative_to(ROOT)}::{node.name}"] = node.end_lineno - node.lineno + 1
    for path in source_files(".js"):
        for name, lines in js_functions(path.read_text(encoding="utf-8")).items():
            found[f"{path.relative_to(ROOT)}::{name}"] = lines
    return {where: n for where, n in found.items() if n > MAX_FUNCTION_LINES}


def js_functions(source: str) -> dict[str, int]:
    """Lines of each named ``function`` declaration of a script (its braces counted; the scripts keep braces out of
    strings, so counting them is enough)."""
    lines, out = source.split("\n"), {}
    for start, line in enumerate(lines):
        declared = re.match(r"\s*(?:async\s+)?function\s+(\w+)", line)
        if not declared:
            continue
        depth, seen = 0, False
        for end in range(start, len(lines)):
            depth += lines[end].count("{") - lines[end].count("}")
            seen = seen or "{" in lines[end]
            if seen and depth <= 0:
                out[declared.group(1)] = end - start + 1
                break
    return out


def test_the_function_reader_counts_python_and_javascript():
    js = "function short() {\n  return 1;\n}\nasync function longer(a) {\n  if (a) {\n    a();\n  }\n}\n"
    assert js_functions(js) == {"short": 3, "longer": 5}


def test_no_function_outside_tests_is_over_80_lines():
    long = long_functions()
    assert not long, long

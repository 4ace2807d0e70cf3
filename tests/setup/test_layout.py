"""The layout ARCHITECTURE.md promises, read from the source with ``ast``.

* optimkit imports NumPy and the standard library only (scikit-learn lazily, for the digits);
* imports go one way: optimkit never imports descent or autograder, descent never imports
  autograder, and a chapter module of descent imports earlier chapters only;
* no private name crosses a module boundary (``from m import _x`` or ``m._x`` on a project
  module), in the packages, the tests and the benchmarks;
* names line up: each chapter has its descent module and its test file, each assignment its
  checks module.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"optimkit": ROOT / "optimkit", "descent": ROOT / "book" / "descent",
            "autograder": ROOT / "autograder"}
STDLIB = set(sys.stdlib_module_names) | {"__future__"}


def module_name(path: Path) -> str:
    for package, folder in PACKAGES.items():
        if path.is_relative_to(folder):
            parts = path.relative_to(folder).with_suffix("").parts
            return ".".join((package, *parts)).removesuffix(".__init__")
    return path.stem


def resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def is_project(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def imports(source: str, current: str, is_package: bool = False) -> list[tuple[str, int, bool]]:
    """``(module, line, lazy)`` for every import; lazy means inside a function."""
    found = []
    tree = ast.parse(source)
    lazy_lines = {n.lineno for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, node.lineno in lazy_lines) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = resolve(node, current, is_package)
            found.append((module, node.lineno, node.lineno in lazy_lines))
            # `from optimkit import rules` imports the module optimkit.rules too
            found += [(f"{module}.{a.name}", node.lineno, node.lineno in lazy_lines)
                      for a in node.names if is_project(module)]
    return found


def private_crossings(source: str, current: str, is_package: bool = False) -> list[str]:
    """Each use of another project module's private name, as ``line: what``."""
    tree = ast.parse(source)
    aliases = {}   # local name -> project module it is bound to
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if is_project(a.name):
                    aliases[a.asname or a.name.split(".")[0]] = a.asname and a.name or a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            module = resolve(node, current, is_package)
            if not is_project(module) or module == current:
                continue
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__"):
                    problems.append(f"{node.lineno}: from {module} import {a.name}")
                aliases[a.asname or a.name] = f"{module}.{a.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in aliases and aliases[node.value.id] != current):
            problems.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return problems


def python_files():
    for folder in (*PACKAGES.values(), ROOT / "tests", ROOT / "benchmarks", ROOT / "tools"):
        yield from sorted(folder.rglob("*.py"))


def test_optimkit_imports_numpy_and_the_standard_library_only():
    bad = []
    for path in sorted(PACKAGES["optimkit"].rglob("*.py")):
        name = module_name(path)
        for module, line, lazy in imports(path.read_text(), name, path.name == "__init__.py"):
            top = module.split(".")[0]
            if top in STDLIB or top in ("numpy", "optimkit"):
                continue
            if top == "sklearn" and lazy and path.name == "digits.py":
                continue
            bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


# optimkit never imports torch (the book and the grader do; requirements.txt says why)
@pytest.mark.parametrize("package, forbidden", [("optimkit", ("descent", "autograder", "torch")),
                                                ("descent", ("autograder",))])
def test_imports_go_one_way(package, forbidden):
    bad = []
    for path in sorted(PACKAGES[package].rglob("*.py")):
        for module, line, _ in imports(path.read_text(), module_name(path), path.name == "__init__.py"):
            if module.split(".")[0] in forbidden:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert bad == []


def test_a_chapter_module_imports_earlier_chapters_only():
    bad = []
    for path in sorted(PACKAGES["descent"].glob("ch[0-9][0-9]_*.py")):
        number = int(path.name[2:4])
        for module, line, _ in imports(path.read_text(), module_name(path)):
            hit = re.fullmatch(r"descent\.ch(\d\d)_\w+", module)
            if hit and int(hit.group(1)) >= number:
                bad.append(f"{path.name}:{line} imports {module}")
    assert bad == []


def test_no_private_name_crosses_a_module_boundary():
    bad = []
    for path in python_files():
        for problem in private_crossings(path.read_text(), module_name(path), path.name == "__init__.py"):
            bad.append(f"{path.relative_to(ROOT)}:{problem}")
    assert bad == []


def test_names_line_up():
    missing = []
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]-*.md")):
        stem = "ch" + chapter.stem.replace("-", "_")
        for need in (PACKAGES["descent"] / f"{stem}.py", ROOT / "tests" / "book" / f"test_{stem}.py"):
            if not need.is_file():
                missing.append(f"{chapter.name} has no {need.relative_to(ROOT)}")
    for assignment in sorted(d for d in (ROOT / "solutions").iterdir() if d.is_dir()):
        need = PACKAGES["autograder"] / "checks" / f"a{assignment.name}.py"
        if not need.is_file():
            missing.append(f"solutions/{assignment.name} has no {need.relative_to(ROOT)}")
    assert missing == []


def test_negative_controls_each_rule_can_fail():
    assert private_crossings("from optimkit import rules\nrules._hidden(1)\n", "descent.ch02_sgd") \
        == ["2: rules._hidden"]
    assert private_crossings("from .validate import _x\n", "optimkit.optim") \
        == ["1: from optimkit.validate import _x"]
    assert private_crossings("import optimkit.rules as r\nr._k\n", "tests") == ["2: r._k"]
    assert private_crossings("class A:\n    def f(self):\n        return self._x\n", "optimkit.optim") == []
    found = imports("from . import ch12_beyond\n", "descent.ch03_momentum")
    assert ("descent.ch12_beyond", 1, False) in found
    found = imports("def f():\n    import sklearn\n", "optimkit.digits")
    assert found == [("sklearn", 2, True)]

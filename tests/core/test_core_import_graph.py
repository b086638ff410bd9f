"""The one rule of dependencies, checked on the source: every import of every module under
packages/*/src, also those inside functions, and ``importlib.import_module("plait....")``
calls, points only at the package itself or the packages it declares.

zoo -> layers -> core; train -> optim -> core; tokenizers -> core.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"

ALLOWED = {
    "core": {"core"},
    "layers": {"core", "layers"},
    "optim": {"core", "optim"},
    "tokenizers": {"core", "tokenizers"},
    "train": {"core", "optim", "train"},
    "zoo": {"core", "layers", "zoo"},
}


def _imports(path: Path, src: Path) -> list[tuple[int, str]]:
    """``(line, dotted module)`` of every import in ``path`` under ``src`` (relative ones resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = path.relative_to(src).with_suffix("").parts[:-1]  # the package a module (or __init__) is in
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            out.append((node.lineno, module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            out.append((node.lineno, str(node.args[0].value)))
    return out


def _plait_target(module: str) -> str | None:
    match = re.match(r"plait\.([a-z_]+)", module)
    return match.group(1) if match else None


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_every_import_follows_the_dependency_rule(package):
    files = sorted((PACKAGES / package / "src").rglob("*.py"))
    assert files
    bad = []
    for path in files:
        for line, module in _imports(path, PACKAGES / package / "src"):
            target = _plait_target(module)
            if module == "plait" or (target is not None and target not in ALLOWED[package]):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not bad, f"plait-{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(bad)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_declared_dependencies_match_the_rule(package):
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((PACKAGES / package / "pyproject.toml").read_text())["project"]
    declared = {re.split(r"[=<>!~ \[]", d)[0] for d in project["dependencies"]}
    siblings = {d.removeprefix("plait-") for d in declared if d.startswith("plait-")}
    assert siblings == ALLOWED[package] - {package}


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """A lazy import buried in a function (as ``plait train`` once had in zoo) is found."""
    pkg = tmp_path / "plait" / "zoo" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text("def f():\n    import plait.train\n    from ..training import x\n"
                                "    from ...optim import AdamW\n    importlib.import_module('plait.tokenizers')\n")
    found = [m for _, m in _imports(pkg / "mod.py", tmp_path)]
    assert found == ["plait.train", "plait.zoo.training", "plait.optim", "plait.tokenizers"]
    assert {_plait_target(m) for m in found} - ALLOWED["zoo"] == {"train", "optim", "tokenizers"}


def test_relative_imports_are_resolved():
    path = PACKAGES / "zoo" / "src" / "plait" / "zoo" / "cli.py"
    modules = {m for _, m in _imports(path, PACKAGES / "zoo" / "src")}
    assert "plait.zoo.catalog" in modules and "plait.core" in modules
    init = PACKAGES / "zoo" / "src" / "plait" / "zoo" / "__init__.py"
    assert "plait.zoo.catalog" in {m for _, m in _imports(init, PACKAGES / "zoo" / "src")}

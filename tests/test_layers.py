"""The one-way pipeline: every module's imports, function-level ones included, go down the
layers of docs/design.md, never up and never in a circle.

The test reads the source (AST), so an import inside a function or a method counts like one at
the top; imports under `if TYPE_CHECKING:` (annotations only, never executed) do not.
"""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1] / "lazygrad"

# bottom up; a module may import its own layer's modules and those of lower layers. Packages
# listed together in one layer are siblings that must not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("version", "config", "dtypes", "counters", "target", "templating", "codehash"),
    ("ir",),
    ("runtime", "autodiff", "passes"),   # the device; gradient rules; backend decisions: each sees ir only
    ("scheduling",),
    ("codegen",),
    ("debug",),
    ("engine",),
    ("frontend",),
    ("nn", "optim", "lr_scheduler", "data", "utils"),
    ("distributed",),
    ("__init__", "dump"),                 # the facade and the command-line tool
]
SIBLINGS_MAY_IMPORT = {("nn", "optim"), ("optim", "lr_scheduler"), ("nn", "data"), ("utils", "data"),
                       ("data", "utils"), ("optim", "nn")}
# function-level imports of the project's own modules that stay, each with its reason (none)
FUNCTION_LEVEL_ALLOWED: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out["lazygrad." + ".".join(parts) if parts != ["__init__"] else "lazygrad"] = p
    return out


def _unit(mod: str) -> str:
    """The layer unit of a module: its top-level package or module under lazygrad."""
    return "__init__" if mod == "lazygrad" else mod.split(".")[1]


def _imports(mods: dict[str, Path]) -> list[tuple[str, str, bool, int]]:
    """(importer, imported module, at function level, line) for every import of the project."""
    out = []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        in_func: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                in_func.update(id(n) for n in ast.walk(fn))
        pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1]) + ("." + base if base else "")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                if t in mods and t != mod:
                    out.append((mod, t, id(node) in in_func, node.lineno))
    return out


def _layer_of() -> dict[str, int]:
    return {u: i for i, layer in enumerate(LAYERS) for u in layer}


def test_every_module_has_a_layer():
    layer = _layer_of()
    missing = sorted({_unit(m) for m in _modules()} - set(layer))
    assert not missing, f"modules without a layer in tests/test_layers.py LAYERS: {missing}"


def test_imports_go_down_the_layers():
    layer = _layer_of()
    bad = []
    for a, b, _, line in _imports(_modules()):
        ua, ub = _unit(a), _unit(b)
        if ua == ub:
            continue
        if layer[ub] > layer[ua]:
            bad.append(f"{a}:{line} imports {b} (layer {layer[ub]} above {layer[ua]})")
        elif layer[ub] == layer[ua] and (ua, ub) not in SIBLINGS_MAY_IMPORT:
            bad.append(f"{a}:{line} imports its sibling {b}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = nx.DiGraph()
    for a, b, _, _ in _imports(_modules()):
        g.add_edge(a, b)
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_no_function_level_imports_of_the_project():
    found = [(a, b, line) for a, b, f, line in _imports(_modules()) if f and (a, b) not in FUNCTION_LEVEL_ALLOWED]
    assert not found, "function-level imports (move them to the top, or explain them in FUNCTION_LEVEL_ALLOWED):\n" + \
        "\n".join(f"{a}:{line} -> {b}" for a, b, line in found)


def test_the_checker_sees_upward_and_function_level_imports(tmp_path, monkeypatch):
    # the test must be able to fail: a fake package whose ir imports the front end inside a function
    pkg = tmp_path / "lazygrad"
    (pkg / "ir").mkdir(parents=True)
    (pkg / "frontend").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ir" / "__init__.py").write_text("")
    (pkg / "frontend" / "__init__.py").write_text("")
    (pkg / "frontend" / "tensor.py").write_text("from lazygrad.ir import graph\n")
    (pkg / "ir" / "graph.py").write_text("def f():\n    from lazygrad.frontend.tensor import Tensor\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", pkg)
    edges = _imports(_modules())
    assert ("lazygrad.ir.graph", "lazygrad.frontend.tensor", True, 2) in edges
    assert ("lazygrad.frontend.tensor", "lazygrad.ir.graph", False, 1) in edges

"""The package's layers, read from its source. Its folders are its layers (README, Design): a layer imports
only from the layers above it, and from the package's top-level modules (errors, timings and the like). And:
no import cycles, readers that reach the store only through its one view (carrier_sla.store.view), the plan
of a run read back in one function, and argparse and printing in the CLI layer only."""

from __future__ import annotations

import ast
from pathlib import Path

import carrier_sla

PACKAGE = Path(carrier_sla.__file__).parent
LAYERS = ("plan", "inputs", "store", "engine", "readers", "portal", "synthetic", "cli")


def _imports(path: Path) -> set[str]:
    """Every carrier_sla module a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "carrier_sla":
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "carrier_sla")
    return found


def _layer_violations() -> list[str]:
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1 or parts[0] not in LAYERS:
            continue  # top-level modules: checked by the test below
        rank = LAYERS.index(parts[0])
        for module in _imports(path):
            names = module.split(".")
            if len(names) > 1 and names[1] in LAYERS and LAYERS.index(names[1]) > rank:
                problems.append(f"{path.relative_to(PACKAGE)} imports {module} (layer {names[1]} is below {parts[0]})")
    return problems


def test_every_module_sits_in_a_layer_folder():
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} >= set(LAYERS)
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(loose) <= 8, f"modules outside the layer folders: {loose}"


def test_a_layer_imports_only_from_layers_above_it():
    assert _layer_violations() == []


def test_top_level_helpers_import_no_layer():
    for path in PACKAGE.glob("*.py"):
        if path.name in ("__init__.py", "__main__.py", "api.py"):
            continue  # the public API and the entry point reach into the layers on purpose
        layered = [m for m in _imports(path) if len(m.split(".")) > 1 and m.split(".")[1] in LAYERS]
        assert layered == [], f"{path.name} imports {layered}"


def test_the_check_finds_a_violation(tmp_path, monkeypatch):
    """The layer check is not vacuous: a plan module importing the engine is reported."""
    fake = tmp_path / "carrier_sla"
    (fake / "plan").mkdir(parents=True)
    (fake / "plan" / "bad.py").write_text("from carrier_sla.engine import verdicts\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert sorted(_layer_violations()) == [
        "plan/bad.py imports carrier_sla.engine (layer engine is below plan)",
        "plan/bad.py imports carrier_sla.engine.verdicts (layer engine is below plan)",
    ]


READERS = ("readers",)  # the commands that read the store (report, package, explain, diff, what-if, history)
STORE_IO = {  # what a reader must not do to the store itself: StoreView does it
    "modules": {"pyarrow.parquet", "pyarrow.dataset"},
    "calls": {"iterdir", "glob", "rglob", "readlink", "resolve"},
    "layout": {"view_root", "read_provenance", "current_provenance", "published_periods", "CURRENT", "VIEW"},
}
# a reader's own output folder (not a store path) may be listed: package refuses a non-empty destination
ALLOWED_CALLS = {("readers/package.py", "iterdir")}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `name` imports, at module level or inside a function (a deferred import is still
    a dependency); imports under `if TYPE_CHECKING:` never run and do not count, nor `from carrier_sla import
    __version__` (a constant of the package root, whose other names are the lazy API)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for block in ast.walk(tree) if _type_checking(block) for n in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base == "carrier_sla" and {a.name for a in node.names} == {"__version__"}:
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m in known and m != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_cycle():
    """The cycle finder itself: a -> b -> c -> a is one cycle, d outside it."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}) == [["a", "b", "c"]]


def test_the_package_has_no_import_cycle():
    """No module of carrier_sla imports, directly or through others, a module that imports it back."""
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert len(graph) > 40 and graph["carrier_sla.readers.diff_report"] >= {"carrier_sla.readers.diff"}
    assert cycles(graph) == []


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def store_io(path: Path) -> list[str]:
    """What a module does to the store itself: Parquet and dataset imports, folder listings, the layout's paths."""
    offences = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            offences += [f"{_rel(path)}: import {a.name}" for a in node.names if a.name in STORE_IO["modules"]]
        elif isinstance(node, ast.ImportFrom) and node.module in STORE_IO["modules"]:
            offences.append(f"{_rel(path)}: from {node.module} import")
        elif isinstance(node, ast.ImportFrom) and node.module == "carrier_sla.store.layout":
            offences += [f"{_rel(path)}: layout.{a.name}" for a in node.names if a.name in STORE_IO["layout"]]
        elif isinstance(node, ast.Attribute):
            if node.attr in STORE_IO["calls"] and (_rel(path), node.attr) not in ALLOWED_CALLS:
                offences.append(f"{_rel(path)}:{node.lineno}: .{node.attr}")
            if node.attr in STORE_IO["layout"] and ast.unparse(node.value) in ("store", "storemod", "layout"):
                offences.append(f"{_rel(path)}:{node.lineno}: {ast.unparse(node)}")
    return offences


def test_readers_reach_the_store_only_through_its_view():
    """report, package, explain, diff, what-if and history never open Parquet files, list folders, resolve
    STORE/current or use the layout's path functions: they read through carrier_sla.store.view (which does
    all of that, as the check finds)."""
    readers = [p for n, p in modules().items() if n.startswith(tuple(f"carrier_sla.{x}." for x in READERS))]
    assert len(readers) >= 10
    assert [o for path in readers for o in store_io(path)] == []
    found = store_io(PACKAGE / "store" / "view.py")
    assert "store/view.py: import pyarrow.dataset" in found and any(".iterdir" in o for o in found)


def _functions_with_constant(value: str) -> set[str]:
    """module:function of every function whose code holds the string constant `value` (docstrings aside)."""
    found = set()
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Constant) and node.value == value:
                    found.add(f"{name}:{func.name}")
    return found


def test_the_plan_of_a_run_is_found_in_one_function():
    """runs/RUN_ID/plan.json is written by the pipeline and read back by store.view.recorded_plan alone
    (StoreView.plan calls it); no reader looks for a run's plan itself."""
    found = _functions_with_constant("plan.json")
    writers = {f for f in found if f.startswith("carrier_sla.engine.pipeline:")}
    assert len(writers) == 1 and found - writers == {"carrier_sla.store.view:recorded_plan"}
    assert "return recorded_plan(self.root" in (PACKAGE / "store" / "view.py").read_text()  # StoreView.plan


def test_a_store_view_and_a_table_read_are_defined_once():
    """open_store, StoreView and read_table (reading a published table) each have one definition in the package."""
    definitions: dict[str, list[str]] = {}
    for name, path in modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                definitions.setdefault(node.name, []).append(name)
    for wanted in ("open_store", "StoreView", "read_table"):
        assert definitions[wanted] == ["carrier_sla.store.view"], wanted


def test_argparse_and_printing_live_in_the_cli_layer():
    """No module outside carrier_sla.cli imports argparse, defines add_parser/command, or prints (the run log's
    console lines aside: it writes to the stream it is given)."""
    offences = []
    for name, path in modules().items():
        if name.startswith("carrier_sla.cli") or name == "carrier_sla.__main__":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "argparse" for a in node.names):
                offences.append(f"{name}: import argparse")
            elif isinstance(node, ast.FunctionDef) and node.name in ("add_parser", "command"):
                offences.append(f"{name}: def {node.name}")
            elif (
                isinstance(node, ast.Call) and ast.unparse(node.func) == "print" and name != "carrier_sla.engine.runlog"
            ):
                offences.append(f"{name}:{node.lineno}: print")
    assert offences == []

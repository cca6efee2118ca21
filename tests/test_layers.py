"""The package's folders are its layers (README, Design): a layer imports only from the layers
above it, and from the package's top-level modules (errors, timings and the like)."""

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
        if path.name in ("__init__.py", "__main__.py"):
            continue  # the public API and the entry point reach into the layers on purpose
        layered = [m for m in _imports(path) if len(m.split(".")) > 1 and m.split(".")[1] in LAYERS]
        assert layered == [], f"{path.name} imports {layered}"


def test_the_check_finds_a_violation(tmp_path, monkeypatch):
    """The layer check is not vacuous: a plan module importing the engine is reported."""
    fake = tmp_path / "carrier_sla"
    (fake / "plan").mkdir(parents=True)
    (fake / "plan" / "bad.py").write_text("from carrier_sla.engine import verdicts\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert sorted(_layer_violations()) == ["plan/bad.py imports carrier_sla.engine (layer engine is below plan)",
                                   "plan/bad.py imports carrier_sla.engine.verdicts (layer engine is below plan)"]

"""The layers point one way (DESIGN §2): api → services → repositories → models → db, all of
them → auth and the vocabulary; geodata and maps never import gridsvc; no import circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gridsvc", "geodata", "maps")


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def _modules(root: Path = ROOT, *, module_level_only: bool = False) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (root / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
            graph[name] = _imports(path, module_level_only=module_level_only)
    return {name: {d for d in deps if d in graph and d != name} for name, deps in graph.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                found.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, path)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return found


def _violations(graph: dict[str, set[str]], lower: str, upper: tuple[str, ...]) -> list[str]:
    return [
        f"{name} imports {dep}"
        for name, deps in sorted(graph.items())
        if name == lower or name.startswith(lower + ".")
        for dep in sorted(deps)
        if any(dep == u or dep.startswith(u + ".") for u in upper)
    ]


#: The HTTP adapters (the API and the OGC API) and what lies between them and the models.
_ADAPTERS = ("gridsvc.api", "gridsvc.ogc")
_ABOVE_MODELS = ("gridsvc.repositories", "gridsvc.services", *_ADAPTERS)


def test_no_import_circle() -> None:
    assert _cycles(_modules(module_level_only=True)) == []


def test_lower_layers_never_import_upper_ones() -> None:
    graph = _modules()  # lazy imports inside functions count too
    rules = {
        "geodata": ("gridsvc", "maps"),
        "maps": ("gridsvc",),
        "gridsvc.auth": _ABOVE_MODELS,
        "gridsvc.models": _ABOVE_MODELS,
        "gridsvc.repositories": ("gridsvc.services", *_ADAPTERS),
        "gridsvc.services": _ADAPTERS,
    }
    found = [v for lower, upper in rules.items() for v in _violations(graph, lower, upper)]
    assert found == []


def test_the_checks_see_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """The two checks above can fail."""
    (tmp_path / "gridsvc" / "repositories").mkdir(parents=True)
    (tmp_path / "gridsvc" / "services").mkdir()
    (tmp_path / "gridsvc" / "repositories" / "a.py").write_text(
        "from gridsvc.services.b import x\n", encoding="utf-8"
    )
    (tmp_path / "gridsvc" / "services" / "b.py").write_text(
        "from gridsvc.repositories.a import y\n", encoding="utf-8"
    )
    for package in ("geodata", "maps"):
        (tmp_path / package).mkdir()
    graph = _modules(tmp_path, module_level_only=True)
    assert _cycles(graph) == [
        ["gridsvc.repositories.a", "gridsvc.services.b", "gridsvc.repositories.a"]
    ]
    assert _violations(graph, "gridsvc.repositories", ("gridsvc.services",)) == [
        "gridsvc.repositories.a imports gridsvc.services.b"
    ]

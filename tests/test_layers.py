"""Import layers: a module may import its own layer and the layers below it, never one above, and
the imports between xqg's modules form no cycle.

The layers, lowest first (a module belongs to the most specific prefix that names it):

0. **foundation** — ``xqg`` (the package), ``errors``, ``paths``, ``types``, ``progress``, ``io``,
   ``languages``, ``query_store``: facts and plumbing every stage shares;
1. **data** — ``xqg.data``: readers and writers per format, benchmark builders, bitext splits;
2. **evaluate** — ``xqg.evaluate``: metrics, R@kt, significance and permutation tests, bitext
   accuracy, MI estimators, tables (numbers in, numbers out; data files at most);
3. **models** — ``xqg.models`` and ``xqg.config``: encoders, model sources, typed settings;
4. **stages** — ``encode``, ``index``, ``search``, ``augment``, ``distributed``, ``pipeline``,
   ``xqg.generate``: the pipeline's stages, each reading the previous one's files;
5. **train** — ``xqg.train``: retriever, distillation, generator, negatives;
6. **analyse** — ``xqg.analyse``: the analyses (compute, then render);
7. **experiments** — ``xqg.experiments``: experiments and grids that run stages, training and
   analyses and write reports;
8. **serve** — ``xqg.serve``: the search service;
9. **interface** — ``xqg.cli``, ``xqg.__main__`` and any top-level ``xqg.*_cli``: commands.

Every ``import`` statement counts, also those inside functions (a lazy import is still a
dependency); only ``if TYPE_CHECKING:`` blocks are skipped.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation", ("xqg", "xqg.errors", "xqg.paths", "xqg.types", "xqg.progress", "xqg.io", "xqg.languages",
                    "xqg.render", "xqg.query_store", "xqg.assets", "xqg.configs")),
    ("data", ("xqg.data",)),
    ("evaluate", ("xqg.evaluate",)),
    ("models", ("xqg.models", "xqg.config")),
    ("stages", ("xqg.encode", "xqg.index", "xqg.search", "xqg.augment", "xqg.distributed", "xqg.pipeline",
                "xqg.generate")),
    ("train", ("xqg.train",)),
    ("analyse", ("xqg.analyse",)),
    ("experiments", ("xqg.experiments",)),
    ("serve", ("xqg.serve",)),
    ("interface", ("xqg.cli", "xqg.__main__")),
]  # fmt: skip


def layer_of(module: str) -> int:
    """Index in :data:`LAYERS` of the most specific prefix naming ``module``."""
    if module.count(".") == 1 and module.endswith("_cli"):
        return len(LAYERS) - 1
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if best is None:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS in tests/test_layers.py")
    return best


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The xqg modules ``path`` imports (``from a import b`` counts ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for c in child.orelse:
                    visit(c)
                continue
            if isinstance(child, ast.Import):
                out.update(a.name for a in child.names if a.name.split(".")[0] == "xqg")
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".") if is_pkg else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.split(".")[0] != "xqg":
                    continue
                subs = {f"{target}.{a.name}" for a in child.names} & known
                out.update(subs or {target})
            visit(child)

    visit(tree)
    return {m for m in out if m != module}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.joinpath("xqg").rglob("*.py")}
    known = set(files)
    return {m: _imports(p, m, known) for m, p in sorted(files.items())}


def test_every_module_has_a_layer():
    for module in _graph():
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    bad = []
    for module, deps in _graph().items():
        mine = layer_of(module)
        for dep in sorted(deps):
            if layer_of(dep) > mine:
                bad.append(f"{module} ({LAYERS[mine][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


#: Cycles known and not yet broken, each with the fix; the test fails when one is gone, so the
#: entry is removed with it. (The last one, generate.backends ↔ llamacpp, went when the engine
#: factory moved to generate/engines.py.)
KNOWN_CYCLES: list[list[str]] = []


def test_no_import_cycles():
    graph = _graph()
    # A package's __init__ re-exporting its submodules is not a cycle of logic; only count
    # the edges from a package to modules outside it.
    for m, deps in graph.items():
        graph[m] = {d for d in deps if not d.startswith(m + ".")}
    cycles = _cycles(graph)
    new = [c for c in cycles if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in new)
    gone = [c for c in KNOWN_CYCLES if c not in cycles]
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {gone}"


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("module", "layer"),
    [("xqg.data.bitext", "data"), ("xqg.evaluate.bitext", "evaluate"), ("xqg.benchmark_cli", "interface")],
)
def test_layer_of_examples(module, layer):
    assert LAYERS[layer_of(module)][0] == layer

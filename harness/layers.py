"""``python -m harness.layers``: the layers of optbench's own imports, bottom first, and every import that points up.

Each module of ``harness`` and ``model_zoo`` belongs to one layer (:data:`LAYERS`, the longest matching name wins)
and may import its own layer and those below it, never one above. The imports are read from the source with
``ast``, not by importing anything: module-level imports and those inside functions alike (a lazy import is still
a dependency), relative ones resolved. Imports under ``if TYPE_CHECKING:`` are not counted: they never run, and
annotations may name a type from anywhere; ``--type-checking`` counts them too.

Exit status 1 names each upward import and each module in no layer; 0 else. Import cycles between modules of one
layer (a layer's sideways imports) are listed too, and fail the run with ``--strict``; a cycle across layers
always holds an upward import.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

PACKAGES = ("harness", "model_zoo")

# Bottom first: (layer, the modules in it — a name stands for itself and everything under it; the longest wins).
# "harness" itself is in the top layer, so a new harness module lands there until it is placed lower: it may
# import anything, and nothing below may import it; a new zoo model lands in "zoo" by "model_zoo".
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("harness.errors", "harness.registry", "harness.config", "harness.core",
              "harness.cache", "harness.context", "harness.artifact", "harness.metrics", "harness.probe")),
    ("zoo data", ("model_zoo.spec", "model_zoo.datasets", "model_zoo.students", "model_zoo.traits")),
    ("training loop", ("harness.training",)),
    ("zoo", ("model_zoo",)),
    ("platform", ("harness.env", "harness.forked", "harness.onnx_export")),
    ("search library", ("harness.search",)),
    ("techniques", ("harness.techniques",)),
    ("backends", ("harness.backends",)),
    ("judging", ("harness.gate", "harness.record", "harness.baselines", "harness.result", "harness.run_samples")),
    ("measuring", ("harness.case", "harness.measure", "harness.work")),
    ("reporting", ("harness.report", "harness.history", "harness.docs", "harness.accept", "harness.merge")),
    ("session", ("harness.session",)),
    ("analysis", ("harness.analysis",)),
    ("entry points", ("harness", "harness.plugin", "harness.cli", "harness.__main__", "harness.count",
                      "harness.gatebench", "harness.gatebench_work", "harness.search.cli", "harness.new_suite",
                      "harness.layers")),
)


@dataclasses.dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    type_checking: bool = False


@dataclasses.dataclass
class Graph:
    modules: dict[str, Path]
    imports: list[Import]

    def edges(self, type_checking: bool = False) -> list[Import]:
        return [i for i in self.imports if type_checking or not i.type_checking]


def module_files(root: Path, packages: Sequence[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root`` by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` lands on: itself, else its nearest enclosing module of ours (None: not ours)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, under_type_checking: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement in ``tree``, at any depth, with whether an ``if TYPE_CHECKING:`` guards it."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, under_type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), under_type_checking)
        else:
            yield from _imports(node, under_type_checking)


def read_graph(root: Path, packages: Sequence[str] = PACKAGES) -> Graph:
    """The package-internal imports of every module under ``root``, found in its source."""
    modules = module_files(root, packages)
    imports: list[Import] = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node, guarded in _imports(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                # ``from pkg import sub`` imports the module pkg.sub where there is one, else a name of pkg.
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in modules else module
                           for alias in node.names]
            for target in targets:
                resolved = _resolve(target, modules) if target.split(".")[0] in packages else None
                if resolved is not None and resolved != name:
                    imports.append(Import(name, resolved, node.lineno, guarded))
    return Graph(modules, imports)


def layer_of(module: str, layers: Sequence[tuple[str, Sequence[str]]] = LAYERS) -> int | None:
    """The index of ``module``'s layer: the one holding the longest name that is it or encloses it."""
    best: tuple[int, int] | None = None  # (length of the matching name, layer index)
    for index, (_, names) in enumerate(layers):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return best[1] if best is not None else None


def cycles(imports: Sequence[Import]) -> list[list[str]]:
    """The import cycles: each strongly connected group of more than one module (Tarjan), sorted."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        graph.setdefault(imp.source, set()).add(imp.target)
        graph.setdefault(imp.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


@dataclasses.dataclass
class Report:
    layers: list[tuple[str, list[str]]]  # bottom first: name, modules
    upward: list[tuple[Import, str, str]]  # the import, its source's layer, its target's layer
    cycles: list[list[str]]
    unplaced: list[str]
    counted: int  # module pairs (one importing the other), however many import statements say it
    skipped_type_checking: int  # such pairs seen only under ``if TYPE_CHECKING:``

    def ok(self, strict: bool = False) -> bool:
        return not (self.upward or self.unplaced or (strict and self.cycles))


def check(root: Path, packages: Sequence[str] = PACKAGES, layers: Sequence[tuple[str, Sequence[str]]] = LAYERS,
          type_checking: bool = False) -> Report:
    graph = read_graph(root, packages)
    edges = graph.edges(type_checking)
    placed = {m: layer_of(m, layers) for m in graph.modules}
    members: list[tuple[str, list[str]]] = [(name, []) for name, _ in layers]
    for module, index in sorted(placed.items()):
        if index is not None:
            members[index][1].append(module)
    upward = [(imp, layers[s][0], layers[t][0]) for imp in edges
              if (s := placed[imp.source]) is not None and (t := placed[imp.target]) is not None and t > s]
    pairs = {(i.source, i.target) for i in edges}
    return Report(members, sorted(upward, key=lambda u: (u[0].source, u[0].line)), cycles(edges),
                  sorted(m for m, i in placed.items() if i is None), len(pairs),
                  len({(i.source, i.target) for i in graph.imports} - pairs))


def render(report: Report) -> list[str]:
    lines = ["optbench import layers, bottom first (a module imports its own layer and those below it):"]
    for index, (name, modules) in enumerate(report.layers):
        lines.append(f"  {index:2d} {name:<15} {len(modules):3d}  {' '.join(modules)}")
    lines.append(f"{report.counted} package-internal imports (module pairs) counted, function-level ones included; "
                 f"{report.skipped_type_checking} seen only under `if TYPE_CHECKING:` not counted")
    for imp, source_layer, target_layer in report.upward:
        lines.append(f"upward import: {imp.source} ({source_layer}) imports {imp.target} ({target_layer}), "
                     f"line {imp.line}")
    for group in report.cycles:
        lines.append(f"import cycle within a layer: {' <-> '.join(group)}")
    for module in report.unplaced:
        lines.append(f"in no layer: {module} (add it to harness.layers.LAYERS)")
    lines.append(f"upward imports: {len(report.upward)}; cycles: {len(report.cycles)}; "
                 f"modules in no layer: {len(report.unplaced)}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.layers", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the folder holding the packages (default: this checkout)")
    parser.add_argument("--type-checking", action="store_true", help="count `if TYPE_CHECKING:` imports too")
    parser.add_argument("--strict", action="store_true", help="fail on import cycles within a layer too")
    args = parser.parse_args(argv)
    missing = [p for p in PACKAGES if not (args.root / p).is_dir()]
    if missing:
        print(f"python -m harness.layers: {args.root} holds no package {', '.join(missing)}", file=sys.stderr)
        return 2
    report = check(args.root, type_checking=args.type_checking)
    print("\n".join(render(report)))
    return 0 if report.ok(args.strict) else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Structure checks of the vidnb package that neither mypy nor ruff make.

Reports, one line per problem (and exits 1 when there is any):

- an import of a private name (``_x``, not a dunder) from another vidnb module: a
  module's private names may change under it without notice; import the module
  (``from . import _x``) or make the name public;
- a class longer than 300 lines, or a function or method longer than 120 lines;
- an import cycle among vidnb modules, counting only imports made when a module is
  imported: function-level (lazy) imports and ``if TYPE_CHECKING:`` imports never run
  at import time, so they cannot take part in a cycle.

Usage: ``python .ci/check_structure.py [ROOT]``, where ROOT holds the ``vidnb`` folder
(default: the repository this script is in).
"""

from __future__ import annotations

import ast
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "vidnb"
MAX_CLASS_LINES = 300
MAX_FUNCTION_LINES = 120


@dataclass
class Module:
    name: str
    path: Path  # as shown in messages: relative to the root
    is_package: bool
    tree: ast.Module
    #: Modules imported when this one is imported, with the line of the first such import.
    edges: dict[str, int] = field(default_factory=dict)

    @property
    def package(self) -> str:
        """The package relative imports start from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def module_name(rel: Path) -> tuple[str, bool]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def load(root: Path) -> tuple[dict[str, Module], list[str]]:
    modules: dict[str, Module] = {}
    problems: list[str] = []
    for file in sorted((root / PACKAGE).rglob("*.py")):
        rel = file.relative_to(root)
        name, is_package = module_name(rel)
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(rel))
        except SyntaxError as exc:
            problems.append(f"{rel}:{exc.lineno or 0}: cannot be parsed: {exc.msg}")
            continue
        modules[name] = Module(name, rel, is_package, tree)
    return modules, problems


def resolve(mod: Module, level: int, target: str | None) -> str:
    """The absolute module name of ``from <level dots><target> import ...`` in ``mod``."""
    if level == 0:
        return target or ""
    base = mod.package.split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_time_nodes(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a module that run when it is imported, outside functions and
    ``if TYPE_CHECKING:`` blocks (class bodies, try/if/with blocks at module level do run)."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, ast.If) and is_type_checking(node.test):
            yield from import_time_nodes(node.orelse)
            continue
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            inner = getattr(node, name, None)
            if isinstance(inner, list):
                for child in inner:
                    if isinstance(child, (ast.ExceptHandler, ast.match_case)):
                        yield from import_time_nodes(child.body)
                    elif isinstance(child, ast.stmt):
                        yield from import_time_nodes([child])


@dataclass(frozen=True)
class Imported:
    """One name an import statement binds: the module it comes from, and whether that
    name is itself a module (``from . import _x``) or a name inside one."""

    line: int
    module: str
    name: str | None  # None: the module itself was imported


def imports(mod: Module, node: ast.stmt, known: dict[str, Module]) -> Iterator[Imported]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield Imported(node.lineno, alias.name, None)
    elif isinstance(node, ast.ImportFrom):
        base = resolve(mod, node.level, node.module)
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            if alias.name != "*" and sub in known:
                yield Imported(node.lineno, sub, None)
            else:
                yield Imported(node.lineno, base, alias.name)


def in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def check_private_imports(modules: dict[str, Module]) -> list[str]:
    problems = []
    for mod in modules.values():
        for node in ast.walk(mod.tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            for imp in imports(mod, node, modules):
                name = imp.name
                if name is None or not in_package(imp.module) or imp.module == mod.name:
                    continue
                if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                    problems.append(
                        f"{mod.path}:{imp.line}: imports private name {name} from {imp.module}; "
                        "import the module, or make the name public"
                    )
    return problems


def check_lengths(modules: dict[str, Module]) -> list[str]:
    problems = []

    def visit(mod: Module, body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                is_class = isinstance(node, ast.ClassDef)
                limit = MAX_CLASS_LINES if is_class else MAX_FUNCTION_LINES
                kind = "class" if is_class else "function"
                qualname = f"{prefix}{node.name}"
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    problems.append(f"{mod.path}:{node.lineno}: {kind} {qualname} is {length} lines (at most {limit})")
                visit(mod, node.body, qualname + ".")
                continue
            # Definitions nested in if/try/with/for blocks count too.
            for name in ("body", "orelse", "finalbody"):
                inner = getattr(node, name, None)
                if isinstance(inner, list):
                    visit(mod, [n for n in inner if isinstance(n, ast.stmt)], prefix)
            for handler in getattr(node, "handlers", []):
                visit(mod, handler.body, prefix)

    for mod in modules.values():
        visit(mod, mod.tree.body, "")
    return problems


def build_edges(modules: dict[str, Module]) -> None:
    for mod in modules.values():
        for node in import_time_nodes(mod.tree.body):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for imp in imports(mod, node, modules):
                # Importing a.b.c runs a, a.b and a.b.c; packages this module sits in are
                # already being imported, so only the others can close a cycle.
                parts = imp.module.split(".")
                for i in range(1, len(parts) + 1):
                    target = ".".join(parts[:i])
                    ancestor = mod.name.startswith(target + ".")
                    if target in modules and target != mod.name and not ancestor:
                        mod.edges.setdefault(target, imp.line)


def strongly_connected(modules: dict[str, Module]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(modules[start].edges)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(modules[child].edges))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def shortest_cycle(modules: dict[str, Module], group: list[str]) -> list[str]:
    """The shortest cycle through the group's first module, staying inside the group."""
    first, members = group[0], set(group)
    came_from: dict[str, str] = {}
    queue = deque([first])
    while queue:
        node = queue.popleft()
        for child in sorted(modules[node].edges):
            if child not in members:
                continue
            if child == first:
                path = [node]
                while path[-1] != first:
                    path.append(came_from[path[-1]])
                return [*reversed(path), first]
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    return group  # not reached: every module of a group is on a cycle through the others


def check_cycles(modules: dict[str, Module]) -> list[str]:
    build_edges(modules)
    problems = []
    for group in strongly_connected(modules):
        cycle = shortest_cycle(modules, group)
        where = ", ".join(f"{modules[a].path}:{modules[a].edges[b]}" for a, b in zip(cycle, cycle[1:], strict=False))
        others = sorted(set(group) - set(cycle))
        also = f"; also tangled in it: {', '.join(others)}" if others else ""
        problems.append(f"import cycle: {' -> '.join(cycle)} ({where}){also}")
    return problems


def check(root: Path) -> list[str]:
    modules, problems = load(root)
    if not modules and not problems:
        return [f"{root / PACKAGE}: no Python files found"]
    return problems + check_private_imports(modules) + check_lengths(modules) + check_cycles(modules)


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    problems = check(root)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

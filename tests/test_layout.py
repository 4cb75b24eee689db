"""The package rule of docs/architecture.md, checked on the source: every import of every
module in station/, central/ and drivers/ (function-level ones too), read with ast."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("station", "central", "drivers")

#: What the reference server may use of the station: the wire, the record and its
#: checks, the NIK rules, grants, messages, logging setup, and the CLI's error kinds (a
#: leaf module: central's own verbs raise them, station/cli/main prints them), and the
#: one migration runner. Nothing that runs a station.
CENTRAL_USES_OF_STATION = (
    "station.link",
    "station.records",
    "station.nik",
    "station.grants",
    "station.i18n",
    "station.cli.errors",
    "station.logs",
    "station.store.migrations",
)
#: The drivers' pure modules (no I/O) the centre's seeding uses to write chip scripts.
CENTRAL_USES_OF_DRIVERS = ("drivers.ktpel_layout", "drivers.script", "drivers.iso7816")

#: Known debt: import cycles other work on issue 12 is removing. Remove an entry when its
#: cycle is gone (the test fails on a stale entry, so the list only shrinks).
KNOWN_CYCLES: set[frozenset[str]] = set()
#: Known debt: edges against the rule, being removed the same way.
KNOWN_EDGES: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its body."""
    targets: set[str] = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # ``from pkg import mod`` is an edge to pkg.mod (package __init__s hold no code).
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                targets.add(sub if sub in known else module)
    resolved: set[str] = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            resolved.add(target)
    return resolved


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported(name, path, known) for name, path in known.items()}


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def forbidden(src: str, dst: str) -> str | None:
    """Why ``src`` may not import ``dst`` (None when it may)."""
    top_src, top_dst = src.split(".")[0], dst.split(".")[0]
    if top_src == "drivers" and top_dst != "drivers":
        return "drivers import neither station nor central"
    cli = within(src, ("station.cli",))
    if top_dst == "central" and top_src == "station" and not cli:
        return "only station.cli imports central"
    central_may = top_src == "central" and within(dst, CENTRAL_USES_OF_STATION)
    if within(dst, ("station.cli",)) and not cli and not central_may:
        return "only the CLI imports the CLI"
    if top_src == "central" and top_dst == "station" and not within(dst, CENTRAL_USES_OF_STATION):
        return "central uses only station's lower layers"
    if top_src == "central" and top_dst == "drivers" and not within(dst, CENTRAL_USES_OF_DRIVERS):
        return "central uses only the pure drivers"
    return None


def cycles(g: dict[str, set[str]]) -> Iterator[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> Iterator[frozenset[str]]:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(g[v]):
            if w not in index:
                yield from visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                yield frozenset(component)

    for v in sorted(g):
        if v not in index:
            yield from visit(v)


def test_no_import_cycle_between_modules() -> None:
    """No two modules import each other, directly or round a loop (known debt aside)."""
    found = set(cycles(graph()))
    assert sorted(map(sorted, found - KNOWN_CYCLES)) == []
    assert sorted(map(sorted, KNOWN_CYCLES - found)) == [], "gone: drop from KNOWN_CYCLES"


def test_no_import_against_the_package_rule() -> None:
    """No module imports upward against docs/architecture.md's rule (known debt aside)."""
    bad = {
        (src, dst)
        for src, targets in graph().items()
        for dst in targets
        if forbidden(src, dst) is not None
    }
    assert [(s, d, forbidden(s, d)) for s, d in sorted(bad - KNOWN_EDGES)] == []
    assert sorted(KNOWN_EDGES - bad) == [], "gone: drop from KNOWN_EDGES"


def test_the_walker_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    """An import inside a function and a relative one both count as edges."""
    pkg = tmp_path / "drivers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from station.daemon import Station\n")
    (pkg / "b.py").write_text("from . import a\nfrom .a import f\n")
    known = {"drivers": pkg / "__init__.py", "drivers.a": pkg / "a.py", "drivers.b": pkg / "b.py"}
    known["station.daemon"] = tmp_path / "daemon.py"
    assert imported("drivers.a", pkg / "a.py", known) == {"station.daemon"}
    assert imported("drivers.b", pkg / "b.py", known) == {"drivers.a"}
    assert forbidden("drivers.a", "station.daemon") is not None


def test_tests_and_benches_import_no_test_module() -> None:
    """Helpers live in tests/support: no test or bench imports another test module."""
    offenders = []
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [
                f"{path.relative_to(ROOT)}: {n}"
                for n in names
                if n.startswith("tests.") and n.rpartition(".")[2].startswith("test_")
            ]
    assert offenders == []

"""Import rules of the layers (README.md, "Architecture"), read from the source with `ast`, nothing
imported: the domain is pure (no framework), the web pages and the JSON API share only ipoa/entry and
never import each other, and no module of ipoa imports itself back through others at load time.

A rule is one line of LAYER_RULES: a package, the packages or libraries it must not import, and why."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ipoa"
FRAMEWORKS = ("flask", "flask_login", "flask_wtf", "werkzeug", "sqlalchemy", "redis", "rq", "twilio")

LAYER_RULES = [
    ("ipoa.domain", FRAMEWORKS, "the domain is pure: no web framework, database, queue or SMS gateway"),
    ("ipoa.api", ("ipoa.web",), "what the API shares with the pages is in ipoa.entry"),
    ("ipoa.web", ("ipoa.api",), "what the pages share with the API is in ipoa.entry"),
    ("ipoa.entry", ("ipoa.web", "ipoa.api"), "the shared pieces lean on neither entry point"),
    ("ipoa.service", ("sqlalchemy", "ipoa.adapters.orm"),
     "use cases write through the unit of work's stores and read through read models (ipoa/adapters)"),
    ("ipoa.service", ("flask", "flask_login", "flask_wtf", "werkzeug"),
     "use cases run without the web framework (workers, CLI): callers hand in the clock and services, "
     "password hashes are ipoa/adapters/passwords.py's"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "static" not in p.parts}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, *, load_time_only: bool):
    """The import statements of a module: all of them, or only those run when it is loaded (not inside a
    function, not under `if TYPE_CHECKING:`). Class bodies run at load time."""
    found: list[ast.Import | ast.ImportFrom] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            elif load_time_only and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            elif load_time_only and isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    walk(ast.Module(body=[stmt], type_ignores=[]))
            else:
                walk(child)

    walk(tree)
    return found


def imported_names(module: str, *, load_time_only: bool = False) -> set[str]:
    """Every module (or library) `module` imports, as absolute dotted names. `from pkg import sub` names
    pkg.sub when that is a module of ipoa, pkg otherwise."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8")), load_time_only=load_time_only):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            candidate = f"{source}.{alias.name}"
            names.add(candidate if candidate in MODULES else source)
    return names


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one that imports itself
    (Tarjan's algorithm, iterative: no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    cycles.append(sorted(component))
    return cycles


@pytest.mark.parametrize("layer, forbidden, why", LAYER_RULES, ids=[r[0] for r in LAYER_RULES])
def test_layer_imports(layer, forbidden, why):
    # Every import counts here, a function's own too: a late import is still a dependency.
    broken = sorted(f"{module} imports {name}"
                    for module in MODULES if _within(module, layer)
                    for name in imported_names(module)
                    if any(_within(name, f) for f in forbidden))
    assert not broken, f"{why}:\n" + "\n".join(broken)


def _graph(*, load_time_only: bool) -> dict[str, set[str]]:
    return {module: {n for n in imported_names(module, load_time_only=load_time_only) if n in MODULES and n != module}
            for module in MODULES}


def _listed(cycles: list[list[str]]) -> str:
    return "\n".join(" <-> ".join(c) for c in cycles)


def test_no_import_cycles_among_ipoa_modules():
    cycles = find_cycles(_graph(load_time_only=True))
    assert not cycles, "modules that import each other when loaded:\n" + _listed(cycles)


def test_no_cycles_through_late_imports_either():
    # An import inside a function hides a cycle from Python, not from the reader (web/views.py and
    # web/dashboard.py once imported each other so). Only the app factory may: create_app (ipoa/__init__.py)
    # imports every blueprint when called, and a module may import the package's own names.
    graph = _graph(load_time_only=False)
    graph["ipoa"] = _graph(load_time_only=True)["ipoa"]
    cycles = find_cycles(graph)
    assert not cycles, "modules that import each other, some inside a function:\n" + _listed(cycles)


# The checks above pass vacuously if the walker sees nothing: these pin what it must see.

def test_the_walker_resolves_relative_absolute_and_late_imports():
    views = imported_names("ipoa.web.views")
    assert {"ipoa.service.calls", "ipoa.entry.request_context", "flask"} <= views  # from ..service import calls
    assert "ipoa.service" not in views  # named by the submodule, not the package
    context = "ipoa.entry.request_context"
    assert "ipoa.service.professionals" in imported_names(context)  # actor()'s own import
    assert "ipoa.service.professionals" not in imported_names(context, load_time_only=True)
    assert "ipoa.web.views" in imported_names("ipoa")  # create_app's
    assert "ipoa.web.views" not in imported_names("ipoa", load_time_only=True)


def test_the_cycle_finder_finds_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"a"}}) == [["a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_a_broken_rule_is_reported():
    views = imported_names("ipoa.web.views")
    assert any(_within(name, "ipoa.service") for name in views)  # as a rule "web imports no service" would see

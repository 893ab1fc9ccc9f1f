"""The package's shape, checked from its source: the import graph, the exception tree, the size of functions.

The import graph is built from every ``import`` statement in ``knockoff/``: those at module level (run when the
module is imported) and those inside functions or under ``if TYPE_CHECKING:`` (run later, or never). Stages,
lowest first (a module may import its own stage and the ones below, never one above)::

    errors -> catalog, embedders -> match -> decide -> run -> report -> evaluate -> cli

``knockoff/__init__.py`` (the public API) and ``knockoff/__main__.py`` sit above all stages but the CLI's entry.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from knockoff.errors import KnockoffError

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "knockoff"

STAGES = {
    "knockoff.errors": 0,
    "knockoff.catalog": 1,
    "knockoff.embedders": 1,
    "knockoff.match": 2,
    "knockoff.decide": 3,
    "knockoff.run": 4,
    "knockoff.report": 5,
    "knockoff.evaluate": 6,
    "knockoff.cli": 7,
    "knockoff": 7,  # the public API (__init__), which the CLI may use (its __version__)
    "knockoff.__main__": 8,  # `python -m knockoff`
}

#: Cycles through lazy (function-level) imports that are allowed on purpose, as sorted module tuples, each
#: with the reason. None today: the embedder registry learns the built-in engines from a table of
#: "module:factory" strings loaded by importlib, not from imports.
ALLOWED_LAZY_CYCLES: dict[tuple[str, ...], str] = {}

MAX_FUNCTION_LINES = 60

#: Files whose functions this branch already keeps under MAX_FUNCTION_LINES (strict); the whole package is
SMALL_FUNCTION_FILES = (
    "errors.py", "embedders/base.py", "embedders/clip.py", "embedders/clip_fast.py", "embedders/perceptual.py",
    "embedders/preprocess.py", "embedders/weights.py", "catalog/images.py", "evaluate/synthetic.py",
    "evaluate/edits.py", "evaluate/realsets.py", "evaluate/setfiles.py", "cli/app.py", "cli/evaluate.py",
)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the longest prefix that is a module of knockoff)
    names: tuple[str, ...]  # names taken by `from target import ...` (empty for `import target`)
    lazy: bool  # inside a function, or under `if TYPE_CHECKING:`
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The knockoff module that ``name`` (a module or a name inside one) refers to; None outside knockoff."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_imports(node: ast.AST, lazy: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, lazy
        child_lazy = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
            isinstance(child, ast.If) and _is_type_checking(child)
        )
        yield from _walk_imports(child, child_lazy)


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node, lazy in _walk_imports(tree, lazy=False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target:
                    found.append(Import(module, target, (), lazy, node.lineno))
            continue
        base = node.module or ""
        if node.level:  # a relative import
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            if full in MODULES:  # `from knockoff.x import y` where y is a module
                found.append(Import(module, full, (), lazy, node.lineno))
            elif (target := _resolve(base)) is not None:
                found.append(Import(module, target, (alias.name,), lazy, node.lineno))
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def graph(include_lazy: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {module: set() for module in MODULES}
    for imp in ALL_IMPORTS:
        if imp.target != imp.source and (include_lazy or not imp.lazy):
            edges[imp.source].add(imp.target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan), each as a sorted tuple."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def stage_of(module: str) -> int:
    for prefix in sorted(STAGES, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return STAGES[prefix]
    raise AssertionError(f"{module} is in no stage; add its package to STAGES")


# -- the graph checker itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [("a", "b")]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [("a", "b", "c")]),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [("a", "b"), ("c", "d")]),
    ],
)
def test_cycle_finder(edges, expected):
    assert sorted(cycles(edges)) == expected


def test_the_graph_sees_module_and_function_level_imports():
    edges = {(imp.source, imp.target, imp.lazy) for imp in ALL_IMPORTS}
    assert ("knockoff.cli.app", "knockoff.errors", False) in edges  # module level
    assert ("knockoff.cli.app", "knockoff.run.scan", True) in edges  # inside a command's function
    assert len(MODULES) > 30 and all(stage_of(m) >= 0 for m in MODULES)


# -- the rules ---------------------------------------------------------------------------------------------


def test_no_import_cycle_at_module_level():
    assert cycles(graph(include_lazy=False)) == []


def _lazy_cycles() -> list[tuple[str, ...]]:
    return [c for c in cycles(graph(include_lazy=True)) if c not in ALLOWED_LAZY_CYCLES]


def test_no_import_cycle_through_lazy_imports_at_all():
    assert _lazy_cycles() == [], "cycles through function-level imports (allow one only in ALLOWED_LAZY_CYCLES, with why)"


def test_errors_imports_nothing_of_knockoff():
    assert [imp for imp in ALL_IMPORTS if imp.source == "knockoff.errors"] == []


def test_embedder_registry_does_not_import_the_engines_it_lists():
    targets = {imp.target for imp in ALL_IMPORTS if imp.source == "knockoff.embedders.base"}
    assert targets <= {"knockoff.errors", "knockoff.embedders.weights"}, targets


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_run_down_the_stages(module):
    upward = [
        f"line {imp.line}: {imp.target} (stage {stage_of(imp.target)})"
        for imp in ALL_IMPORTS
        if imp.source == module and stage_of(imp.target) > stage_of(module)
    ]
    assert upward == [], f"{module} (stage {stage_of(module)}) imports a higher stage"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_takes_another_modules_private_names(module):
    private = [
        f"line {imp.line}: {name} from {imp.target}"
        for imp in ALL_IMPORTS
        if imp.source == module and imp.target != module
        for name in imp.names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


# -- one exception tree ------------------------------------------------------------------------------------


def _raised_callables(tree: ast.AST) -> Iterator[tuple[int, ast.expr]]:
    """(line, what is called or named) of each ``raise X(...)`` / ``raise X`` in line order; bare ``raise``
    is skipped."""
    raises = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Raise)), key=lambda n: n.lineno)
    for node in raises:
        if node.exc is not None:
            yield node.lineno, node.exc.func if isinstance(node.exc, ast.Call) else node.exc


def _lookup(expr: ast.expr, namespace: dict[str, object]) -> object | None:
    if isinstance(expr, ast.Name):
        if expr.id in namespace:
            return namespace[expr.id]
        errors = importlib.import_module("knockoff.errors")  # a class imported inside the raising function
        return getattr(errors, expr.id, None)
    if isinstance(expr, ast.Attribute):
        owner = _lookup(expr.value, namespace)
        return getattr(owner, expr.attr, None) if owner is not None else None
    return None


def _raises_knockoff_error(thing: object) -> bool:
    if inspect.isclass(thing):
        return issubclass(thing, KnockoffError)
    if inspect.isfunction(thing):  # a helper that builds the error: its return type says which
        returned = typing.get_type_hints(thing).get("return")
        return inspect.isclass(returned) and issubclass(returned, KnockoffError)
    return False


def _raise_offenders(module: str) -> list[str]:
    namespace = vars(importlib.import_module(module))
    offenders = []
    for line, expr in _raised_callables(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(expr, ast.Name) and expr.id not in namespace and not expr.id[:1].isupper():
            continue  # `raise error`: re-raising a caught exception held in a local variable
        if not _raises_knockoff_error(_lookup(expr, namespace)):
            offenders.append(f"line {line}: raise {ast.unparse(expr)}")
    return offenders


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_raise_raises_a_knockoff_error(module):
    assert _raise_offenders(module) == [], "raise a specific subclass of knockoff.errors.KnockoffError"


def test_the_raise_check_can_fail():
    source = "def f(x):\n    if x:\n        raise ValueError('no')\n    raise ImageError('p', 'q')\n"
    tree = ast.parse(source)
    namespace = {"ValueError": ValueError, "ImageError": importlib.import_module("knockoff.errors").ImageError}
    verdicts = [_raises_knockoff_error(_lookup(expr, namespace)) for _, expr in _raised_callables(tree)]
    assert verdicts == [False, True]


def test_no_bare_knockoff_error_is_raised():
    bare = [
        f"{module} line {line}"
        for module, path in MODULES.items()
        for line, expr in _raised_callables(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(expr, ast.Name) and expr.id == "KnockoffError"
    ]
    assert bare == []


def test_error_classes_have_docstrings_and_no_builtin_names():
    errors = importlib.import_module("knockoff.errors")
    classes = [c for c in vars(errors).values() if inspect.isclass(c) and issubclass(c, KnockoffError)]
    assert len(classes) > 10
    for cls in classes:
        assert cls.__doc__, cls
        assert cls.__name__ not in dir(builtins), f"{cls.__name__} shadows a builtin"


# -- small pieces ------------------------------------------------------------------------------------------


def long_functions(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_knockoff_is_over_60_lines():
    offenders = long_functions(sorted(PACKAGE_DIR.rglob("*.py")))
    assert offenders == [], "functions over 60 lines:\n" + "\n".join(offenders)


# -- the embedder registry ---------------------------------------------------------------------------------


def test_registry_lists_the_built_in_engines_without_importing_them():
    code = (
        "import sys; from knockoff.embedders import list_embedders, describe_embedders; "
        "print(list_embedders(), sorted(describe_embedders()), "
        "[m for m in ('knockoff.embedders.clip', 'knockoff.embedders.perceptual') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['auto', 'clip', 'perceptual'] ['auto', 'clip', 'perceptual'] []"


def test_each_built_in_engine_resolves_to_a_factory():
    from knockoff.embedders.base import BUILTIN_EMBEDDERS

    for kind, (target, description) in BUILTIN_EMBEDDERS.items():
        module, _, attribute = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute)), kind
        assert description and not attribute.startswith("_")


def test_an_unknown_engine_lists_the_valid_ones():
    from knockoff.embedders import create_embedder
    from knockoff.errors import EmbedderError

    with pytest.raises(EmbedderError, match="valid kinds: auto, clip, perceptual"):
        create_embedder("nonsense")
    assert create_embedder("perceptual").kind == "perceptual"


@pytest.mark.parametrize("kind", ["", "a:b", "auto"])
def test_registering_a_bad_kind_is_an_embedder_error(kind):
    from knockoff.embedders import register_embedder
    from knockoff.errors import EmbedderError

    with pytest.raises(EmbedderError, match="invalid embedder kind"):
        register_embedder(kind, lambda arg=None: None)

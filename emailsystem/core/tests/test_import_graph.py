"""The project's modules import each other without cycles, and across the architecture's boundaries
only in the allowed direction. Every import counts, including one inside a function: hiding an
import there does not remove the dependency."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("emailsystem", "emailsender")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            found[module_name(path)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules `name` imports anywhere in its source (a package import names its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(node) for block in ast.walk(tree) if _is_type_checking_block(block) for node in ast.walk(block)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            # The longest project module the import names: `a.b.c` may be module `a.b` and its name `c`.
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def _is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:`: imports for the type checker only, never run."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each strongly connected group of modules (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_the_sender_imports_nothing_of_the_django_project():
    graph = import_graph()

    assert {
        (a, b)
        for a, targets in graph.items()
        if a.startswith("emailsender")
        for b in targets
        if b.startswith("emailsystem")
    } == set()


def test_core_and_users_import_no_other_app():
    graph = import_graph()
    crossing = {
        (a, b)
        for a, targets in graph.items()
        for b in targets
        if (a.startswith("emailsystem.core") and b.startswith(("emailsystem.emails", "emailsystem.users")))
        or (a.startswith("emailsystem.users") and b.startswith("emailsystem.emails"))
    }

    assert crossing == set()


def test_the_graph_sees_imports_inside_functions(tmp_path):
    modules = {"pkg.a": tmp_path / "a.py", "pkg.b": tmp_path / "b.py"}
    modules["pkg.a"].write_text("def f():\n    from pkg.b import thing\n")
    modules["pkg.b"].write_text("from pkg import a\n")

    assert imports_of("pkg.a", modules["pkg.a"], modules) == {"pkg.b"}
    assert cycles({"pkg.a": {"pkg.b"}, "pkg.b": {"pkg.a"}}) == [["pkg.a", "pkg.b"]]

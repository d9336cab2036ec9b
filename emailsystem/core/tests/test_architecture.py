"""Boundaries between the layers: `users` never imports `emails` (sending depends on accounts,
not the reverse), and selectors never write."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_scan_sees_imports_that_exist():
    assert "emailsystem.users.services" in imported_modules(ROOT / "emailsystem" / "emails" / "verification.py")


def test_the_users_app_never_imports_the_emails_app():
    sources = [path for path in (ROOT / "emailsystem" / "users").rglob("*.py") if "tests" not in path.parts]

    assert len(sources) > 5, "the users app moved"
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            module for module in imported_modules(path) if module.split(".")[:2] == ["emailsystem", "emails"]
        )
        for path in sources
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


# Methods that write through the ORM or a cursor; a selector calls none of them.
WRITES = {
    "save",
    "create",
    "bulk_create",
    "update",
    "bulk_update",
    "delete",
    "get_or_create",
    "update_or_create",
    "execute",
    "executemany",
    "select_for_update",
}


def written_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return sorted(
        f"{node.func.attr} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES
    )


def test_the_write_scan_sees_a_write(tmp_path):
    module = tmp_path / "selectors.py"
    module.write_text("def f(qs):\n    return qs.filter(a=1).update(b=2)\n")
    assert written_calls(module) == ["update (line 2)"]


def test_selectors_never_write():
    selectors = [path for path in (ROOT / "emailsystem").rglob("selectors*.py") if "tests" not in path.parts]

    assert selectors, "the selectors moved"
    offenders = {str(path.relative_to(ROOT)): written_calls(path) for path in selectors}
    assert {path: calls for path, calls in offenders.items() if calls} == {}

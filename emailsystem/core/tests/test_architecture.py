"""Import boundaries between the apps: `users` never imports `emails` (sending depends on accounts, not the reverse)."""

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

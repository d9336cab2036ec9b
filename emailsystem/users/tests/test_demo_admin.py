"""`manage.py demo_admin` (run by `make run`): the password in var/demo-admin.txt is the demo admin's."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command


@pytest.fixture
def workdir(settings, tmp_path):
    settings.DEBUG = True
    settings.BASE_DIR = tmp_path
    return tmp_path


def demo_admin(capsys) -> str:
    call_command("demo_admin")
    printed = capsys.readouterr().out.strip()
    prefix = "Demo admin: admin@example.com / "
    assert printed.startswith(prefix), printed
    return printed.removeprefix(prefix)


def stored_password(workdir) -> str:
    return (workdir / "var" / "demo-admin.txt").read_text().strip()


@pytest.mark.django_db
def test_the_first_run_creates_a_superuser_and_keeps_its_password_in_the_file(workdir, capsys):
    password = demo_admin(capsys)

    admin = get_user_model().objects.get(email="admin@example.com")
    assert admin.is_superuser and admin.is_staff and admin.check_password(password)
    assert stored_password(workdir) == password
    assert (workdir / "var" / "demo-admin.txt").stat().st_mode & 0o777 == 0o600


@pytest.mark.django_db
def test_a_new_database_gets_the_same_password_back(workdir, capsys):
    password = demo_admin(capsys)
    get_user_model().objects.all().delete()  # what deleting db.sqlite3 does to the admin

    assert demo_admin(capsys) == password
    assert get_user_model().objects.get(email="admin@example.com").check_password(password)
    assert stored_password(workdir) == password


@pytest.mark.django_db
def test_later_runs_print_the_same_password_and_set_back_one_changed_in_the_database(workdir, capsys):
    password = demo_admin(capsys)
    assert demo_admin(capsys) == password

    admin = get_user_model().objects.get(email="admin@example.com")
    admin.set_password("changed-in-the-admin-1")
    admin.save()
    assert demo_admin(capsys) == password
    admin.refresh_from_db()
    assert admin.check_password(password)


@pytest.mark.django_db
def test_without_the_file_a_new_password_is_made_and_stored(workdir, capsys):
    first = demo_admin(capsys)
    (workdir / "var" / "demo-admin.txt").unlink()

    second = demo_admin(capsys)

    assert second != first
    assert stored_password(workdir) == second
    assert get_user_model().objects.get(email="admin@example.com").check_password(second)


def test_it_refuses_to_run_outside_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="local development"):
        call_command("demo_admin")

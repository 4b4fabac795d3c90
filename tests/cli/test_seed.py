import json
from pathlib import Path

import pytest

from gql_app.cli import main
from gql_app.security.passwords import password_hasher
from tests.cli.output import one_line_error
from tests.cli.sqlite_file import query, users_in
from tests.factories import STRONG_PASSWORD

OTHER_PASSWORD = "marble giraffe lantern 1987"

ACCOUNTS_YAML = f"""\
# The accounts a frontend's end-to-end tests sign in with.
accounts:
  - email: Admin@Example.com
    password: {STRONG_PASSWORD}
    full_name: Ada Admin
    is_superuser: true
    is_verified: true
  - email: reader@example.com
    password: {OTHER_PASSWORD}
"""


def write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def seed_json(folder: Path, accounts: object) -> Path:
    return write(folder, "accounts.json", json.dumps(accounts))


class TestSeed:
    def test_creates_the_accounts_a_yaml_file_lists(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write(database.parent, "accounts.yaml", ACCOUNTS_YAML)

        exit_code = main(["seed", str(path)])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == "created admin@example.com\ncreated reader@example.com\n"
        assert err == ""
        admin, reader = sorted(users_in(database))
        assert admin[:3] == ("admin@example.com", 1, 1)
        assert reader[:3] == ("reader@example.com", 0, 0)
        assert password_hasher().verify(STRONG_PASSWORD, admin[3]) is True
        assert password_hasher().verify(OTHER_PASSWORD, reader[3]) is True
        assert query(database, "SELECT full_name, is_active FROM users ORDER BY email") == [
            ("Ada Admin", 1),
            (None, 1),
        ]

    def test_a_json_list_works_the_same(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = seed_json(
            database.parent,
            [{"email": "off@example.com", "password": STRONG_PASSWORD, "is_active": False}],
        )

        exit_code = main(["seed", str(path)])

        assert exit_code == 0
        assert capsys.readouterr().out == "created off@example.com\n"
        assert query(database, "SELECT email, is_active FROM users") == [("off@example.com", 0)]

    def test_running_twice_changes_nothing(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write(database.parent, "accounts.yml", ACCOUNTS_YAML)
        assert main(["seed", str(path)]) == 0
        first = query(database, "SELECT * FROM users ORDER BY email")
        capsys.readouterr()

        exit_code = main(["seed", str(path)])

        out, err = capsys.readouterr()
        assert exit_code == 0
        assert out == (
            "exists admin@example.com, left as it is\nexists reader@example.com, left as it is\n"
        )
        assert err == ""
        assert query(database, "SELECT * FROM users ORDER BY email") == first

    def test_an_empty_list_is_said_so(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = seed_json(database.parent, [])

        assert main(["seed", str(path)]) == 0
        assert capsys.readouterr().out == f"{path} lists no accounts\n"

    def test_passwords_are_never_printed(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write(database.parent, "accounts.yaml", ACCOUNTS_YAML)
        main(["seed", str(path)])
        main(["seed", str(path)])

        out, err = capsys.readouterr()
        for password in (STRONG_PASSWORD, OTHER_PASSWORD):
            assert password not in out + err


GOOD = {"email": "good@example.com", "password": STRONG_PASSWORD}

BAD_FILES: dict[str, tuple[str, str | bytes, str]] = {
    "bad json": ("accounts.json", '[{"email": "a@example.com",}]', "not valid JSON: Expecting"),
    "bad yaml": (
        "accounts.yaml",
        "accounts:\n  - email: a@example.com\n   password: x\n",
        "not valid YAML: ",
    ),
    "other suffix": (
        "accounts.txt",
        "[]",
        "the name must end in .json, .yaml or .yml, which says its format",
    ),
    "not utf-8": ("accounts.json", b'[{"email": "\xff"}]', "not UTF-8 text"),
    "empty yaml": ("accounts.yaml", "", 'expected a list of accounts, or {"accounts": [...]}'),
    "an object": (
        "accounts.json",
        json.dumps(GOOD),
        'expected a list of accounts, or {"accounts": [...]}',
    ),
    "not an object": (
        "accounts.json",
        json.dumps([GOOD, "b@example.com"]),
        "account 2: expected an object with email and password",
    ),
    "no email": (
        "accounts.json",
        json.dumps([{"password": STRONG_PASSWORD}]),
        "account 1: email is missing",
    ),
    "no password": (
        "accounts.yaml",
        "- email: a@example.com\n",
        "account 1: password is missing",
    ),
    "number password": (
        "accounts.yaml",
        "- email: a@example.com\n  password: 123456789012345\n",
        "account 1: password must be a string",
    ),
    "unknown field": (
        "accounts.json",
        json.dumps([GOOD, {**GOOD, "is_admin": True}]),
        "account 2: unknown field 'is_admin' (known: email, password, full_name, "
        "is_superuser, is_verified, is_active)",
    ),
    "flag not boolean": (
        "accounts.json",
        json.dumps([{**GOOD, "is_superuser": "yes"}]),
        "account 1: is_superuser must be true or false",
    ),
    "name not text": (
        "accounts.json",
        json.dumps([{**GOOD, "full_name": 7}]),
        "account 1: full_name must be a string or null",
    ),
    "invalid email": (
        "accounts.json",
        json.dumps([GOOD, {"email": "not-an-email", "password": STRONG_PASSWORD}]),
        "account 2: Invalid email address: ",
    ),
    "weak password": (
        "accounts.json",
        json.dumps([GOOD, {"email": "weak@example.com", "password": "password1234"}]),
        "account 2 (weak@example.com): Password is too common or too easy to guess",
    ),
    "email twice": (
        "accounts.json",
        json.dumps([GOOD, {**GOOD, "email": "GOOD@example.com"}]),
        "account 2: good@example.com is also account 1",
    ),
}


class TestBadFiles:
    @pytest.mark.parametrize(("name", "content", "problem"), BAD_FILES.values(), ids=BAD_FILES)
    def test_is_refused_in_one_line_and_changes_nothing(
        self,
        database: Path,
        capsys: pytest.CaptureFixture[str],
        name: str,
        content: str | bytes,
        problem: str,
    ) -> None:
        path = write(database.parent, name, content)

        exit_code = main(["seed", str(path)])

        assert exit_code == 2
        assert one_line_error(capsys).startswith(f"{path}: {problem}")
        assert not database.exists()

    def test_a_missing_file(self, database: Path, capsys: pytest.CaptureFixture[str]) -> None:
        path = database.parent / "missing.yaml"

        assert main(["seed", str(path)]) == 2
        assert one_line_error(capsys) == f"{path}: no such file"

    def test_a_file_that_cannot_be_read(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = database.parent / "folder.json"
        path.mkdir()

        assert main(["seed", str(path)]) == 2
        assert one_line_error(capsys) == f"{path}: cannot read it: Is a directory"

    def test_a_weak_password_is_not_echoed(
        self, database: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = seed_json(database.parent, [{"email": "a@example.com", "password": "password1234"}])

        assert main(["seed", str(path)]) == 2
        assert "password1234" not in one_line_error(capsys)

    def test_a_bad_database_url_is_a_usage_error(
        self,
        environment: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        monkeypatch.setenv("DATABASE_URL", "sqlite:///./sync.db")
        path = seed_json(environment, [GOOD])

        assert main(["seed", str(path)]) == 2
        assert "is not asynchronous" in one_line_error(capsys)

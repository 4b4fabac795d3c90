"""Clients rely on schema.graphql: a breaking change to it must be announced in CHANGELOG.md."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.schema_history import (
    CHANGELOG_FILE,
    NEEDS_HISTORY,
    SCHEMA_FILE,
    WORKING_TREE,
    HistoryUnavailableError,
    SchemaStep,
    compare,
    find_unlisted,
    listed_breaking_changes,
    report,
    schema_steps,
)

ROOT = Path(__file__).resolve().parent.parent

# count keeps Int in use: graphql-core reports an unreferenced standard scalar as removed.
OLD = """
type Query {
  name: String!
  nickname: String
  count: Int!
  age: Int
}
"""
REMOVED = "Field Query.age was removed."
WITHOUT_AGE = """
type Query {
  name: String!
  nickname: String
  count: Int!
}
"""


def _changelog(*breaking: str, heading: str = "### Breaking") -> str:
    bullets = "\n".join(f"- {line}" for line in breaking)
    return f"# Changelog\n\n## [Unreleased]\n\n{heading}\n\n{bullets}\n\n## [0.1.0] - 2026-11-27\n"


def _step(new_sdl: str, old_sdl: str = OLD) -> list[SchemaStep]:
    return [SchemaStep("test step", old_sdl, new_sdl)]


def test_every_breaking_change_in_the_history_of_the_schema_is_in_the_changelog() -> None:
    try:
        steps = schema_steps(ROOT)
    except HistoryUnavailableError as error:
        # from None: the message says all there is; a chained traceback would repeat it.
        raise pytest.fail.Exception(str(error), pytrace=False) from None
    changelog = (ROOT / CHANGELOG_FILE).read_text(encoding="utf-8")

    unlisted = find_unlisted(steps, changelog)

    assert not unlisted, report(unlisted)


def test_a_removed_field_fails_with_the_line_to_add() -> None:
    unlisted = find_unlisted(_step(WITHOUT_AGE), _changelog())

    assert [(step.label, step.breaking) for step in unlisted] == [("test step", (REMOVED,))]
    message = report(unlisted)
    assert f"\n- {REMOVED}\n" in f"{message}\n"
    assert "### Breaking" in message
    assert "## [Unreleased]" in message


def test_a_listed_removal_passes() -> None:
    assert find_unlisted(_step(WITHOUT_AGE), _changelog(REMOVED)) == []


def test_a_removal_listed_under_another_heading_still_fails() -> None:
    changelog = _changelog(REMOVED, heading="### Changed")

    assert [step.breaking for step in find_unlisted(_step(WITHOUT_AGE), changelog)] == [(REMOVED,)]


def test_an_entry_may_be_wrapped_backticked_and_explained() -> None:
    changelog = (
        "## [Unreleased]\n\n### Breaking\n\n"
        "- Field `Query.age` was\n  removed. Ask for `birthDate` instead.\n"
    )

    assert find_unlisted(_step(WITHOUT_AGE), changelog) == []


def test_examples_in_code_fences_are_not_entries() -> None:
    changelog = f"```markdown\n### Breaking\n\n- {REMOVED}\n```\n"

    assert listed_breaking_changes(changelog) == []


def test_an_entry_covers_only_the_type_it_names() -> None:
    old = "type Query { user: User }\ntype User { id: ID }\ntype AdminUser { id: ID }"
    new = "type Query { user: AdminUser }\ntype AdminUser { id: ID }"

    unlisted = find_unlisted(_step(new, old), _changelog("AdminUser was removed."))

    assert [step.breaking for step in unlisted] == [
        ("User was removed.", "Field Query.user changed type from User to AdminUser.")
    ]


def test_an_added_optional_field_passes() -> None:
    added = OLD.replace("age: Int", "age: Int\n  email: String")

    assert compare(OLD, added)[0] == []
    assert find_unlisted(_step(added), _changelog()) == []


def test_an_added_required_argument_is_breaking() -> None:
    changed = OLD.replace("age: Int", "age(unit: String!): Int")

    assert compare(OLD, changed)[0] == ["A required argument Query.age(unit:) was added."]


@pytest.mark.parametrize(
    ("old_type", "new_type", "breaking"),
    [
        # Clients already handle null, so a field that stops returning it breaks nobody...
        ("String", "String!", []),
        # ...while one that starts returning null breaks clients that relied on a value.
        ("String!", "String", ["Field Query.nickname changed type from String! to String."]),
    ],
)
def test_output_field_nullability(old_type: str, new_type: str, breaking: list[str]) -> None:
    old = f"type Query {{ nickname: {old_type} }}"
    new = f"type Query {{ nickname: {new_type} }}"

    assert compare(old, new)[0] == breaking
    assert [list(step.breaking) for step in find_unlisted(_step(new, old), _changelog())] == (
        [breaking] if breaking else []
    )


def test_input_field_nullability_is_the_other_way_round() -> None:
    # A client that leaves an optional input field out would be refused once it is required.
    old = "input Filter { name: String }\ntype Query { users(filter: Filter): Int }"
    new = old.replace("name: String", "name: String!")

    assert compare(old, new)[0] == ["Field Filter.name changed type from String to String!."]
    assert compare(new, old)[0] == []


def test_dangerous_changes_are_reported_but_do_not_fail() -> None:
    old = "type Query { users(first: Int = 20): Int }"
    new = "type Query { users(first: Int = 50): Int }"

    breaking, dangerous = compare(old, new)

    assert breaking == []
    assert dangerous == ["Query.users(first:) has changed defaultValue from 20 to 50."]
    assert find_unlisted(_step(new, old), "") == []


# Git repositories built for the tests below; their commits are isolated from the user's
# git configuration (signing, hooks) and from a hook's GIT_DIR.
def _git(repo: Path, *args: str) -> str:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("GIT_")}
    environment |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=Schema Test", "-c", "user.email=schema-test@example.com"]
    return subprocess.run(  # noqa: S603 - fixed git commands, no shell
        ["git", "-C", str(repo), *identity, *args],  # noqa: S607 - git from PATH, as a developer runs it
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    ).stdout


def _commit(repo: Path, schema: str | None, message: str) -> None:
    if schema is None:
        (repo / "README.md").write_text(message, encoding="utf-8")
    else:
        (repo / SCHEMA_FILE).write_text(schema, encoding="utf-8")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "--quiet")
    return path


def test_the_first_commit_has_nothing_to_compare(repo: Path) -> None:
    _commit(repo, OLD, "first")

    assert schema_steps(repo) == []


def test_a_schema_added_after_the_first_commit_has_nothing_to_compare(repo: Path) -> None:
    _commit(repo, None, "no schema yet")
    _commit(repo, OLD, "schema")

    assert schema_steps(repo) == []


def test_a_breaking_change_two_commits_back_is_found(repo: Path) -> None:
    _commit(repo, OLD, "first")
    _commit(repo, WITHOUT_AGE, "drop age")
    _commit(repo, None, "unrelated")
    _commit(repo, WITHOUT_AGE.replace("}", "  email: String\n}"), "add email")

    steps = schema_steps(repo)
    unlisted = find_unlisted(steps, _changelog())

    assert [step.label.split(" ", 1)[1] for step in steps] == ["drop age", "add email"]
    # HEAD~1 to HEAD alone ("unrelated" to "add email") would have missed it.
    assert [(step.label.split(" ", 1)[1], step.breaking) for step in unlisted] == [
        ("drop age", (REMOVED,))
    ]
    assert find_unlisted(steps, _changelog(REMOVED)) == []


def test_an_uncommitted_breaking_change_is_found(repo: Path) -> None:
    _commit(repo, OLD, "first")
    (repo / SCHEMA_FILE).write_text(WITHOUT_AGE, encoding="utf-8")

    steps = schema_steps(repo)

    assert steps == [SchemaStep(WORKING_TREE, OLD, WITHOUT_AGE)]
    assert [step.breaking for step in find_unlisted(steps, _changelog())] == [(REMOVED,)]


def test_a_shallow_clone_fails_asking_for_history(repo: Path, tmp_path: Path) -> None:
    _commit(repo, OLD, "first")
    _commit(repo, WITHOUT_AGE, "drop age")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "--quiet", "--depth", "1", repo.as_uri(), str(clone))

    with pytest.raises(HistoryUnavailableError, match="shallow clone") as raised:
        schema_steps(clone)
    assert NEEDS_HISTORY in str(raised.value)


def test_an_unpacked_archive_fails_asking_for_history(tmp_path: Path) -> None:
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    (unpacked / SCHEMA_FILE).write_text(OLD, encoding="utf-8")

    with pytest.raises(HistoryUnavailableError, match=re.escape(NEEDS_HISTORY)):
        schema_steps(unpacked)


def test_without_git_the_check_fails_asking_for_it(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _commit(repo, OLD, "first")
    empty = tmp_path / "no-git-here"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    with pytest.raises(HistoryUnavailableError, match="git is not installed"):
        schema_steps(repo)

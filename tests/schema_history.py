"""Breaking changes across the versions of schema.graphql, checked against CHANGELOG.md.

The rule a CHANGELOG.md entry follows is stated at the top of that file; listed_breaking_changes
and is_listed implement it.
"""

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from graphql import build_schema
from graphql.utilities import find_breaking_changes, find_dangerous_changes

SCHEMA_FILE = "schema.graphql"
CHANGELOG_FILE = "CHANGELOG.md"
BREAKING_HEADING = "### Breaking"
WORKING_TREE = "working tree (not committed)"
NEEDS_HISTORY = (
    f"The schema compatibility check compares every committed version of {SCHEMA_FILE}, "
    "so it needs a git checkout with full history"
)

# A hook (pre-commit, pre-push) exports these; they would point git at the hook's repository
# instead of the one given with -C.
_REPOSITORY_VARIABLES = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
)
_BULLET = re.compile(r"[-*+]\s+(.*)")


class HistoryUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class SchemaStep:
    label: str
    old_sdl: str
    new_sdl: str


@dataclass(frozen=True)
class StepChanges:
    label: str
    breaking: tuple[str, ...]
    dangerous: tuple[str, ...]


def compare(old_sdl: str, new_sdl: str) -> tuple[list[str], list[str]]:
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    return (
        [change.description for change in find_breaking_changes(old, new)],
        [change.description for change in find_dangerous_changes(old, new)],
    )


def _normalise(text: str) -> str:
    # Backticks and line wrapping are how people format Markdown, not part of the change.
    return " ".join(text.replace("`", "").split())


def listed_breaking_changes(changelog: str) -> list[str]:
    entries: list[str] = []
    in_breaking = in_fence = False
    bullet_open = False
    for line in changelog.splitlines():
        stripped = line.strip()
        # An example inside a code fence is documentation, not an entry.
        if stripped.startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if line.startswith("#"):
            in_breaking = _normalise(line).lower() == BREAKING_HEADING.lower()
            bullet_open = False
            continue
        if not in_breaking or not stripped:
            continue
        bullet = _BULLET.fullmatch(stripped)
        if bullet:
            entries.append(bullet.group(1))
            bullet_open = True
        elif bullet_open:
            entries[-1] += " " + stripped
    return [_normalise(entry) for entry in entries]


def is_listed(description: str, entries: Iterable[str]) -> bool:
    # Whole descriptions only: "User was removed." must not be covered by an entry for
    # "AdminUser was removed.", while prose after the description is welcome.
    pattern = re.compile(r"(?<![\w.@])" + re.escape(_normalise(description)))
    return any(pattern.search(entry) for entry in entries)


def find_unlisted(steps: Iterable[SchemaStep], changelog: str) -> list[StepChanges]:
    entries = listed_breaking_changes(changelog)
    unlisted: list[StepChanges] = []
    for step in steps:
        breaking, dangerous = compare(step.old_sdl, step.new_sdl)
        missing = tuple(change for change in breaking if not is_listed(change, entries))
        if missing:
            unlisted.append(StepChanges(step.label, missing, tuple(dangerous)))
    return unlisted


def report(unlisted: Sequence[StepChanges]) -> str:
    lines = [
        f"{SCHEMA_FILE} has breaking changes that {CHANGELOG_FILE} does not list.",
        f"Add each `- ` line below, as written, to {CHANGELOG_FILE} under a `{BREAKING_HEADING}`",
        "heading (create it if the section has none) in `## [Unreleased]`, or in the release that",
        "shipped the change. A sentence after a description, such as what to use instead, is fine.",
    ]
    for step in unlisted:
        lines += ["", f"{step.label}:", *(f"- {change}" for change in step.breaking)]
        if step.dangerous:
            lines.append("  Dangerous changes here too, to review (they do not fail the check):")
            lines += [f"  {change}" for change in step.dangerous]
    return "\n".join(lines)


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    git = shutil.which("git")
    if git is None:
        raise HistoryUnavailableError(f"{NEEDS_HISTORY}, and git is not installed (not on PATH)")
    environment = {
        name: value for name, value in os.environ.items() if name not in _REPOSITORY_VARIABLES
    }
    result = subprocess.run(  # noqa: S603 - fixed git commands, no shell
        [git, "-C", str(root), *args],
        input=stdin,
        capture_output=True,
        env=environment,
        check=False,
    )
    if result.returncode:
        error = result.stderr.decode(errors="replace").strip()
        raise HistoryUnavailableError(
            f"{NEEDS_HISTORY}; `git {' '.join(args)}` failed in {root}: {error}"
        )
    return result.stdout


def _require_full_history(root: Path) -> None:
    output = _git(root, "rev-parse", "--is-shallow-repository", "--show-toplevel")
    shallow, toplevel = output.decode().splitlines()[:2]
    # An unpacked archive inside some other checkout would otherwise read that one's history.
    if Path(toplevel).resolve() != root.resolve():
        raise HistoryUnavailableError(
            f"{NEEDS_HISTORY}, but {root} is not the top of a git checkout "
            f"(git found {toplevel}); is this an unpacked archive?"
        )
    # A shallow clone hides the parents of its oldest commits, which would read as
    # "no earlier schema" and pass every change made there unchecked.
    if shallow == "true":
        raise HistoryUnavailableError(
            f"{NEEDS_HISTORY}, but {root} is a shallow clone: run `git fetch --unshallow` "
            "(in CI, clone with full depth, e.g. actions/checkout with fetch-depth: 0)"
        )


def _read_versions(root: Path, names: Sequence[str]) -> dict[str, str | None]:
    # One `git cat-file --batch` reads every version; a name it cannot resolve (the file
    # absent from that commit, or the parent of a root commit) comes back as "missing".
    requests = "".join(f"{name}\n" for name in names).encode()
    output = _git(root, "cat-file", "--batch", stdin=requests)
    versions: dict[str, str | None] = {}
    position = 0
    for name in names:
        end = output.index(b"\n", position)
        header = output[position:end].decode().split()
        position = end + 1
        if header[-1] == "missing":
            versions[name] = None
        elif len(header) == 3 and header[1] == "blob":
            size = int(header[2])
            versions[name] = output[position : position + size].decode()
            position += size + 1
        else:
            raise HistoryUnavailableError(f"{NEEDS_HISTORY}; git cannot read {name}: {header}")
    return versions


def schema_steps(root: Path) -> list[SchemaStep]:
    _require_full_history(root)
    log = _git(root, "log", "--no-show-signature", "--format=%H %s", "--", SCHEMA_FILE)
    commits: list[tuple[str, str]] = []
    for line in log.decode(errors="replace").splitlines():
        sha, _, subject = line.partition(" ")
        commits.append((sha, subject))
    # A merge is compared with its first parent: the line it advanced. The side branch's own
    # commits that touched the file are listed by git log and compared with their parents.
    names = [f"{sha}{parent}:{SCHEMA_FILE}" for sha, _ in commits for parent in ("^", "")]
    head = f"HEAD:{SCHEMA_FILE}"
    versions = _read_versions(root, [*names, head])

    steps: list[SchemaStep] = []
    for sha, subject in reversed(commits):
        old, new = versions[f"{sha}^:{SCHEMA_FILE}"], versions[f"{sha}:{SCHEMA_FILE}"]
        # A version without the file (added here, or deleted) has nothing to compare.
        if old is not None and new is not None:
            steps.append(SchemaStep(f"{sha[:10]} {subject}", old, new))

    working_file = root / SCHEMA_FILE
    committed = versions[head]
    if committed is not None and working_file.exists():
        working = working_file.read_text(encoding="utf-8")
        if working != committed:
            steps.append(SchemaStep(WORKING_TREE, committed, working))
    return steps

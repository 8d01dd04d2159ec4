"""Write tests/MUTATION.md from a finished `mutmut run`: the score per core and every survivor kept, with why.

Run by `make mutation` from the repository's root, after mutmut has filled mutants/. Exits non-zero when a core
scores below the goal or a survivor has no reason in tests/mutation_kept.toml (a new survivor: kill it with a test,
or say there why it is equivalent or harmless).
"""

import argparse
import json
import os
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

GOAL = 95.0
ROOT = Path(__file__).resolve().parents[1]
KEPT_FILE = ROOT / "tests" / "mutation_kept.toml"
REPORT_FILE = ROOT / "tests" / "MUTATION.md"
DETECTED = {"killed", "timeout"}  # a mutant that hangs the tests is caught too: mutmut stops it and counts it
NOT_RUN = "not checked"


@dataclass(frozen=True)
class Survivor:
    name: str
    status: str  # "survived", or "no tests" when no selected test runs its function
    change: str  # the mutant's diff, one line: "-old / +new"
    why: str | None


@dataclass(frozen=True)
class ModuleResult:
    path: str
    total: int
    killed: int
    timeouts: int
    not_run: int  # left unchecked by a stopped run: the score is of the mutants run, and the report fails
    survivors: list[Survivor]

    @property
    def score(self) -> float:
        return 100 * (self.killed + self.timeouts) / (self.total - self.not_run)


def change_of(name: str, path: str) -> str:
    """Return the mutated lines of a mutant's diff, stripped, as one line."""
    diff = get_diff_for_mutant(name, path=path).splitlines()[2:]  # past the ---/+++ header
    return " / ".join(line[0] + line[1:].strip() for line in diff if line[:1] in "+-")


def result_of(path: str, kept: dict) -> ModuleResult:
    codes = json.loads((ROOT / "mutants" / f"{path}.meta").read_text())["exit_code_by_key"]
    statuses = {name: status_by_exit_code[code] for name, code in codes.items()}
    survivors = []
    for name, status in statuses.items():  # in the order of the source
        if status in DETECTED or status == NOT_RUN:
            continue
        change = change_of(name, path)
        reason = kept.get(name, {})
        survivors.append(Survivor(name, status, change, reason.get("why") if reason.get("change") == change else None))
    counts = list(statuses.values())
    return ModuleResult(path, len(counts), counts.count("killed"), counts.count("timeout"), counts.count(NOT_RUN), survivors)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def report(results: list[ModuleResult], seconds: int | None) -> str:
    lines = [
        "# Mutation testing",
        "",
        "Written by `make mutation` (tests/mutation_report.py) from a fresh mutmut run: mutmut 3 changes one thing in a",
        "function of a Flask-free core (a `<` to `<=`, an argument dropped, a string changed...) and runs the tests that",
        "call that function; a test must fail. What is mutated and which tests run is `[tool.mutmut]` in pyproject.toml:",
        "each core with its own Flask-free tests (no conftest, no app), each mutant in a process forked from a server",
        "that has only collected the tests (`process_isolation = \"forkserver\"`). Log calls are not mutated.",
        "",
        f"Goal: at least {GOAL:.0f}% of each core's mutants killed, and no survivor that changes who may do what, how many",
        "views or tries are counted, or which key seals what. A mutant that hangs the tests counts as killed (timeout).",
        "",
        "| core | mutants | killed | timeouts | survived | no tests | not run | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in results:
        survived = sum(survivor.status == "survived" for survivor in result.survivors)
        untested = len(result.survivors) - survived
        lines.append(
            f"| {result.path} | {result.total} | {result.killed} | {result.timeouts} | {survived} | {untested} "
            f"| {result.not_run} | {result.score:.1f}% |"
        )
    if any(result.not_run for result in results):
        lines += [
            "",
            "**A partial run**: it was stopped before every mutant ran (\"not run\"); each score is of the mutants run,",
            "and `make mutation` fails until a whole run passes.",
        ]
    postgres = "with" if os.environ.get("POSTGRES_URL") else "without"
    lines += [
        "",
        f"This run was {postgres} POSTGRES_URL, which the vault's PostgreSQL-only step (VACUUM after a purge) and the",
        "accounts' races on PostgreSQL (a parallel sign-up, an address taken meanwhile) need.",
    ]
    if seconds is not None:
        lines += [f"It took {seconds // 60} min {seconds % 60} s on this machine's 2 cores."]
    for result in results:
        lines += ["", f"## Kept survivors of {result.path}", "", "| mutant | change | why it is kept |", "|---|---|---|"]
        for survivor in result.survivors:
            why = survivor.why or "**UNEXPLAINED: kill it with a test, or say why in tests/mutation_kept.toml**"
            name = survivor.name.removeprefix(result.path.removesuffix(".py") + ".")
            untested = " (no tests)" if survivor.status == "no tests" else ""
            lines.append(f"| `{name}`{untested} | `{_cell(survivor.change)}` | {_cell(why)} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, help="how long the mutmut run took")
    arguments = parser.parse_args()
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    kept = tomllib.loads(KEPT_FILE.read_text())
    results = [result_of(path, kept.get(path, {})) for path in settings["source_paths"]]
    REPORT_FILE.write_text(report(results, arguments.seconds), encoding="utf-8")
    failed = False
    for result in results:
        unexplained = [survivor.name for survivor in result.survivors if survivor.why is None]
        run = f"{result.total - result.not_run} mutants run ({result.not_run} not run)"
        print(f"{result.path}: {result.score:.1f}% of {run} killed; {len(unexplained)} unexplained survivors")
        failed |= result.score < GOAL or bool(unexplained) or result.not_run > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

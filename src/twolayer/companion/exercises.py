"""The exercises of the notebooks: finding them, the runs they ask for, removing solutions.

A notebook's **Try it** section holds sphinx-exercise directives::

    ```{exercise} A title
    :label: du2019-figure1-ex-lr

    Re-run with `-p lr 1.7`. What happens to ...?
    ```

    ```{solution} du2019-figure1-ex-lr
    :class: dropdown

    ...
    ```

The fences may be longer than three characters and may use colons (``:::{solution}``).
The student build of the book removes every ``solution`` directive
(:func:`strip_solutions`); the teaching page estimates each exercise's time from the runs
its text names (:func:`exercise_runs`).
"""

from __future__ import annotations

import copy
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import nbformat

_OPENING = re.compile(r"^[ \t]*(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<argument>.*)$")
_OPTION = re.compile(r"^[ \t]*:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
TRY_IT = "Try it"
"""The heading (level two) of the section that holds a notebook's exercises."""


@dataclass(frozen=True)
class Directive:
    """One fenced MyST directive: its name, argument, options, body and line span."""

    name: str
    argument: str
    options: dict[str, str]
    body: str
    start: int  # index of the opening line
    end: int  # index one past the closing line


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a directive opened with ``fence`` (same character, as long)."""
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}


def directives(markdown: str, name: str) -> list[Directive]:
    """Every top-level fenced directive called ``name`` in ``markdown``, in order.

    A directive ends at the first line made only of its fence character, at least as long
    as its opening fence (CommonMark's rule, which lets nested fences be shorter); an
    unclosed one runs to the end of the text.
    """
    lines = markdown.splitlines()
    found, index = [], 0
    while index < len(lines):
        match = _OPENING.match(lines[index])
        if not match:
            index += 1
            continue
        fence = match["fence"]
        end = index + 1
        while end < len(lines) and not _closes(lines[end], fence):
            end += 1
        if match["name"] == name:
            content = lines[index + 1 : end]
            options = {}
            while content and (option := _OPTION.match(content[0])):
                options[option["key"]] = option["value"].strip()
                content = content[1:]
            found.append(
                Directive(
                    name=name,
                    argument=match["argument"].strip(),
                    options=options,
                    body="\n".join(content).strip(),
                    start=index,
                    end=min(end + 1, len(lines)),
                )
            )
        index = end + 1
    return found


def strip_solutions(markdown: str) -> str:
    """``markdown`` without its ``solution`` directives (and the blank line after each)."""
    lines = markdown.splitlines(keepends=True)
    drop: set[int] = set()
    for solution in directives(markdown, "solution"):
        drop.update(range(solution.start, solution.end))
        if solution.end < len(lines) and not lines[solution.end].strip():
            drop.add(solution.end)
    return "".join(line for index, line in enumerate(lines) if index not in drop)


def without_solutions(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose markdown cells have no ``solution`` directive left."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            cell.source = strip_solutions(cell.source)
    return notebook


def try_it_section(notebook: nbformat.NotebookNode) -> str:
    """The markdown of the notebook's ``## Try it`` section, up to the next heading of level 1-2.

    Empty when the notebook has no such section.
    """
    collected: list[str] = []
    inside = False
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if re.match(r"^#{1,2} ", line):
                inside = line.lstrip("#").strip() == TRY_IT
                continue
            if inside:
                collected.append(line)
        if inside:
            collected.append("")
    return "\n".join(collected)


def _words(span: str) -> list[str]:
    """Shell words of a code span, with the inside of ``P="..."`` split as well."""
    try:
        tokens = shlex.split(span)
    except ValueError:
        return []
    words: list[str] = []
    for token in tokens:
        key, equals, value = token.partition("=")
        if equals and key == "P":
            words += _words(value)
        else:
            words.append(token)
    return words


@dataclass(frozen=True)
class Run:
    """One run an exercise asks for: a profile and ``-p`` overrides."""

    profile: str = "default"
    overrides: dict[str, Any] = field(default_factory=dict)


def exercise_runs(text: str) -> list[Run]:
    """The runs named in an exercise's text: one per code span holding ``-p NAME VALUE``.

    ``Re-run with `-p k 4 -p distributions 2``` names one run at the default profile;
    ``PROFILE=smoke`` in the same span changes its profile. Values are read as the runner
    reads them (Python literals where they are one).
    """
    from twolayer.companion.run import parse_value

    runs = []
    for span in _CODE_SPAN.findall(text):
        words = _words(span)
        if "-p" not in words:
            continue
        profile, overrides = "default", {}
        for index, word in enumerate(words):
            if word == "-p" and index + 2 < len(words):
                overrides[words[index + 1]] = parse_value(words[index + 2])
            elif word.startswith("PROFILE="):
                profile = word.removeprefix("PROFILE=")
        runs.append(Run(profile, overrides))
    return runs


@dataclass(frozen=True)
class Exercise:
    """An exercise of a notebook: its label, title, runs, and whether a solution follows."""

    notebook: str
    label: str
    title: str
    runs: list[Run]
    solution_classes: tuple[str, ...] | None  # None: no solution refers to it


def notebook_exercises(name: str, notebook: nbformat.NotebookNode) -> list[Exercise]:
    """The exercises of the notebook's Try it section, each with its solution's classes."""
    section = try_it_section(notebook)
    solutions = {
        solution.argument: tuple(solution.options.get("class", "").split())
        for solution in directives(section, "solution")
    }
    return [
        Exercise(
            notebook=name,
            label=exercise.options.get("label", ""),
            title=exercise.argument,
            runs=exercise_runs(exercise.body),
            solution_classes=solutions.get(exercise.options.get("label", "")),
        )
        for exercise in directives(section, "exercise")
    ]

"""Exercises: finding them, the runs they name, and the student copy without solutions."""

import ast
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.exercises import (
    Run,
    directives,
    exercise_runs,
    notebook_exercises,
    strip_solutions,
    try_it_section,
    without_solutions,
)
from twolayer.companion.paths import notebooks_dir

TRY_IT = """\
## Try it

```{exercise} Step size
:label: nb-ex-lr

Re-run with `-p lr 1.7 -p widths "[10, 20]"`. What happens?
```

````{solution} nb-ex-lr
:class: dropdown

It diverges. The command:

```bash
make run NB=nb P="-p lr 1.7"
```
````

:::{exercise} Narrow
:label: nb-ex-narrow

Change the code so that the width is 3.
:::

:::{solution} nb-ex-narrow
:class: dropdown
The loss stalls.
:::
Closing words.
"""


def fake_notebook() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# A title\n\nIntro."),
            nbformat.v4.new_code_cell("x = 1"),
            nbformat.v4.new_markdown_cell(TRY_IT),
            nbformat.v4.new_markdown_cell("## Afterwards\n\n```{exercise} Not in Try it\n```"),
        ]
    )


def test_directives_find_nested_fences_and_options():
    [first, second] = directives(TRY_IT, "solution")
    assert first.argument == "nb-ex-lr" and first.options == {"class": "dropdown"}
    assert "make run NB=nb" in first.body and first.body.endswith("```")
    assert second.argument == "nb-ex-narrow" and second.body == "The loss stalls."
    assert [e.options["label"] for e in directives(TRY_IT, "exercise")] == [
        "nb-ex-lr",
        "nb-ex-narrow",
    ]


def test_strip_solutions_keeps_everything_else():
    stripped = strip_solutions(TRY_IT)
    assert "{solution}" not in stripped
    assert "diverges" not in stripped and "stalls" not in stripped and "make run" not in stripped
    assert stripped.count("{exercise}") == 2
    assert "What happens?" in stripped and stripped.endswith("Closing words.\n")
    assert strip_solutions(stripped) == stripped
    assert strip_solutions("no directives\n") == "no directives\n"


def test_without_solutions_copies_the_notebook():
    notebook = fake_notebook()
    student = without_solutions(notebook)
    assert "{solution}" in notebook.cells[2].source  # the original is untouched
    assert "{solution}" not in student.cells[2].source
    assert student.cells[1].source == "x = 1"


def test_try_it_section_ends_at_the_next_heading():
    section = try_it_section(fake_notebook())
    assert "Step size" in section and "Not in Try it" not in section and "Intro" not in section


def test_exercise_runs_read_the_overrides():
    assert exercise_runs("Re-run with `-p k 4 -p distributions 2` and compare.") == [
        Run("default", {"k": 4, "distributions": 2})
    ]
    text = (
        'First `make run NB=b P="-p widths [512,2048] -p betas [0.5,1.0]"`, then '
        '`-p widths "[10, 20, 50]" PROFILE=smoke`, then `-p radius disk`; not `lr`.'
    )
    assert exercise_runs(text) == [
        Run("default", {"widths": [512, 2048], "betas": [0.5, 1.0]}),
        Run("smoke", {"widths": [10, 20, 50]}),
        Run("default", {"radius": "disk"}),
    ]
    assert exercise_runs("Change the code: `x = 1`.") == []


def test_notebook_exercises_pair_each_exercise_with_its_solution():
    [lr, narrow] = notebook_exercises("nb", fake_notebook())
    assert (lr.label, lr.title, lr.solution_classes) == ("nb-ex-lr", "Step size", ("dropdown",))
    assert lr.runs == [Run("default", {"lr": 1.7, "widths": [10, 20]})]
    assert (narrow.label, narrow.runs, narrow.solution_classes) == (
        "nb-ex-narrow",
        [],
        ("dropdown",),
    )
    [alone] = notebook_exercises("nb", without_solutions(fake_notebook()))[:1]
    assert alone.solution_classes is None


@pytest.mark.parametrize("path", sorted(notebooks_dir().glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_ends_with_two_to_four_exercises_with_hidden_solutions(path):
    notebook = nbformat.read(path, as_version=4)
    exercises = notebook_exercises(path.stem, notebook)
    assert 2 <= len(exercises) <= 4, f"{path.stem}: {len(exercises)} exercises in its Try it"
    for exercise in exercises:
        assert exercise.label, f"{path.stem}: exercise {exercise.title!r} has no label"
        assert exercise.solution_classes is not None, f"{exercise.label} has no solution"
        assert "dropdown" in exercise.solution_classes, f"{exercise.label}: solution not hidden"
    markdown = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert len(directives(markdown, "solution")) == len(exercises)  # none outside Try it


def _checked_solutions() -> dict[str, list[str]]:
    """Exercise label -> the tests marked ``@pytest.mark.solution(label)`` that check it."""
    checked: dict[str, list[str]] = {}
    for path in sorted(Path(__file__).parent.glob("test_solutions_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and ast.unparse(decorator.func) == "pytest.mark.solution"
                    and decorator.args
                    and isinstance(decorator.args[0], ast.Constant)
                ):
                    checked.setdefault(decorator.args[0].value, []).append(
                        f"{path.name}::{node.name}"
                    )
    return checked


def test_every_solution_is_checked_by_a_test_that_runs_it():
    """Each solution states a number or a behaviour; a marked test computes and asserts it."""
    labels = {
        exercise.label
        for path in sorted(notebooks_dir().glob("*.ipynb"))
        for exercise in notebook_exercises(path.stem, nbformat.read(path, as_version=4))
        if exercise.solution_classes is not None
    }
    checked = _checked_solutions()
    unchecked = sorted(labels - set(checked))
    assert not unchecked, (
        "solutions without a test marked @pytest.mark.solution(label) in "
        f"tests/test_solutions_*.py: {', '.join(unchecked)}"
    )
    stale = sorted(set(checked) - labels)
    assert not stale, f"tests marked for solutions that no notebook has: {stale}"

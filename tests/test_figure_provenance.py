"""The note under every figure: what it says and where it goes."""

import shlex

import nbformat

from twolayer.companion.figure_provenance import (
    CSS_CLASS,
    changed_parameters,
    figure_provenance,
    reproduce_command,
    with_figure_provenance,
    written_parameters,
)
from twolayer.companion.run import parse_value

PARAMETERS = """\
profile = "default"  # the runner sets it
seed = 0  # at least 0
device = "auto"
widths = [100, 200]  # hidden units
lr = 0.5
radius = "code"
scale = 2 ** 0.5  # not a literal: left out
"""

RECORD = {
    "notebook": "nb-figure1",
    "profile": "smoke",
    "tag": "smoke+seed=3",
    "parameters": {"profile": "smoke", "widths": [10, 20], "lr": 0.5, "seed": 3},
    "overrides": {"seed": 3},
    "device": "CPU Example, 2 cores",
    "status": "succeeded",
    "wall_seconds": 12.34,
    "versions": {"twolayer": "0.1.0", "torch": "2.13.0", "numpy": "2.1.0", "python": "3.11"},
    "inputs_hash": "0123456789abcdef" + "f" * 48,
}


def png_output() -> nbformat.NotebookNode:
    return nbformat.v4.new_output(
        "display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    )


def fake_notebook() -> nbformat.NotebookNode:
    plot = nbformat.v4.new_code_cell("plt.plot(x)", outputs=[png_output()])
    hidden = nbformat.v4.new_code_cell("plt.plot(y)", outputs=[png_output()])
    hidden.metadata["tags"] = ["remove-output"]
    text = nbformat.v4.new_code_cell(
        "print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")]
    )
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Title"), parameters, plot, text, hidden]
    )


def test_written_parameters_are_the_literals_of_the_parameters_cell():
    assert written_parameters(fake_notebook()) == {
        "profile": "default",
        "seed": 0,
        "device": "auto",
        "widths": [100, 200],
        "lr": 0.5,
        "radius": "code",
    }
    assert written_parameters(nbformat.v4.new_notebook()) == {}


def test_changed_parameters_leave_out_the_profile_and_unchanged_values():
    written = written_parameters(fake_notebook())
    assert changed_parameters(RECORD, written) == {"widths": [10, 20], "seed": 3}


def test_reproduce_command_reads_back_as_the_same_values():
    overrides = {"widths": [10, 20], "lr": 0.001, "radius": "disk", "flag": True, "name": "1e-3"}
    command = reproduce_command("nb-figure1", "paper", overrides)
    assert command.startswith('make run NB=nb-figure1 PROFILE=paper P="-p widths ')
    inner = command.split('P="', 1)[1].removesuffix('"')
    words = shlex.split(inner)
    read = {words[i + 1]: parse_value(words[i + 2]) for i in range(0, len(words), 3)}
    assert read == overrides
    assert reproduce_command("nb", "default", {}) == "make run NB=nb PROFILE=default"


def test_the_note_says_how_the_run_was_made():
    note = figure_provenance(RECORD, written_parameters(fake_notebook()))
    assert note.startswith(f"```{{container}} {CSS_CLASS}\n") and note.endswith("\n```")
    for part in (
        "profile `smoke`",
        "seed 3",
        "`widths = [10, 20]`",
        "device CPU Example, 2 cores",
        "twolayer 0.1.0, torch 2.13.0, numpy 2.1.0",
        "12.3 s",
        "inputs hash `0123456789abcdef`",
        '`make run NB=nb-figure1 PROFILE=smoke P="-p seed 3"`',
    ):
        assert part in note, part
    assert "lr =" not in note  # unchanged from the notebook's value


def test_an_old_record_is_reproduced_with_all_its_parameters():
    record = {key: value for key, value in RECORD.items() if key not in ("overrides", "device")}
    note = figure_provenance(record, {"seed": 0, "device": "auto"})
    assert "device `auto`" in note
    assert "P=\"-p widths '[10, 20]' -p lr 0.5 -p seed 3\"" in note


def test_a_note_follows_every_shown_figure_and_nothing_else():
    notebook = fake_notebook()
    staged = with_figure_provenance(notebook, RECORD)
    assert len(notebook.cells) == 5  # the original is untouched
    kinds = [(cell.cell_type, cell.source.split("\n")[0]) for cell in staged.cells]
    assert kinds[2:5] == [
        ("code", "plt.plot(x)"),
        ("markdown", f"```{{container}} {CSS_CLASS}"),
        ("code", "print(1)"),
    ]
    assert len(staged.cells) == 6  # the figure under remove-output gets none
    assert staged.cells[3].metadata["tags"] == [CSS_CLASS]
    nbformat.validate(staged)

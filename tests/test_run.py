"""The runner: its pure parts, then the command line on the fixture notebook."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.run import (
    UsageError,
    describe_parameters,
    effective_parameters,
    inputs_hash,
    load_profiles,
    parse_value,
    unreadable_parameters,
)

FIXTURE = Path(__file__).parent / "fixtures" / "fixture-gd.ipynb"

VALID = {
    "profile": {"default": '"default"', "inferred_type_name": "None", "help": "run scale"},
    "seed": {"default": "0", "inferred_type_name": "None", "help": "random seed"},
    "widths": {"default": "[10, 20]", "inferred_type_name": "None", "help": ""},
    "lr": {"default": "0.5", "inferred_type_name": "float", "help": "step size"},
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("[100, 200]", [100, 200]),
        ("(1, 2)", (1, 2)),
        ("True", True),
        ("None", None),
        ("'quoted'", "quoted"),
        ("quantum", "quantum"),
        ("cuda:0", "cuda:0"),
        ("abc def", "abc def"),
        ("__import__('os')", "__import__('os')"),
    ],
)
def test_values_are_python_literals_or_strings(text, value):
    assert parse_value(text) == value


def write_profiles(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.yml"
    path.write_text(text)
    return path


def test_profile_values_then_overrides(tmp_path):
    profiles = load_profiles(
        write_profiles(tmp_path, "smoke:\n  nb:\n    seed: 1\n    lr: 0.1\ndefault:\npaper: {}\n")
    )
    assert effective_parameters("nb", VALID, profiles, "smoke", {}) == {
        "profile": "smoke",
        "seed": 1,
        "lr": 0.1,
    }
    assert effective_parameters("nb", VALID, profiles, "smoke", {"seed": 7}) == {
        "profile": "smoke",
        "seed": 7,
        "lr": 0.1,
    }
    # the default profile is what the parameters cell already says: nothing to inject for it
    assert effective_parameters("nb", VALID, profiles, "default", {"widths": [5]}) == {
        "widths": [5],
    }
    assert effective_parameters("nb", VALID, profiles, "default", {}) == {}
    assert effective_parameters("other", VALID, profiles, "smoke", {}) == {"profile": "smoke"}


def test_profile_values_are_read_like_command_line_values(tmp_path):
    profiles = load_profiles(
        write_profiles(
            tmp_path,
            "paper:\n  nb:\n    lr: 1e-3\n    device: cuda:0\n    n: 5\n"
            "    lams: [8e-3, 0.016, 1e-2]\n",
        )
    )
    assert profiles["paper"]["nb"] == {
        "lr": 0.001,
        "device": "cuda:0",
        "n": 5,
        "lams": [0.008, 0.016, 0.01],
    }


def test_missing_profiles_file_means_no_overrides(tmp_path):
    profiles = load_profiles(tmp_path / "absent.yml")
    assert effective_parameters("nb", VALID, profiles, "paper", {}) == {"profile": "paper"}


def test_unknown_name_in_profiles_file_is_reported(tmp_path):
    profiles = load_profiles(write_profiles(tmp_path, "paper:\n  nb:\n    widht: 3\n"))
    with pytest.raises(UsageError) as caught:
        effective_parameters("nb", VALID, profiles, "paper", {})
    message = str(caught.value)
    assert "nb has no parameter 'widht' (profiles.yml, profile paper)" in message
    assert "Did you mean 'widths'?" in message
    assert "  seed (int, default 0: random seed)" in message
    # The same file is fine for a profile that does not name the bad parameter.
    assert effective_parameters("nb", VALID, profiles, "smoke", {}) == {"profile": "smoke"}


def test_unknown_name_on_the_command_line_lists_valid_parameters():
    with pytest.raises(UsageError) as caught:
        effective_parameters("nb", VALID, load_profiles(Path("/nonexistent")), "smoke", {"sed": 1})
    message = str(caught.value)
    assert message.startswith("nb has no parameter 'sed' (command line). Did you mean 'seed'?")
    assert message.endswith(describe_parameters(VALID))


def test_profile_is_chosen_with_its_own_option():
    with pytest.raises(UsageError, match="--profile"):
        effective_parameters("nb", VALID, {}, "smoke", {"profile": "paper"})


def test_notebook_without_profile_parameter_is_refused():
    valid = {name: info for name, info in VALID.items() if name != "profile"}
    with pytest.raises(UsageError, match="'profile'"):
        effective_parameters("nb", valid, {}, "smoke", {})


def test_parameter_description():
    assert describe_parameters(VALID).splitlines() == [
        '  profile (str, default "default": run scale)',
        "  seed (int, default 0: random seed)",
        "  widths (list, default [10, 20])",
        "  lr (float, default 0.5: step size)",
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("huge:\n  nb: {}\n", "unknown profile 'huge'"),
        ("default:\n  nb:\n    seed: 1\n", "leave its section empty"),
        ("smoke: [1, 2]\n", "must map notebook names"),
        ("smoke:\n  nb: 3\n", "must map parameter names"),
        ("- 1\n", "expected a mapping"),
    ],
)
def test_malformed_profiles_files_are_refused(tmp_path, text, problem):
    with pytest.raises(UsageError, match=problem):
        load_profiles(write_profiles(tmp_path, text))


def test_inputs_hash_tracks_notebook_profiles_and_parameters(tmp_path):
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{}")
    profiles = tmp_path / "profiles.yml"
    base = inputs_hash(notebook, profiles, {"profile": "smoke"})
    assert base == inputs_hash(notebook, profiles, {"profile": "smoke"})
    assert base != inputs_hash(notebook, profiles, {"profile": "smoke", "seed": 1})
    profiles.write_text("smoke: {}\n")
    assert base != inputs_hash(notebook, profiles, {"profile": "smoke"})
    notebook.write_text('{"cells": []}')
    assert base != inputs_hash(notebook, profiles, {"profile": "smoke"})


def test_parameters_hidden_from_papermill_are_found(tmp_path):
    import papermill

    notebook = nbformat.read(FIXTURE, as_version=4)
    notebook.cells = [
        nbformat.v4.new_code_cell(
            'profile = "default"  # run scale\nn = 3  # points (>= 2)\nlr: float = 0.1  # step',
            metadata={"tags": ["parameters"]},
        )
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    valid = papermill.inspect_notebook(str(path))
    assert unreadable_parameters(path, valid) == ["n"]
    assert unreadable_parameters(FIXTURE, papermill.inspect_notebook(str(FIXTURE))) == []


# ---------------------------------------------------------------------------
# Command line, on the fixture notebook


def runner(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "twolayer.companion.run", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    result = runner(str(FIXTURE), "--profile", "smoke", "-p", "seed", "3", "--out", str(out))
    return out, result


def test_success_writes_results_where_predicted(smoke_run):
    out, result = smoke_run
    assert result.returncode == 0, result.stderr
    directory = out / "smoke+seed=3" / "fixture-gd"
    assert sorted(path.name for path in directory.iterdir()) == [
        "claims.json",
        "figures",
        "fixture-gd.ipynb",
        "run.json",
    ]
    record = json.loads((directory / "run.json").read_text())
    assert record["status"] == "succeeded"
    assert record["parameters"] == {"profile": "smoke", "steps": 20, "n": 50, "seed": 3}
    assert set(record) >= {
        "notebook",
        "profile",
        "started",
        "wall_seconds",
        "versions",
        "inputs_hash",
    }
    assert record["versions"]["torch"].startswith("2.13.0")
    claims = json.loads((directory / "claims.json").read_text())
    assert [claim["status"] for claim in claims] == ["check passed", "needs larger scale"]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fixture-gd [smoke+seed=3] finished in ")
    assert lines[1] == f"  notebook: {directory / 'fixture-gd.ipynb'}"
    assert lines[2] == (
        f"  claims:   {directory / 'claims.json'} "
        "(0 of 1 reproduced, 1 needs larger scale; 1 of 1 check passed)"
    )
    executed = nbformat.read(directory / "fixture-gd.ipynb", as_version=4)
    injected = [cell for cell in executed.cells if "injected-parameters" in cell.metadata.tags]
    assert "seed = 3" in injected[0].source
    assert (directory / "figures" / "loss.png").is_file()


def test_reuse_skips_an_unchanged_run(smoke_run):
    out, _ = smoke_run
    result = runner(
        str(FIXTURE), "--profile", "smoke", "-p", "seed", "3", "--out", str(out), "--reuse"
    )
    assert result.returncode == 0
    assert result.stdout.startswith("fixture-gd [smoke+seed=3] up to date, skipped")


def test_unknown_parameter_lists_the_valid_ones(tmp_path):
    result = runner(str(FIXTURE), "-p", "stpes", "3", "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: fixture-gd has no parameter 'stpes' (command line). Did you mean 'steps'?"
    )
    assert "  steps (int, default 50: gradient steps, at least 2)" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("seed", "abc", "error: seed = 'abc' is not allowed: expected an integer >= 0"),
        (
            "device",
            "quantum",
            "error: device = 'quantum' is not allowed: "
            "expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'",
        ),
    ],
)
def test_rejected_value_gives_one_line(tmp_path, name, value, message):
    result = runner(str(FIXTURE), "--profile", "smoke", "-p", name, value, "--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == message + "\n"
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_failing_cell_keeps_the_failed_notebook(tmp_path):
    notebook = nbformat.read(FIXTURE, as_version=4)
    notebook.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('broken on purpose')"))
    broken = tmp_path / "broken.ipynb"
    nbformat.write(notebook, broken)
    out = tmp_path / "results"
    result = runner(str(broken), "--profile", "smoke", "--out", str(out))
    directory = out / "smoke" / "broken"
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: broken failed in cell 4: RuntimeError: broken on purpose",
        f"  notebook: {directory / 'broken.failed.ipynb'}",
    ]
    assert sorted(path.name for path in directory.iterdir()) == ["broken.failed.ipynb", "run.json"]
    record = json.loads((directory / "run.json").read_text())
    assert record["status"] == "failed"
    assert record["error"] == "RuntimeError: broken on purpose"


def test_unknown_notebook_and_missing_arguments():
    result = runner("no-such-notebook")
    assert result.returncode == 2 and result.stderr.startswith(
        "error: no notebook 'no-such-notebook'"
    )
    assert runner().returncode == 2


def test_kernels_start_one_at_a_time_and_release_the_lock_before_the_first_cell(tmp_path):
    """While another process holds the kernel-start lock the run waits; once its kernel is up
    the lock is free again, so the notebook's own cells can take it."""
    from filelock import FileLock

    lock_path = tmp_path / "kernel.lock"
    notebook = nbformat.read(FIXTURE, as_version=4)
    started = tmp_path / "kernel-started"
    probe = (
        f"open({str(started)!r}, 'w').close()\n"
        f"from filelock import FileLock\nFileLock({str(lock_path)!r}).acquire(timeout=0)"
    )
    notebook.cells.insert(3, nbformat.v4.new_code_cell(probe))
    probed = tmp_path / "probed.ipynb"
    nbformat.write(notebook, probed)
    command = [sys.executable, "-m", "twolayer.companion.run", str(probed), "--profile", "smoke"]
    environment = {**os.environ, "TWOLAYER_KERNEL_LOCK": str(lock_path)}
    held = FileLock(lock_path)
    held.acquire()
    try:
        process = subprocess.Popen(
            [*command, "--out", str(tmp_path / "results")],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        directory = tmp_path / "results" / "smoke" / "probed"
        deadline = time.monotonic() + 120
        while not (directory / "run.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)  # the record is written just before the lock is requested
        time.sleep(10)  # time enough for a kernel to start, were it not waiting
        assert process.poll() is None
        assert not started.exists()
    finally:
        held.release()
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    assert stdout.startswith("probed [smoke] finished in ")
    assert started.exists()
    FileLock(lock_path).acquire(timeout=0)  # and nothing holds it after the run

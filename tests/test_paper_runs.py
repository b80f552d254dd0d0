"""Recording paper-profile runs for the book (twolayer.companion.paper_runs)."""

from __future__ import annotations

import json

from twolayer.companion.paper_runs import collect, main, merge, paper_runs_markdown


def _fake_run(root, name, status="succeeded", holds=(True, False)):
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "run.json").write_text(
        json.dumps(
            {
                "notebook": name,
                "profile": "paper",
                "tag": "paper",
                "status": status,
                "started": "2026-11-27T13:00:00+00:00",
                "wall_seconds": 150.0,
                "versions": {"torch": "2.11.0+cu130"},
            }
        )
    )
    claims = [
        {
            "id": f"claim-{i}",
            "origin": "paper",
            "kind": "reproduction",
            "holds": h,
            "holds_from": "paper",
            "measured": 0.5,
            "statement": "...",
        }
        for i, h in enumerate(holds)
    ]
    (directory / "claims.json").write_text(json.dumps(claims))
    if status == "succeeded":
        resources = {"notebook_s": 149.0, "peak_rss_bytes": 3 * 2**30, "peak_gpu_bytes": 2**29}
        (directory / "resources.json").write_text(json.dumps(resources))


def test_runs_are_collected_merged_and_shown(tmp_path):
    results = tmp_path / "paper"
    _fake_run(results, "b-notebook")
    _fake_run(results, "a-notebook", status="failed", holds=())
    machine = {"gpu": "NVIDIA H200", "cpu": "16 cores", "date": "2026-11-27"}
    runs = collect(results, machine)
    assert set(runs) == {"a-notebook", "b-notebook"}
    assert runs["b-notebook"]["claims"][1] == {
        "id": "claim-1",
        "origin": "paper",
        "kind": "reproduction",
        "holds": False,
        "holds_from": "paper",
        "measured": 0.5,
    }
    store = tmp_path / "paper_runs.json"
    store.write_text(json.dumps({"old-notebook": runs["b-notebook"]}))
    merged = merge(store, runs)
    assert list(merged) == ["a-notebook", "b-notebook", "old-notebook"]
    page = paper_runs_markdown(merged, ["a-notebook", "b-notebook", "c-notebook", "d-notebook"])
    assert (
        "| b-notebook | NVIDIA H200 | 2026-11-27 | 2.5 min | 3.0 GiB, 0.5 GiB GPU | 1 of 2 "
        "| `claim-1` |" in page
    )
    assert (
        "| a-notebook | NVIDIA H200 | 2026-11-27 | 2.5 min | not recorded | 0 of 0 | run failed |"
        in page
    )
    assert "Not run at the paper profile yet: c-notebook, d-notebook." in page
    assert "Not run at the paper profile yet" not in paper_runs_markdown(merged, ["a-notebook"])
    empty = paper_runs_markdown(None, ["c-notebook"])
    assert "No paper-profile run has been recorded yet" in empty
    assert "Not run at the paper profile yet: c-notebook." in empty


def test_the_machine_is_the_runs_own_device_unless_described(tmp_path):
    results = tmp_path / "paper"
    _fake_run(results, "b-notebook")
    record = json.loads((results / "b-notebook" / "run.json").read_text())
    record["device"] = "CPU Example, 2 torch threads of 2 cores"
    (results / "b-notebook" / "run.json").write_text(json.dumps(record))
    runs = collect(results)
    assert runs["b-notebook"]["machine"] == {"device": "CPU Example, 2 torch threads of 2 cores"}
    assert "| b-notebook | CPU Example, 2 torch threads of 2 cores | " in paper_runs_markdown(runs)
    assert collect(results, {"gpu": "NVIDIA H200"})["b-notebook"]["machine"] == {
        "gpu": "NVIDIA H200"
    }


def test_the_command_refuses_an_empty_directory(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no <notebook>/run.json" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2

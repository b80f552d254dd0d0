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
    page = paper_runs_markdown(merged)
    assert "| b-notebook | NVIDIA H200 | 2026-11-27 | 2.5 min | 1 of 2 | `claim-1` |" in page
    assert "| a-notebook | NVIDIA H200 | 2026-11-27 | 2.5 min | 0 of 0 | run failed |" in page
    assert "No paper-profile run has been recorded yet" in paper_runs_markdown(None)


def test_the_command_refuses_an_empty_directory(tmp_path, capsys):
    assert main([str(tmp_path)]) == 1
    assert "no <notebook>/run.json" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 2

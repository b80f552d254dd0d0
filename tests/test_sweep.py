"""Seed sweeps: fresh seeds, per-claim counts, Dask runs gathered into the results tree."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.run import UsageError
from twolayer.companion.sweep import (
    SEED_STRIDE,
    _gather,
    claim_rates,
    find_sweep,
    load_summary,
    main,
    publish,
    store_files,
    summary_path,
    sweep,
    sweep_seeds,
)

# A notebook whose one reproduction holds for even multiples of 1000 only, so that a sweep
# over 1000, 2000, 3000 must count it as held for exactly one seed.
PARAMETERS = (
    'profile = "default"  # run scale\nseed = 0  # random seed\ndevice = "auto"  # device\n'
    "die_once = False  # the kernel dies the first time this run starts\n"
)
CLAIMS = """\
import os

from twolayer.companion import params as p, setup

nb = setup("fixture-sweep", globals(), die_once=p.boolean())
if die_once and not (nb.out / "died").exists():
    (nb.out / "died").touch()
    os._exit(1)
nb.claims.check(
    id="even-thousands", statement="The seed is an even multiple of 1000.", source="fixture",
    origin="book", kind="reproduction", measured=seed, expected="seed / 1000 even",
    holds=(seed // 1000) % 2 == 0,
)
nb.claims.check(
    id="always", statement="Always true.", source="fixture", origin="book",
    kind="consistency", measured=1, expected="1", holds=True,
)
nb.claims.write()
"""


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("notebooks") / "fixture-sweep.ipynb"
    parameters = nbformat.v4.new_code_cell(PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    content = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(CLAIMS)])
    content.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    content.metadata["language_info"] = {"name": "python"}
    nbformat.write(content, path)
    return path


def test_seeds_are_fresh_and_far_apart():
    assert sweep_seeds(3) == [1000, 2000, 3000]
    assert 0 not in sweep_seeds(50) and SEED_STRIDE >= 1000
    for bad in (0, -2, True, 2.5):
        with pytest.raises(UsageError, match="--seeds must be a positive whole number"):
            sweep_seeds(bad)


def test_claim_rates_count_the_seeds_each_claim_held_for():
    def record(id, holds, kind="reproduction"):
        return {
            "id": id,
            "statement": "s",
            "origin": "paper",
            "kind": kind,
            "holds_from": "smoke",
            "profile": "smoke",
            "holds": holds,
        }

    runs = [
        {"seed": 1000, "claims": [record("a", True), record("b", False, "consistency")]},
        {"seed": 2000, "claims": [record("a", False), record("b", False, "consistency")]},
        {"seed": 3000, "claims": [record("a", True)]},  # a run that recorded fewer claims
    ]
    a, b = claim_rates(runs)
    assert (a["id"], a["held"], a["runs"], a["failed_seeds"]) == ("a", 2, 3, [2000])
    assert (b["id"], b["held"], b["runs"], b["failed_seeds"]) == ("b", 0, 2, [1000, 2000])
    assert b["kind"] == "consistency" and a["origin"] == "paper"


def test_a_sweep_runs_every_seed_on_dask_and_counts_each_claim(notebook, tmp_path):
    out = tmp_path / "results"
    target = sweep(str(notebook), 3, "smoke", workers=2, out_root=out, echo=lambda *a: None)
    assert target == summary_path("fixture-sweep", "smoke", {}, out)
    assert target == out / "smoke" / "fixture-sweep" / "sweep.json"
    content = load_summary(target)
    assert content["seeds"] == [1000, 2000, 3000] and content["complete"]
    assert content["succeeded"] == 3
    even, always = content["claims"]
    assert (even["id"], even["held"], even["runs"]) == ("even-thousands", 1, 3)
    assert even["failed_seeds"] == [1000, 3000]
    assert (always["held"], always["runs"]) == (3, 3)
    # each run is an ordinary run of the results tree, under its seed's tag
    for seed in (1000, 2000, 3000):
        directory = out / f"smoke+seed={seed}" / "fixture-sweep"
        record = json.loads((directory / "run.json").read_text())
        assert record["parameters"]["seed"] == seed and record["status"] == "succeeded"
        assert (directory / "fixture-sweep.ipynb").is_file()
        assert content["runs"][str(seed)]["status"] == "succeeded"

    # The same sweep sent to a running scheduler: every run is up to date and is skipped.
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        again = sweep(
            str(notebook),
            3,
            "smoke",
            scheduler=cluster.scheduler_address,
            out_root=out,
            echo=lambda *a: None,
        )
    content = load_summary(again)
    assert {run["status"] for run in content["runs"].values()} == {"skipped"}
    assert content["claims"][0]["held"] == 1 and content["succeeded"] == 3


def test_a_run_whose_kernel_died_is_tried_once_more(notebook, tmp_path):
    lines = []
    target = sweep(
        str(notebook),
        1,
        "smoke",
        {"die_once": True},
        workers=1,
        out_root=tmp_path,
        echo=lines.append,
    )
    assert any("trying once more" in line for line in lines)
    content = load_summary(target)
    assert content["runs"]["1000"]["status"] == "succeeded" and content["succeeded"] == 1
    assert (tmp_path / "smoke+die_once=True+seed=1000" / "fixture-sweep" / "died").is_file()


def test_a_bad_request_stops_before_any_run(notebook, tmp_path):
    with pytest.raises(UsageError, match="chooses its own seeds"):
        sweep(str(notebook), 2, overrides={"seed": 3}, out_root=tmp_path)
    with pytest.raises(UsageError, match="has no parameter 'widht'"):
        sweep(str(notebook), 2, overrides={"widht": 3}, out_root=tmp_path)
    with pytest.raises(UsageError, match="no notebook 'du2019-figure9'"):
        sweep("du2019-figure9", 2, out_root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_value_the_notebook_rejects_exits_with_its_message(notebook, tmp_path, capsys):
    argv = [str(notebook), "--seeds", "1", "-p", "device", "tpu", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "device" in capsys.readouterr().err
    assert not list(tmp_path.rglob("sweep.json"))  # nothing ran, nothing is kept


def test_runs_from_a_remote_worker_land_in_the_local_tree(tmp_path):
    """A worker elsewhere sends its run's files back; they are written here."""
    claims = [
        {
            "id": "c",
            "statement": "s",
            "source": "x",
            "origin": "book",
            "kind": "reproduction",
            "assumptions": "",
            "outside_assumptions": [],
            "measured": 1,
            "expected": "1",
            "holds": True,
            "profile": "smoke",
            "holds_from": "smoke",
            "status": "reproduced",
            "notebook": "nb-x",
            "paper": "nb",
        }
    ]
    files = {
        "run.json": json.dumps({"inputs_hash": "abc", "wall_seconds": 4.5}).encode(),
        "claims.json": json.dumps(claims).encode(),
        "figures/a.png": b"png",
    }
    result = {
        "seed": 1000,
        "tag": "smoke+seed=1000",
        "status": "succeeded",
        "error": "",
        "host": "elsewhere",
        "files": files,
    }
    directory = tmp_path / "smoke+seed=1000" / "nb-x"
    gathered = _gather(result, directory, "abc")
    assert gathered["status"] == "succeeded" and gathered["seconds"] == 4.5
    assert [record["id"] for record in gathered["claims"]] == ["c"]
    assert (directory / "figures" / "a.png").read_bytes() == b"png"
    # other inputs on the worker (another version): refused, nothing written
    elsewhere = tmp_path / "other"
    refused = _gather(result, elsewhere, "def")
    assert refused["status"] == "failed" and "other inputs" in refused["error"]
    assert refused["claims"] == [] and not elsewhere.exists()
    store_files(directory, {"run.json": files["run.json"]})  # identical: left untouched
    assert (directory / "run.json").read_bytes() == files["run.json"]


def summary_content(profile="smoke", overrides=None, complete=True):
    return {
        "notebook": "nb-x",
        "profile": profile,
        "overrides": overrides or {},
        "seeds": [1000, 2000],
        "complete": complete,
        "succeeded": 2,
        "runs": {
            "1000": {"status": "succeeded"},
            "2000": {"status": "failed"},
        },
        "claims": [{"id": "c", "kind": "reproduction", "held": 1, "runs": 1}],
    }


def test_published_sweeps_and_the_results_tree_are_found_in_order(tmp_path):
    book, results = tmp_path / "book", tmp_path / "results"
    book.mkdir()
    assert find_sweep("nb-x", "default", results, book) is None
    publish(summary_content("smoke"), book)
    published = json.loads((book / "sweeps.json").read_text())
    assert published["nb-x"]["smoke"]["failed_runs"] == [2000]
    assert "runs" not in published["nb-x"]["smoke"]
    assert find_sweep("nb-x", "default", results, book)["profile"] == "smoke"
    # a sweep at the book's profile wins; in the results tree it wins over the published one
    publish(summary_content("default"), book)
    assert find_sweep("nb-x", "default", results, book)["profile"] == "default"
    local = summary_path("nb-x", "default", {}, results)
    local.parent.mkdir(parents=True)
    local.write_text(json.dumps({**summary_content("default"), "seeds": [1, 2, 3]}))
    assert find_sweep("nb-x", "default", results, book)["seeds"] == [1, 2, 3]
    assert find_sweep("nb-x", "paper", results, book)["seeds"] == [1, 2, 3]  # larger first
    with pytest.raises(UsageError, match="without -p overrides"):
        publish(summary_content(overrides={"n": 3}), book)
    with pytest.raises(UsageError, match="has runs left"):
        publish(summary_content(complete=False), book)
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ValueError, match="not a sweep summary"):
        load_summary(tmp_path / "bad.json")

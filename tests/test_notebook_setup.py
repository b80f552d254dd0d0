"""setup(): the one call after a notebook's parameters cell."""

import matplotlib as mpl
import pytest
import torch

from twolayer import plotting
from twolayer.companion import NotebookRun, ParameterError, params as p, setup
from twolayer.companion.notebook import paper_of


def namespace(**values):
    base = {"profile": "smoke", "seed": 3, "device": "cpu", "n": 10.0, "lr": 0.5}
    return {**base, **values}


def test_setup_checks_normalizes_and_prepares_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path / "run"))
    mpl.rcParams["axes.grid"] = False
    values = namespace()
    nb = setup("du2019-figure1", values, n=p.integer(min=2), lr=p.real(above=0))
    assert isinstance(nb, NotebookRun)
    assert values["n"] == 10 and isinstance(values["n"], int)  # written back, normalized
    assert (nb.name, nb.paper, nb.profile, nb.seed) == ("du2019-figure1", "du2019", "smoke", 3)
    assert nb.device == torch.device("cpu")
    assert nb.out == tmp_path / "run" and nb.out.is_dir()
    assert (nb.claims.notebook, nb.claims.paper, nb.claims.profile) == (
        "du2019-figure1",
        "du2019",
        "smoke",
    )
    assert mpl.rcParams["axes.grid"] == plotting.STYLE["axes.grid"]
    line = nb.provenance()
    assert "seed 3" in line and "profile smoke" in line and "wall time" in line


def test_auto_device_is_resolved(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path))
    nb = setup("du2019-figure1", namespace(device="auto"))
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert nb.device.type == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"profile": "huge"}, "profile = 'huge' is not allowed: expected one of 'smoke'"),
        ({"seed": -1}, "seed = -1 is not allowed: expected an integer >= 0"),
        ({"device": "tpu"}, "device = 'tpu' is not allowed"),
        ({"n": 1}, "n = 1 is not allowed: expected an integer >= 2"),
        ({"lr": 0}, "lr = 0 is not allowed: expected a real number > 0"),
    ],
)
def test_a_bad_value_stops_the_notebook_with_one_line(tmp_path, monkeypatch, values, message):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path / "never"))
    with pytest.raises(ParameterError) as caught:
        setup("du2019-figure1", namespace(**values), n=p.integer(min=2), lr=p.real(above=0))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "never").exists()  # nothing is created for a rejected run


def test_common_parameters_need_no_spec_and_refuse_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path))
    with pytest.raises(TypeError, match="'seed' is checked by setup itself"):
        setup("du2019-figure1", namespace(), seed=p.integer(min=0))


def test_a_missing_parameter_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path))
    values = namespace()
    del values["seed"]
    with pytest.raises(KeyError, match="seed"):
        setup("du2019-figure1", values)


@pytest.mark.parametrize(
    ("name", "paper"),
    [
        ("du2019-figure1", "du2019"),
        ("bridge-lazy-to-mean-field", "bridge"),
        ("fixture-gd", "fixture"),
    ],
)
def test_paper_key_comes_from_the_notebook_name(name, paper):
    assert paper_of(name) == paper


@pytest.mark.parametrize("name", ["figure1", "-figure1", "du2019-"])
def test_a_name_without_paper_key_is_refused(name):
    with pytest.raises(ValueError, match="<paper key>-<result>"):
        paper_of(name)

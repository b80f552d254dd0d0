"""Repository paths, run directories and result tags."""

from pathlib import Path

import pytest

from twolayer.companion.paths import PROFILES, repo_root, result_dir, run_dir, run_tag


def test_repo_root_holds_the_project():
    root = repo_root()
    assert (root / "pyproject.toml").is_file()
    assert (root / "src" / "twolayer" / "companion" / "paths.py").is_file()
    assert Path(__file__).resolve().is_relative_to(root)


def test_run_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path / "a" / "b"))
    assert run_dir("any-notebook") == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()


def test_run_dir_without_the_runner_is_under_results_lab(tmp_path, monkeypatch):
    monkeypatch.delenv("TWOLAYER_RUN_DIR", raising=False)
    monkeypatch.setattr("twolayer.companion.paths.results_root", lambda: tmp_path)
    assert run_dir("nb") == tmp_path / "lab" / "nb"
    assert (tmp_path / "lab" / "nb").is_dir()


@pytest.mark.parametrize(
    ("profile", "overrides", "tag"),
    [
        ("smoke", {}, "smoke"),
        ("smoke", {"seed": 3}, "smoke+seed=3"),
        ("paper", {"widths": [100, 200], "lr": 0.5}, "paper+lr=0.5+widths=100,200"),
        ("default", {"lr": 1e-3, "flag": True}, "default+flag=True+lr=0.001"),
        ("default", {"device": "cuda:0"}, "default+device=cuda-0"),
        ("default", {"name": "a b/c"}, "default+name=a-b-c"),
        ("default", {"x": None, "y": -1}, "default+x=None+y=-1"),
    ],
)
def test_tags_are_readable_and_file_name_safe(profile, overrides, tag):
    assert run_tag(profile, overrides) == tag


def test_tags_do_not_depend_on_override_order():
    assert run_tag("smoke", {"a": 1, "b": 2}) == run_tag("smoke", {"b": 2, "a": 1})


def test_long_tags_are_shortened_with_a_hash():
    long_a = run_tag("paper", {"widths": list(range(100))})
    long_b = run_tag("paper", {"widths": list(range(101))})
    assert len(long_a) <= 80 and len(long_b) <= 80
    assert long_a.startswith("paper+widths=0,1,2,")
    assert long_a != long_b


def test_unknown_profile_has_no_tag():
    with pytest.raises(ValueError, match="profile"):
        run_tag("huge", {})


def test_result_dir_layout(tmp_path):
    assert result_dir("nb", "smoke+seed=3", tmp_path) == tmp_path / "smoke+seed=3" / "nb"
    assert result_dir("nb", "smoke") == repo_root() / "results" / "smoke" / "nb"
    assert PROFILES == ("smoke", "default", "paper")

"""Parameter specs: accepted values, normalization, and the wording of rejections."""

import math

import numpy as np
import pytest

from twolayer.companion import params
from twolayer.companion.params import (
    ParameterError,
    boolean,
    choice,
    device,
    integer,
    integer_list,
    real,
    real_list,
    validate,
)


def rejection(spec: params.Spec, value: object, name: str = "x") -> str:
    with pytest.raises(ParameterError) as caught:
        spec.check(name, value)
    return str(caught.value)


@pytest.mark.parametrize(
    ("spec", "value", "normalized"),
    [
        (integer(), 3, 3),
        (integer(), 3.0, 3),
        (integer(), np.int64(7), 7),
        (integer(min=0), 0, 0),
        (integer(min=1, max=5), 5, 5),
        (real(), 2, 2.0),
        (real(above=0), 1e-3, 0.001),
        (real(min=0, max=1), np.float32(0.5), 0.5),
        (boolean(), True, True),
        (boolean(), np.bool_(False), False),
        (choice("smoke", "default"), "smoke", "smoke"),
        (choice(1, 2), 2, 2),
        (integer_list(), (1, 2), [1, 2]),
        (integer_list(min=1, increasing=True), [10, 20.0, 30], [10, 20, 30]),
        (integer_list(min_length=0), [], []),
        (real_list(above=0), [1, 0.5], [1.0, 0.5]),
        (device(), "auto", "auto"),
        (device(), "cpu", "cpu"),
    ],
)
def test_accepted_values_are_normalized(spec, value, normalized):
    result = spec.check("x", value)
    assert result == normalized
    assert type(result) is type(normalized)
    if isinstance(result, list):
        assert all(type(a) is type(b) for a, b in zip(result, normalized, strict=True))


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (integer(), True),
        (integer(), "3"),
        (integer(), 3.5),
        (integer(), math.inf),
        (integer(), None),
        (integer(min=0), -1),
        (integer(max=10), 11),
        (real(), "0.5"),
        (real(), False),
        (real(), math.nan),
        (real(), -math.inf),
        (real(above=0), 0),
        (real(below=1), 1.0),
        (real(min=0), -1e-9),
        (real(max=2), 2.5),
        (boolean(), 1),
        (boolean(), "True"),
        (choice("smoke", "default"), "paper"),
        (choice(1, 2), True),
        (integer_list(), 3),
        (integer_list(), "12"),
        (integer_list(), []),
        (integer_list(), [1, "2"]),
        (integer_list(min=1), [0, 1]),
        (integer_list(increasing=True), [2, 2]),
        (integer_list(min_length=3), [1, 2]),
        (real_list(), [1.0, math.nan]),
        (real_list(below=1), [0.5, 1.0]),
        (real_list(increasing=True), [0.2, 0.1]),
        (device(), "quantum"),
        (device(), "cuda:"),
        (device(), "cuda:x"),
        (device(), 0),
    ],
)
def test_rejected_values_raise(spec, value):
    message = rejection(spec, value, name="knob")
    assert message.startswith("knob = ")
    assert " is not allowed: " in message


def test_message_names_parameter_value_and_what_is_allowed():
    assert rejection(integer(min=0), "abc", "seed") == (
        "seed = 'abc' is not allowed: expected an integer >= 0"
    )
    assert rejection(real(above=0, below=2), 0, "lr") == (
        "lr = 0 is not allowed: expected a real number > 0 and < 2"
    )
    assert rejection(integer_list(min=1, increasing=True), [3, 2], "widths") == (
        "widths = [3, 2] is not allowed: "
        "expected a non-empty list of integers >= 1 in increasing order"
    )
    assert rejection(real_list(min_length=2), [1.0], "p") == (
        "p = [1.0] is not allowed: expected a list of at least 2 real numbers"
    )
    assert rejection(choice("smoke", "default", "paper"), "big", "profile") == (
        "profile = 'big' is not allowed: expected one of 'smoke', 'default' or 'paper'"
    )
    assert rejection(boolean(), 1, "flag") == "flag = 1 is not allowed: expected True or False"
    assert rejection(device(), "quantum", "device") == (
        "device = 'quantum' is not allowed: expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    )


def test_long_values_are_shortened_in_messages():
    message = rejection(integer(), "y" * 1000)
    assert len(message) < 150


def test_cuda_is_refused_where_it_is_missing(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = rejection(device(), "cuda", "device")
    assert message.startswith("device = 'cuda' is not allowed: CUDA is not available")
    assert "'cpu'" in message


def test_cuda_index_must_exist(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device().check("device", "cuda:0") == "cuda:0"
    assert "1 CUDA device" in rejection(device(), "cuda:1", "device")


def test_error_renders_as_one_line_in_ipython():
    error = ParameterError("seed", "abc", "expected an integer >= 0")
    assert error._render_traceback_() == [
        "ParameterError: seed = 'abc' is not allowed: expected an integer >= 0"
    ]
    assert isinstance(error, ValueError)
    assert (error.name, error.value) == ("seed", "abc")


def test_validate_writes_normalized_values_back():
    namespace = {"n": 4.0, "lr": 1, "widths": (1, 2), "other": "untouched"}
    validate(namespace, n=integer(min=2), lr=real(above=0), widths=integer_list())
    assert namespace == {"n": 4, "lr": 1.0, "widths": [1, 2], "other": "untouched"}
    assert type(namespace["n"]) is int and type(namespace["lr"]) is float


def test_validate_stops_at_the_first_bad_value():
    namespace = {"a": 1.0, "b": -1, "c": "bad"}
    with pytest.raises(ParameterError, match="^b = -1 "):
        validate(namespace, a=integer(), b=integer(min=0), c=integer())
    assert namespace["a"] == 1 and type(namespace["a"]) is int


def test_validate_reports_a_missing_variable():
    with pytest.raises(KeyError, match="widths"):
        validate({"n": 1}, widths=integer_list())


def test_choice_needs_options():
    with pytest.raises(ValueError):
        choice()

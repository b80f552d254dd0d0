"""Validation of notebook parameters.

Every notebook checks its ``parameters`` cell in the next cell, so that a bad value
(from the command line, from ``profiles.yml`` or from a reader's edit) stops the run with
one line naming the parameter, the value and what is allowed. The specs below say what each
parameter accepts; :func:`twolayer.companion.setup` applies them (and those of ``profile``,
``seed`` and ``device``) with :func:`validate`::

    from twolayer.companion import params as p, setup

    nb = setup("du2019-figure1", globals(), n=p.integer(min=2), lr=p.real(above=0))

Import the module rather than its functions: ``device`` names both a spec here and the
notebook parameter, so importing the function would clash with the parameters cell.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 12
_short.maxtuple = 12


class ParameterError(ValueError):
    """A parameter value outside what the notebook accepts.

    The message reads ``<name> = <value> is not allowed: <reason>``; IPython shows it as
    one line instead of a traceback.
    """

    def __init__(self, name: str, value: Any, reason: str) -> None:
        self.name = name
        self.value = value
        self.reason = reason
        super().__init__(f"{name} = {_short.repr(value)} is not allowed: {reason}")

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


class _Rejected(Exception):
    """Raised by a converter; ``reason`` replaces the spec's default wording."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Spec:
    """What a parameter accepts: a description for messages and a converter.

    ``convert`` returns the normalized value or raises ``_Rejected``.
    """

    description: str
    convert: Callable[[Any], Any]

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` normalized, or raise ParameterError naming ``name``."""
        try:
            return self.convert(value)
        except _Rejected as rejected:
            reason = rejected.reason or f"expected {self.description}"
            raise ParameterError(name, value, reason) from None


def _bounds(min=None, max=None, above=None, below=None) -> list[str]:
    conditions = []
    if min is not None:
        conditions.append(f">= {min}")
    if above is not None:
        conditions.append(f"> {above}")
    if max is not None:
        conditions.append(f"<= {max}")
    if below is not None:
        conditions.append(f"< {below}")
    return conditions


def _within(x: float, min=None, max=None, above=None, below=None) -> bool:
    return (
        (min is None or x >= min)
        and (max is None or x <= max)
        and (above is None or x > above)
        and (below is None or x < below)
    )


def _to_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Rejected
    if isinstance(value, numbers.Integral):
        return int(value)
    if math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise _Rejected


def _to_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Rejected
    result = float(value)
    if not math.isfinite(result):
        raise _Rejected
    return result


def _join_or(words: Sequence[str]) -> str:
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} or {words[-1]}"


def integer(min: int | None = None, max: int | None = None) -> Spec:
    """An integer within inclusive bounds; an integral float such as ``3.0`` becomes ``3``."""
    conditions = _bounds(min, max)

    def convert(value: Any) -> int:
        result = _to_int(value)
        if not _within(result, min, max):
            raise _Rejected
        return result

    return Spec(" ".join(["an integer", " and ".join(conditions)]).strip(), convert)


def real(
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> Spec:
    """A finite real number; ``min``/``max`` are inclusive bounds, ``above``/``below`` strict."""
    conditions = _bounds(min, max, above, below)

    def convert(value: Any) -> float:
        result = _to_float(value)
        if not _within(result, min, max, above, below):
            raise _Rejected
        return result

    return Spec(" ".join(["a real number", " and ".join(conditions)]).strip(), convert)


def boolean() -> Spec:
    """``True`` or ``False`` (numpy booleans are accepted; 0 and 1 are not)."""

    def convert(value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise _Rejected
        return bool(value)

    return Spec("True or False", convert)


def choice(*options: Any) -> Spec:
    """One of the given options, compared by equality (a bool never matches an int)."""
    if not options:
        raise ValueError("choice() needs at least one option")

    def convert(value: Any) -> Any:
        for option in options:
            if isinstance(value, bool) == isinstance(option, bool) and value == option:
                return option
        raise _Rejected

    return Spec(f"one of {_join_or([repr(option) for option in options])}", convert)


def _list_spec(
    noun: str,
    item: Callable[[Any], Any],
    conditions: list[str],
    min_length: int,
    increasing: bool,
) -> Spec:
    if min_length <= 0:
        head = f"a list of {noun}s"
    elif min_length == 1:
        head = f"a non-empty list of {noun}s"
    else:
        head = f"a list of at least {min_length} {noun}s"
    description = " ".join([head, " and ".join(conditions)]).strip()
    if increasing:
        description += " in increasing order"

    def convert(value: Any) -> list:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise _Rejected
        result = [item(element) for element in value]
        if len(result) < min_length:
            raise _Rejected
        if increasing and any(b <= a for a, b in zip(result, result[1:], strict=False)):
            raise _Rejected
        return result

    return Spec(description, convert)


def integer_list(
    min: int | None = None,
    max: int | None = None,
    min_length: int = 1,
    increasing: bool = False,
) -> Spec:
    """A list (or tuple) of integers, each within inclusive bounds; returned as a list."""
    item = integer(min, max).convert
    return _list_spec("integer", item, _bounds(min, max), min_length, increasing)


def real_list(
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    min_length: int = 1,
    increasing: bool = False,
) -> Spec:
    """A list (or tuple) of finite reals, each within the bounds; returned as floats."""
    item = real(min, max, above, below).convert
    conditions = _bounds(min, max, above, below)
    return _list_spec("real number", item, conditions, min_length, increasing)


def device() -> Spec:
    """A torch device name: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:<index>"``.

    CUDA names are accepted only when this machine has a matching CUDA device; the
    rules are those of :func:`twolayer.devices.device_error`.
    """

    def convert(value: Any) -> str:
        from twolayer.devices import device_error

        problem = device_error(value)
        if problem is not None:
            raise _Rejected(problem)
        return value

    return Spec("'auto', 'cpu', 'cuda' or 'cuda:<index>'", convert)


def validate(namespace: MutableMapping[str, Any], **specs: Spec) -> None:
    """Check each named value in ``namespace`` and write the normalized value back.

    The notebook passes ``globals()``. The first value that does not fit raises
    ParameterError; a spec naming a variable the namespace lacks raises KeyError.
    """
    for name, spec in specs.items():
        if name not in namespace:
            raise KeyError(f"validate(): no variable named {name!r} to check")
        namespace[name] = spec.check(name, namespace[name])

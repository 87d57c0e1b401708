"""Checking values from a file (a recipe, a catalog) against a function's type hints, before anything runs.

A recipe's ``low: two hundred`` should be named as the bad parameter it is when the recipe is read, not end
in a ValueError deep inside a tool halfway through a batch. Only the shapes a YAML or JSON file can hold are
checked (numbers, text, true/false, null, lists, fixed choices); anything else a hint names is accepted.
"""

from __future__ import annotations

import collections.abc
import math
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union

_NONE = type(None)


def type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The function's resolved type hints; none where they cannot be resolved."""
    try:
        return typing.get_type_hints(function)
    except (NameError, TypeError):
        return {}


def describe(hint: Any) -> str:
    """What a hint asks for, in words a recipe's author knows."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "a whole number"
    if hint is float:
        return "a number"
    if hint in (str, Path):
        return "text"
    if hint is _NONE:
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Union or _is_union_type(hint):
        return " or ".join(describe(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} values ({', '.join(describe(a) for a in args)})"
    if origin in (tuple, list, collections.abc.Sequence):
        return f"a list of {_plural(describe(args[0]))}" if args else "a list"
    return getattr(hint, "__name__", str(hint))


def _plural(words: str) -> str:
    if words.startswith("a list of "):
        return "lists of " + words[len("a list of ") :]
    return {"a number": "numbers", "a whole number": "whole numbers", "text": "texts"}.get(words, words)


def _is_union_type(hint: Any) -> bool:
    union_type = getattr(types, "UnionType", None)  # Python >= 3.10: X | Y
    return union_type is not None and isinstance(hint, union_type)


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` (as read from YAML/JSON) has the shape ``hint`` asks for."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if hint in (str, Path):
        return isinstance(value, str)
    if hint is _NONE:
        return value is None
    if origin is Literal:
        return value in args
    if origin is Union or _is_union_type(hint):
        return any(fits(value, a) for a in args)
    if origin in (tuple, list, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(fits(v, a) for v, a in zip(value, args))
        return not args or all(fits(v, args[0]) for v in value)
    return True  # a class a file cannot name (arrays, objects): left to the function


def check_value(name: str, value: Any, hint: Any) -> str | None:
    """None when ``value`` fits; else the problem, as a clause: ``low must be a number, not 'two hundred'``."""
    if fits(value, hint):
        return None
    return f"{name} must be {describe(hint)}, not {value!r}"


__all__ = ["check_value", "describe", "fits", "type_hints"]

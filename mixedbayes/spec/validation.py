"""pydantic's validation errors as :class:`~mixedbayes.errors.Problem`\\ s a user can act on.

pydantic says ``Input should be greater than or equal to 1``; a spec error says which key
(``sampler.draws``), the value given, what is allowed and how to fix it, with the key's
default when it has one (``set sampler.draws to an integer >= 1, e.g. its default
1000``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from mixedbayes.errors import Problem

__all__ = ["validation_problems"]

#: What pydantic's error types allow, in words (``{...}`` filled from the error's context).
ALLOWED: dict[str, str] = {
    "greater_than_equal": "a number >= {ge}",
    "greater_than": "a number > {gt}",
    "less_than_equal": "a number <= {le}",
    "less_than": "a number < {lt}",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text (a string)",
    "literal_error": "one of {expected}",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "tuple_type": "a list",
    "list_type": "a list",
}
#: Bounds refine the type: ``an integer >= 1`` rather than ``a number >= 1``.
_BOUNDS = ("greater_than_equal", "greater_than", "less_than_equal", "less_than")


def _inner(annotation: Any, step: str | int) -> Any:
    """The type one step into ``annotation``: an item of a tuple or list, a value of a
    dict; optional types are unwrapped."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType) and len(args) == 1:
        return _inner(args[0], step)
    if origin in (tuple, list, Sequence) and args:
        return args[0]
    if origin in (dict, Mapping) and len(args) == 2:
        return args[1]
    return None


def _field(model: type[BaseModel], name: str | int) -> FieldInfo | None:
    for key, info in model.model_fields.items():
        if name in (key, info.alias):
            return info
    return None


def _field_at(model: type[BaseModel] | None, loc: Sequence[str | int]) -> FieldInfo | None:
    """The pydantic field a key path ends at (None when it does not end at a field)."""
    current: Any = model
    info: FieldInfo | None = None
    for step in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = _field(current, step)
            current = info.annotation if info is not None else None
        else:
            info = None
            current = _inner(current, step)
        if current is None and info is None:
            return None
    return info


def _unwrap(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _range(info: FieldInfo) -> str:
    """The bounds of a numeric field in words (``> 0 and < 1``), from its metadata."""
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    parts = [
        f"{sign} {getattr(m, key):g}"
        for m in info.metadata
        for key, sign in words.items()
        if getattr(m, key, None) is not None
    ]
    return " and ".join(parts)


def _allowed(err: Mapping[str, Any], info: FieldInfo | None) -> str:
    error_type = str(err["type"])
    text = ALLOWED.get(error_type, "")
    if not text:
        return ""
    text = text.format(**dict(err.get("ctx") or {}))
    annotation = _unwrap(info.annotation) if info is not None else None
    if error_type in _BOUNDS and info is not None and _range(info):
        text = f"a number {_range(info)}"
    if annotation is int:
        text = text.replace("a number", "an integer")
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        keys = [f.alias or k for k, f in annotation.model_fields.items()]
        text += f" (keys: {', '.join(keys)})"
    return text


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value)


def _default(info: FieldInfo | None) -> str:
    if info is None or info.default is PydanticUndefined or info.default is None:
        return ""
    if isinstance(info.default, BaseModel | Mapping | Sequence) and not isinstance(
        info.default, str
    ):
        return ""
    return f", e.g. its default {_yaml(info.default)}"


def _problem(err: Mapping[str, Any], model: type[BaseModel] | None) -> Problem:
    loc = tuple(err["loc"])
    where = ".".join(str(p) for p in loc) or "spec"
    error_type = str(err["type"])
    info = _field_at(model, loc) if model is not None and loc else None
    if error_type == "extra_forbidden":
        return Problem(f"unknown key {loc[-1]!r}", where, "remove it or check its spelling.")
    if error_type == "missing":
        what = f" ({info.description})" if info is not None and info.description else ""
        return Problem(f"this key is required{what}", where, f"add {where} to the spec.")
    msg = str(err["msg"]).removeprefix("Value error, ")
    allowed = _allowed(err, info)
    if not allowed:
        return Problem(msg, where, "")
    value = err.get("input")
    return Problem(
        f"{_yaml(value)} is not allowed here: {where} must be {allowed}.",
        where,
        f"set {where} to {allowed}{_default(info)}"
        + (", or leave it out" if _default(info) else "")
        + ".",
    )


def validation_problems(
    exc: ValidationError, model: type[BaseModel] | None = None
) -> list[Problem]:
    """Turn pydantic's errors into problems naming each key path, the value given, what is
    allowed and how to fix it.

    Parameters
    ----------
    exc : pydantic.ValidationError
    model : type, optional
        The spec class validated: its fields give the defaults named in the hints.

    Returns
    -------
    list of Problem
    """
    return [_problem(err, model) for err in exc.errors()]

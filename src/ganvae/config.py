"""Typed configuration: dataclasses, dotted `--set key=value` overrides and config files.

Nothing here executes code: files are parsed with yaml.safe_load or tomllib, values are
coerced to the field's declared type, and an unknown key is an error that lists the known ones.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
import warnings
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from .errors import BadInput, did_you_mean


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (often a string from the command line) to the type `tp`."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except BadInput as e:
                errors.append(str(e))
        raise BadInput(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise BadInput(f"{key}={value!r}: choose one of {', '.join(map(str, choices))}")
        return value
    if tp is dict or origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"{key}={value!r}: expected a mapping (from Python or a config file)")
        return dict(value)
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise BadInput(f"{key}={value!r}: expected a list")
        (inner, *rest) = get_args(tp) or (str,)
        return origin(_coerce(v, inner, key) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise BadInput(f"{key}={value!r}: expected true or false")
    if tp is int:
        if isinstance(value, bool):
            raise BadInput(f"{key}={value!r}: expected an integer")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).replace("_", ""))
        except ValueError:
            raise BadInput(f"{key}={value!r}: expected an integer") from None
    if tp is float:
        if isinstance(value, bool):
            raise BadInput(f"{key}={value!r}: expected a number")
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise BadInput(f"{key}={value!r}: expected a number") from None
        if f != f or f in (float("inf"), float("-inf")):
            raise BadInput(f"{key}={value!r}: must be a finite number")
        return f
    if tp is str:
        if not isinstance(value, (str, int, float)):
            raise BadInput(f"{key}={value!r}: expected a string")
        return str(value)
    raise BadInput(f"{key}: unsupported type {tp}")


def fields_of(cls) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def replace(obj, overrides: dict[str, Any], where: str = "--set", note_renamed: bool = True):
    """A copy of dataclass `obj` with `overrides` applied, type-checked.

    Nested dataclass fields take dotted keys (`train.lr`). Unknown keys raise BadInput. A key
    the class lists in its `renamed` (old name -> new) is taken under its new name, with a
    deprecation note where note_renamed (a user's input, not a saved file).
    """
    hints = fields_of(type(obj))
    renamed = getattr(type(obj), "renamed", {})
    changes: dict[str, Any] = {}
    nested: dict[str, dict] = {}
    for key, value in overrides.items():
        if key in renamed and key not in hints:
            if note_renamed:
                warnings.warn(f"{where}: {key} is now {renamed[key]}; {key} will be removed", FutureWarning)
            key = renamed[key]
        head, dot, rest = key.partition(".")
        if head not in hints:
            known = ", ".join(sorted(hints))
            raise BadInput(f"{where}: unknown key {key!r} for {type(obj).__name__}{did_you_mean(head, hints)}; "
                           f"known keys: {known}")
        if dot:
            if not dataclasses.is_dataclass(getattr(obj, head)):
                raise BadInput(f"{where}: {head!r} has no sub-keys ({key!r})")
            nested.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(getattr(obj, head)):
            if not isinstance(value, dict):
                raise BadInput(f"{where}: {key!r} is a section; set its keys as {key}.NAME=VALUE")
            nested.setdefault(head, {}).update(value)
        else:
            changes[head] = _coerce(value, hints[head], key)
    for head, sub in nested.items():
        changes[head] = replace(getattr(obj, head), sub, where)
    new = dataclasses.replace(obj, **changes)
    validate = getattr(new, "validate", None)
    if validate:
        validate()
    return new


def from_dict(cls, data: dict, where: str):
    """Build dataclass `cls` from a plain dict (a loaded config.json), strictly."""
    return replace(cls(), data, where, note_renamed=False)


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def parse_set(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`--set key=value` items -> {key: value}."""
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise BadInput(f"--set {item!r}: expected KEY=VALUE, e.g. --set model.beta=4")
        out[key.strip()] = value.strip()
    return out


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_file(path: str | Path, flat: bool = True) -> dict[str, Any]:
    """Read a YAML, TOML or JSON config file into flat dotted keys (flat=False: as nested in the
    file). Never executes anything."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"--config {path}: cannot read it ({e})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
        msg = str(e).splitlines()[0]
        raise BadInput(f"--config {path}: not valid {path.suffix.lstrip('.') or 'YAML'} ({msg})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BadInput(f"--config {path}: expected a mapping of keys to values at the top")
    return _flatten(data) if flat else data

"""The one config validator.

Every JSON config in the repo (datasets, training runs, mixer, crossfade, server) is a
``@dataclass`` whose fields carry the types; :func:`load_config` turns a dict or a JSON file
into an instance and rejects what the original projects silently accepted: unknown keys
(``fma_meta_path`` for ``fma_meta_dir``), wrong types, and booleans written as strings
(``"batchnorm": "false"`` built batch-norm VGGs for a whole sweep of deep-audioviz-experiments).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import types
import typing as tp
from pathlib import Path

from deepaudio.core.errors import ToolkitError


class ConfigError(ToolkitError):
    """A config value that is unknown, of the wrong type, or out of range; names the key."""

T = tp.TypeVar("T")


def _type_name(annotation: tp.Any) -> str:
    if tp.get_origin(annotation) is tp.Literal:
        return " | ".join(json.dumps(a) for a in tp.get_args(annotation))
    if isinstance(annotation, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "NoneType": "null", "list": "list", "dict": "object"}.get(annotation.__name__,
                                                                          annotation.__name__)
    args = tp.get_args(annotation)
    if args:
        if tp.get_origin(annotation) in (list, tuple):
            return f"list of {_type_name(args[0])}"
        return " or ".join(_type_name(a) for a in args)
    return str(annotation)


def _matches(value: tp.Any, annotation: tp.Any) -> bool:
    """True when a JSON value fits a field annotation. bool is never an int, nor a str a bool."""
    origin = tp.get_origin(annotation)
    if annotation is tp.Any:
        return True
    if annotation is type(None):
        return value is None
    if origin is tp.Literal:
        return any(value == a and type(value) is type(a) for a in tp.get_args(annotation))
    if origin in (tp.Union, types.UnionType):
        return any(_matches(value, a) for a in tp.get_args(annotation))
    if origin in (list, tuple):
        (inner, *_) = tp.get_args(annotation) or (tp.Any,)
        return isinstance(value, (list, tuple)) and all(_matches(v, inner) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation in (dict, list):
        return isinstance(value, annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    raise TypeError(f"config validator does not know annotation {annotation!r}")


def load_config(cls: type[T], source: dict | str | os.PathLike, *, where: str = "config") -> T:
    """Build the dataclass ``cls`` from a dict or a JSON file, checking every key.

    Missing keys take the field defaults; a field without a default is required. After the
    types are checked, the dataclass's ``validate()`` (if any) checks ranges and relations.
    """
    if not isinstance(source, dict):
        path = Path(source)
        where = str(path)
        try:
            source = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{where}: config file not found") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(source, dict):
            raise ConfigError(f"{where}: a config must be a JSON object")
    hints = tp.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(tp.cast(tp.Any, cls))}
    unknown = sorted(set(source) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} "
                          f"(known keys: {', '.join(sorted(fields))})")
    for name, field in fields.items():
        no_default = (field.default is dataclasses.MISSING
                      and field.default_factory is dataclasses.MISSING)
        if name not in source:
            if no_default:
                raise ConfigError(f"{where}: missing required key {name!r}")
            continue
        value = source[name]
        if not _matches(value, hints[name]):
            hint = ""
            if isinstance(value, str) and value.lower() in ("true", "false"):
                hint = f" (write {value.lower()} without quotes)"
            raise ConfigError(f"{where}: key {name!r} must be {_type_name(hints[name])}, "
                              f"got {json.dumps(value)}{hint}")
    values = dict(source)
    for name, value in values.items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            values[name] = _finite(value, hints[name], f"{where}: key {name!r}")
    config = cls(**values)
    validate = getattr(config, "validate", None)
    if validate is not None:
        try:
            validate()
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return config


def _finite(value: int | float, annotation: tp.Any, what: str) -> int | float:
    """A number as the field wants it: ints become floats for float fields; NaN, infinities
    and numbers too large for a float are errors (JSON files may hold ``NaN`` or ``1e999``)."""
    try:
        as_float = float(value)
    except OverflowError:
        raise ConfigError(f"{what} is out of range ({str(value)[:20]}...)") from None
    if not math.isfinite(as_float):
        raise ConfigError(f"{what} must be a finite number, got {value}")
    return as_float if annotation is float else value


def config_to_dict(config: tp.Any) -> dict:
    return dataclasses.asdict(config)

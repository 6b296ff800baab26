"""What every route shares: JSON errors, the current (anonymous) user, settings, and checked
query parameters and bodies."""

from __future__ import annotations

import math
import secrets
import time
import typing as tp
from pathlib import Path

from flask import current_app, request, session

from deepaudio.core.errors import ToolkitError
from deepaudio.web.db import db


class ApiError(ToolkitError):
    """An error the client caused or must know about, returned as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.message = message
        super().__init__(message)


def setting(name: str, default: tp.Any = None) -> tp.Any:
    return current_app.config.get(name, default)


def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def user_id() -> str:
    """The current browser's anonymous user id, kept in the signed session cookie."""
    uid = session.get("uid")
    if not uid or not isinstance(uid, str):
        uid = secrets.token_urlsafe(12)
        session["uid"] = uid
        session.permanent = True
        db().execute("INSERT OR IGNORE INTO users (id, created) VALUES (?, ?)", (uid, time.time()))
    return uid


def identify() -> None:
    """``before_request`` of the API blueprints: every caller gets a user id at once."""
    user_id()


def json_body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object in the request body")
    return data


def arg(name: str, cast: tp.Callable = str, default: tp.Any = None, *,
        choices: tp.Sequence | None = None, lo: float | None = None,
        hi: float | None = None) -> tp.Any:
    """A query parameter, converted and checked; ApiError 400 naming the parameter if bad."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"parameter {name!r}: cannot read {raw!r} as "
                            f"{getattr(cast, '__name__', 'a value')}") from None
    if choices is not None and value not in choices:
        raise ApiError(400, f"parameter {name!r} must be one of {', '.join(map(str, choices))}, "
                            f"got {raw!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, f"parameter {name!r} must be in [{lo}, {hi}], got {raw!r}")
    return value


def finite(obj: tp.Any) -> tp.Any:
    """JSON-safe copy: NaN and infinities (e.g. the loudness of silence) become null."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj

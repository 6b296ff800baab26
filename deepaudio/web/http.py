"""What every route shares: JSON errors, the current (anonymous) user, settings, and checked
query parameters and bodies."""

from __future__ import annotations

import json
import math
import re
import secrets
import time
import typing as tp
from pathlib import Path

from flask import Response, current_app, g, has_request_context, request, send_file, session

from deepaudio.core.errors import ToolkitError
from deepaudio.web.db import db


class ApiError(ToolkitError):
    """An error the client caused or must know about, returned as ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, *,
                 extra: dict[str, tp.Any] | None = None):
        self.status = int(status)
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}            # more keys of the JSON body, beside "error"
        super().__init__(message)


def setting(name: str, default: tp.Any = None) -> tp.Any:
    return current_app.config.get(name, default)


def data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def user_id() -> str:
    """The current browser's anonymous user id, kept in the signed session cookie. Only a user
    who stores something gets a row in the database (:func:`ensure_user`): a request that
    stores nothing (a health check, a crawler) leaves nothing behind."""
    uid = session.get("uid")
    if not uid or not isinstance(uid, str):
        uid = secrets.token_urlsafe(12)
        session["uid"] = uid
        session.permanent = True
    return uid


def ensure_user() -> str:
    """This request's user id, recorded in ``users`` (when it uploads, separates or saves)."""
    uid = user_id()
    db().execute("INSERT OR IGNORE INTO users (id, created) VALUES (?, ?)", (uid, time.time()))
    return uid


def identify() -> None:
    """``before_request`` of the API blueprints: every caller gets a user id at once."""
    user_id()


MAX_JSON_BYTES = 1 << 20        # a JSON body: a mix's settings or a crossfade request is < 2 KB
MAX_JSON_DEPTH = 16
MAX_JSON_INT = 2 ** 53          # integers beyond this are no setting of ours (and not exact JSON)


def json_body() -> dict:
    """The request's JSON object, refused before parsing when larger than ``MAX_JSON_BYTES``
    (413), and refused (400) when nested deeper than ``MAX_JSON_DEPTH``, holding NaN,
    infinities, integers beyond 2**53, or text that is not valid Unicode (lone surrogates)."""
    length = request.content_length
    if length is not None and length > MAX_JSON_BYTES:
        raise ApiError(413, f"request body too large: JSON bodies are limited to "
                            f"{MAX_JSON_BYTES >> 10} KiB")
    raw = request.stream.read(MAX_JSON_BYTES + 1)      # a body without a length is read bounded
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(413, f"request body too large: JSON bodies are limited to "
                            f"{MAX_JSON_BYTES >> 10} KiB")
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except RecursionError:
        raise ApiError(400, "the JSON body is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, f"expected a JSON object in the request body ({e})") from None
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object in the request body")
    check_json_value(data)
    return data


def _no_constant(name: str) -> tp.NoReturn:
    raise ApiError(400, f"the JSON body holds {name}, which is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ApiError(400, f"the JSON body holds the number {text[:40]}, which is out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 20 or abs(int(text)) > MAX_JSON_INT:
        raise ApiError(400, f"the JSON body holds the integer {text[:40]}"
                            f"{'...' if len(text) > 40 else ''}, which is out of range")
    return int(text)


def check_json_value(value: tp.Any) -> None:
    """Depth and text checks over a parsed JSON value (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise ApiError(400, f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict):
            for k, v in item.items():
                check_text(k)
                stack.append((v, depth + 1))
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def check_text(text: str, what: str = "text") -> str:
    """``text``, if it can be stored (UTF-8 encodable: no lone surrogates); else a 400."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"the {what} is not valid Unicode (it holds a lone surrogate)") \
            from None
    return text


MAX_QUERY_INT = 10 ** 6          # page numbers, seeds and other integer parameters stay below
MAX_QUERY_TEXT = 200             # characters of a search string or a name


def arg(name: str, cast: tp.Callable = str, default: tp.Any = None, *,
        choices: tp.Sequence | None = None, lo: float | None = None,
        hi: float | None = None) -> tp.Any:
    """A query parameter, converted and checked; ApiError 400 naming the parameter if bad.

    Numbers must be finite; integers without an explicit ``hi`` stay below ``MAX_QUERY_INT``
    in magnitude; text is at most ``MAX_QUERY_TEXT`` characters."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if len(raw) > MAX_QUERY_TEXT:
        raise ApiError(400, f"parameter {name!r} is longer than {MAX_QUERY_TEXT} characters")
    try:
        value = cast(raw)
    except (TypeError, ValueError, OverflowError):
        raise ApiError(400, f"parameter {name!r}: cannot read {raw!r} as "
                            f"{getattr(cast, '__name__', 'a value')}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, f"parameter {name!r} must be a finite number, got {raw!r}")
    if isinstance(value, int) and not isinstance(value, bool) and hi is None \
            and abs(value) > MAX_QUERY_INT:
        raise ApiError(400, f"parameter {name!r} must be at most {MAX_QUERY_INT} in size, "
                            f"got {raw!r}")
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


# an absolute path: "/" not inside a word, a URL or a relative path, then at least one folder
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])/(?:[^\s/'\"(),;]+/)+[^\s'\"(),;]*")


def public_name(path: str | Path, name: str) -> None:
    """Remember, for this request, how the user knows a server file (``track 'My song'``):
    error messages then say that instead of the path."""
    names = g.setdefault("public_names", {})
    names[str(path)] = name


def public_message(text: str, names: dict[str, str] | None = None) -> str:
    """``text`` as a user may read it: the files this request touched under the names the user
    knows them by, and any other absolute server path replaced (the log keeps the detail)."""
    if names is None:
        names = g.get("public_names", {}) if has_request_context() else {}
    for path, name in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(path, name)
    return _ABSOLUTE_PATH.sub("<server path>", text)


_SINGLE_RANGE = re.compile(r"bytes=(\d+-\d*|-\d+)")


def send_media(path: Path, *, mimetype: str, **options: tp.Any) -> Response:
    """A file with ETag/Last-Modified and HTTP Range support (206 Partial Content).

    As RFC 9110 allows, a ``Range`` header that is not one well-formed byte range (garbage,
    several ranges) is ignored and the whole file is sent; a well-formed range past the end of
    the file answers 416."""
    header = request.headers.get("Range")
    if header is not None and not _SINGLE_RANGE.fullmatch(header.strip()):
        request.environ.pop("HTTP_RANGE", None)
    return send_file(path, mimetype=mimetype, conditional=True, **options)

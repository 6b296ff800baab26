"""The project's one error family and how command lines report it.

Every error a user can cause and fix (a bad file, a bad config value, missing weights) is a
:class:`ToolkitError`. Command lines print it on one line and exit 2; the server answers 4xx
with ``{"error": message}``. Programming errors stay loud.
"""

from __future__ import annotations

import functools
import sys
import typing as tp


class ToolkitError(Exception):
    """An error a user can cause and fix: a bad file, a bad config value, missing weights.

    CLIs print it on one line and exit 2; the server answers 4xx with ``{"error": message}``.
    """


def user_errors_exit_2(main: tp.Callable[..., int]) -> tp.Callable[..., int]:
    """Decorate a CLI ``main``: a ToolkitError prints as one ``error: ...`` line, exit code 2.
    Programming errors still raise with their traceback."""
    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ToolkitError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return wrapper

"""Error types and the registry helper shared by every layer.

Every user-facing error is a :class:`LinasError`: the CLI prints its message as one line and
exits non-zero, without a traceback (unless ``--debug``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class LinasError(Exception):
    """A user-facing error: its message says what, where, the value and the fix."""


class ConfigError(LinasError):
    """A bad option, config key or value."""


class DataError(LinasError):
    """A dataset that cannot be read as asked."""


class LUTError(LinasError):
    """A latency table that is missing, malformed or does not fit the model."""


def closest(name: str, choices: Iterable[str]) -> str:
    """Return a ``did you mean`` suffix for ``name`` among ``choices`` (empty if none is close)."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """Build the error for an unknown registered name, listing the menu and the closest match."""
    menu = sorted(choices)
    return ConfigError(f"unknown {kind} '{name}'{closest(name, menu)}; valid: {', '.join(menu)}")

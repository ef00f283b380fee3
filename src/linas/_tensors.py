"""Checks of tensors read from files against what the config builds, before they are used:
the same names, shapes and dtypes, and finite values. A checkpoint or weights file of another
config, a corrupt file or one edited by hand gives one clear error instead of a size-mismatch
traceback or a model that silently computes NaN."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from linas._errors import ConfigError


def check_tensors(expected: Mapping[str, torch.Tensor], got: Mapping[str, Any], where: str,
                  fix: str, may_lack: Callable[[str], bool] = lambda key: False) -> None:
    """Raise unless ``got`` holds a tensor of ``expected``'s shape and dtype under each key
    (keys for which ``may_lack`` is true may be absent), no other key, and no NaN or inf.

    Raises:
        ConfigError: naming ``where``, the first offending keys with their shapes, and ``fix``.
    """
    if not isinstance(got, Mapping):
        raise ConfigError(f"{where}: holds a {type(got).__name__}, not named tensors; {fix}")
    problems = [f"missing {k}" for k in expected if k not in got and not may_lack(k)]
    problems += [f"unexpected {k}" for k in got if k not in expected]
    for key, want in expected.items():
        if key not in got:
            continue
        value = got[key]
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif value.shape != want.shape:
            problems.append(f"{key} has shape {list(value.shape)}, this config needs "
                            f"{list(want.shape)}")
        elif value.dtype != want.dtype:
            problems.append(f"{key} is {value.dtype}, expected {want.dtype}")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            problems.append(f"{key} holds NaN or inf")
    if problems:
        more = f" (+{len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ConfigError(f"{where}: does not fit this config ({'; '.join(problems[:3])}{more});"
                          f" {fix}")


def read_safetensors(path: Path, fix: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file (no pickle involved).

    Raises:
        ConfigError: the file is unreadable, truncated or not safetensors.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types on a bad file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise ConfigError(f"{path}: not a readable safetensors file ({first}); {fix}") from None
    return tensors, meta

"""Checkpoint helpers of :class:`~linas.search.base.SupernetSearch`: the supernet's saved
part, the check that a checkpoint belongs to this search, and the history file beside it.

A checkpoint is a ``torch.save`` dict of tensors, plain containers and strings (loadable with
``weights_only=True``) holding ``strategy`` and ``config`` (what it must match to resume),
``epoch``, ``rng``, ``supernet``, ``fair`` (every weight-optimizer state) and the strategy's
own entries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from linas._errors import ConfigError
from linas._tensors import check_tensors

ENCODER_PREFIX = "encoder."


def history_path(ckpt: Path) -> Path:
    """The epoch history beside a checkpoint: ``<stem>_history.json``."""
    return ckpt.with_name(f"{ckpt.stem}_history.json")


def trains_encoder(net: nn.Module) -> bool:
    """Whether some encoder parameter is trained (a fine-tuned, not frozen, encoder)."""
    return any(p.requires_grad for n, p in net.named_parameters()
               if n.startswith(ENCODER_PREFIX))


def supernet_state(net: nn.Module) -> dict[str, torch.Tensor]:
    """The supernet's state dict, without the encoder unless it is trained (a frozen
    encoder's weights come from its own weights file)."""
    keep_encoder = trains_encoder(net)
    return {k: v for k, v in net.state_dict().items()
            if keep_encoder or not k.startswith(ENCODER_PREFIX)}


def load_supernet_state(net: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Load :func:`supernet_state` back into ``net``, after checking every tensor's name,
    shape, dtype and values against ``net``.

    Raises:
        ConfigError: keys that ``net`` lacks, missing keys other than a frozen encoder's, or a
            tensor of another shape or dtype, or holding NaN or inf.
    """
    frozen_ok = not trains_encoder(net)
    check_tensors(net.state_dict(), state, f"checkpoint {where}", FIX,
                  may_lack=lambda k: frozen_ok and k.startswith(ENCODER_PREFIX))
    net.load_state_dict(dict(state), strict=False)


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, values JSON-normalised (tuples become lists)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.loads(json.dumps(value))
    return out


def config_diff(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``'key: A in the checkpoint, B now'`` for every key whose value differs (or is absent
    on one side, shown as ``None``)."""
    a, b = _flatten(stored), _flatten(current)
    return [f"{k}: {a.get(k)!r} in the checkpoint, {b.get(k)!r} now"
            for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]


def check_compatible(blob: Mapping[str, Any], strategy: str, config: Mapping[str, Any],
                     where: str) -> None:
    """Refuse a checkpoint of another strategy or another config.

    Raises:
        ConfigError: naming the strategies, or every differing config key.
    """
    if "strategy" not in blob or "config" not in blob:
        raise ConfigError(f"checkpoint {where}: not a search checkpoint of this version (no "
                          "'strategy'/'config' entry); start a new run directory")
    if blob["strategy"] != strategy:
        raise ConfigError(f"checkpoint {where}: written by the '{blob['strategy']}' strategy, "
                          f"this search is '{strategy}'; resume with strategy "
                          f"'{blob['strategy']}' or start a new run directory")
    diff = config_diff(blob["config"], config)
    if diff:
        raise ConfigError(f"checkpoint {where}: written with another config ({'; '.join(diff)})"
                          "; resume with the checkpoint's options or start a new run directory")


def resumable_history(history: list[dict[str, Any]], epoch: int,
                      where: str) -> list[dict[str, Any]]:
    """The first ``epoch`` entries of ``history`` (a history written just before a crash
    can be ahead of its checkpoint, never behind).

    Raises:
        ConfigError: when ``history`` has fewer than ``epoch`` entries.
    """
    if len(history) < epoch:
        raise ConfigError(f"checkpoint {where}: at epoch {epoch} but its history holds "
                          f"{len(history)} epochs; start a new run directory")
    return list(history[:epoch])


FIX = "delete it (or rerun with --restart) to search from the start"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A search checkpoint loaded safely (``weights_only=True``: no code in the file runs).

    Raises:
        ConfigError: an empty, truncated or foreign file, or one that is refused because it
            holds objects other than tensors and plain data (e.g. a malicious pickle).
    """
    import pickle

    import torch

    if path.stat().st_size == 0:
        raise ConfigError(f"checkpoint {path}: is empty (0 bytes, an interrupted write?); {FIX}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise ConfigError(f"checkpoint {path}: refused by the safe loader, it holds more than "
                          f"tensors ({first}); never load it with weights_only=False; {FIX}"
                          ) from None
    except Exception as exc:  # noqa: BLE001 - an untrusted file can fail the loader anyhow
        raise ConfigError(f"checkpoint {path}: unreadable ({type(exc).__name__}: truncated or "
                          f"not a checkpoint); {FIX}") from None
    if not isinstance(blob, dict):
        raise ConfigError(f"checkpoint {path}: holds a {type(blob).__name__}, not a search "
                          f"checkpoint; {FIX}")
    return blob


def read_history(path: Path) -> list[dict[str, Any]]:
    """The epoch history beside a checkpoint.

    Raises:
        ConfigError: not a JSON list of epoch records.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        raise ConfigError(f"search history {path}: not valid JSON (truncated?); {FIX}") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ConfigError(f"search history {path}: expected a JSON list of epoch records; {FIX}")
    return data

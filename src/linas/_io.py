"""Atomic writes: every artefact of a run is written to a unique temporary file in its
folder, then renamed over the target, so a crash never leaves a half-written file and two
writers never share a temporary name."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from linas._failpoint import reached

TMP_SUFFIX = ".tmp"
# Names of this module's temporary files: ``.<target name>.<8 random chars>.tmp``.
TMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
_FORBIDDEN: list[str] = []  # why this process must not write (torchrun ranks other than 0)


def forbid_writes(reason: str) -> None:
    """Make every later atomic write of this process an error (a rank other than 0 under
    torchrun: only rank 0 writes files; a write reaching here is a bug, never a silent
    second writer)."""
    _FORBIDDEN[:] = [reason]


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is
    removed."""
    path = Path(path)
    if _FORBIDDEN:
        raise RuntimeError(f"{path}: this process must not write files ({_FORBIDDEN[0]})")
    if path.is_dir():  # named as the user gave it, not as the temporary file
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; a run's files get the usual mode
    try:
        yield Path(tmp)
        reached(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` and rename ``tmp`` over ``path``; returns ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def save_torch_atomic(path: Path, blob: Any) -> Path:
    """``torch.save`` ``blob`` to ``path`` atomically (load it with ``weights_only=True``)."""
    import torch

    return write_atomic(path, lambda tmp: torch.save(blob, tmp))


def save_safetensors_atomic(path: Path, tensors: dict[str, Any],
                            metadata: dict[str, str] | None = None) -> Path:
    """Write a safetensors file atomically (tensors made contiguous)."""
    from safetensors.torch import save_file

    flat = {k: v.contiguous() for k, v in tensors.items()}
    return write_atomic(path, lambda tmp: save_file(flat, str(tmp), metadata=metadata))


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete the temporary files that an interrupted atomic write left under ``root`` (only
    names this module makes); returns them. Call it only while holding the run's lock."""
    stale = [p for p in Path(root).rglob(f".*{TMP_SUFFIX}")
             if p.is_file() and TMP_NAME.match(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale

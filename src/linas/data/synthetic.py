"""The ``synthetic`` dataset kind: the sealer generator's folder, written once and reused.

:func:`ensure_synthetic` is how a run gets synthetic data. It never deletes a file that the
generator did not write. The generator's files are ``dataset.json`` naming the generator
(``"name": "synthetic-sealer"``), and the numbered PNGs ``images/NNNNN.png`` and
``masks/NNNNN.png`` beside it; without that ``dataset.json`` nothing in a folder counts as the
generator's, whatever the file names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from linas._errors import DataError
from linas._io import write_json_atomic
from linas.data.datasets import SegmentationDataset, few, register_loader
from linas.data.folder import load_folder
from linas.data.synth import (
    DATASET_NAME,
    check_synth_args,
    generate_sealer_dataset,
    is_own_file,
    synth_meta,
)

DEFAULT_SIZE = (128, 128)
DEFAULT_N_IMAGES = 320
_OWN_DIRS = ("images", "masks")


def ensure_synthetic(
    root: str | Path,
    n_images: int = DEFAULT_N_IMAGES,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
) -> Path:
    """Make ``root`` hold the synthetic sealer dataset of exactly these settings.

    - Reuses ``root`` when its ``dataset.json`` is the generator's for exactly these settings
      and every numbered image and mask (and no other) is there.
    - Generates into ``root`` when it does not exist or holds no files.
    - Regenerates when ``root`` holds only the generator's files (other settings, or a run cut
      short): only those files are deleted or replaced.
    - Refuses otherwise, naming the files the generator did not write; nothing is deleted.

    Args:
        root: dataset folder.
        n_images: number of images, at least 1.
        size: ``(H, W)``, each at least 16.
        seed: dataset seed.

    Returns:
        ``root``, a folder dataset (:func:`linas.data.load_folder` reads it).

    Raises:
        ConfigError: ``n_images`` or ``size`` out of range.
        DataError: ``root`` is a file, or holds files not written by the generator.
    """
    root = Path(root).expanduser()
    size = check_synth_args(n_images, size)
    if root.exists() and not root.is_dir():
        raise DataError(f"data folder {root} is a file; pick a folder for the synthetic data")
    want = synth_meta(n_images, size, seed)
    meta = _generator_meta(root)
    if meta == want and _own_images(root) == _expected(n_images):
        return root
    foreign = _foreign_files(root, claimed=meta is not None)
    if foreign:
        raise DataError(
            f"data folder {root} holds files not written by `linas data synth` "
            f"({few(foreign)}); move them or pick another folder (data.root / --out)"
        )
    # Claim the folder first: a run cut short is still recognised as the generator's.
    write_json_atomic(root / "dataset.json", {**want, "complete": False})
    generate_sealer_dataset(root, n_images, size, seed, overwrite=True)
    return root


@register_loader("synthetic", writes_root=True)
def load_synthetic(
    root: Path,
    size: tuple[int, int] | None = None,
    n_images: int = DEFAULT_N_IMAGES,
    seed: int = 0,
) -> SegmentationDataset:
    """The synthetic sealer dataset in ``root``, generated there first if needed.

    Args:
        root: dataset folder (see :func:`ensure_synthetic` for what is reused or refused).
        size: ``(H, W)`` to generate at; ``None`` is 128 x 128.
        n_images: number of images.
        seed: dataset seed.

    Returns:
        The (not yet validated) folder dataset: background / sealer / defect, ignore 255.

    Raises:
        ConfigError, DataError: as :func:`ensure_synthetic`.
    """
    ensure_synthetic(root, n_images, size or DEFAULT_SIZE, seed)
    return load_folder(root, size)


def _generator_meta(root: Path) -> dict[str, object] | None:
    """``root/dataset.json`` when the generator wrote it, else ``None``."""
    path = root / "dataset.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) and meta.get("name") == DATASET_NAME else None


def _expected(n_images: int) -> dict[str, set[str]]:
    names = {f"{i:05d}.png" for i in range(n_images)}
    return {folder: names for folder in _OWN_DIRS}


def _own_images(root: Path) -> dict[str, set[str]]:
    """The generator-named files in ``images/`` and ``masks/``."""
    out: dict[str, set[str]] = {}
    for folder in _OWN_DIRS:
        path = root / folder
        files = path.iterdir() if path.is_dir() else iter(())
        out[folder] = {p.name for p in files if p.is_file() and is_own_file(p.name)}
    return out


def _foreign_files(root: Path, claimed: bool) -> list[str]:
    """Entries of ``root`` the generator did not write (``name/`` for folders), sorted."""
    if not root.is_dir():
        return []
    if not claimed:
        # Nothing is the generator's; a folder holding no files at all (empty folders only)
        # is as good as empty.
        if not any(files for _, _, files in os.walk(root)):
            return []
        return [_shown(entry, entry.name) for entry in sorted(root.iterdir())]
    foreign: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name == "dataset.json" and entry.is_file():
            continue
        if entry.name in _OWN_DIRS and entry.is_dir():
            foreign += [
                _shown(sub, f"{entry.name}/{sub.name}")
                for sub in sorted(entry.iterdir())
                if not (sub.is_file() and is_own_file(sub.name))
            ]
            continue
        foreign.append(_shown(entry, entry.name))
    return foreign


def _shown(path: Path, name: str) -> str:
    return f"{name}/" if path.is_dir() else name

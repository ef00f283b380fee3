"""build_dataset: a run's data section to a loaded, network-sized dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from linas._errors import ConfigError
from linas.data import build_dataset, generate_sealer_dataset


@dataclass(frozen=True)
class Spec:
    kind: str = "synthetic"
    root: str | None = None
    size: tuple[int, int] = (32, 64)
    fit: str = "refuse"
    n_images: int = 4
    options: dict[str, Any] = field(default_factory=dict)


def test_synthetic_goes_to_the_run_data_folder(tmp_path: Path) -> None:
    dataset, size = build_dataset(Spec(), tmp_path / "data", seed=7)
    assert size == (32, 64) and len(dataset) == 4
    assert (tmp_path / "data" / "dataset.json").is_file()


def test_folder_at_root_with_pad(tmp_path: Path) -> None:
    root = generate_sealer_dataset(tmp_path / "mine", 3, (40, 60), seed=0)
    spec = Spec(kind="folder", root=str(root), size=(40, 60), fit="pad")
    dataset, size = build_dataset(spec, tmp_path / "unused", seed=0)
    assert size == (64, 64) and dataset[0][1].shape == (64, 64)
    assert not (tmp_path / "unused").exists()


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="data.root is not set for data.kind 'folder'"):
        build_dataset(Spec(kind="folder"), tmp_path, seed=0)
    with pytest.raises(ConfigError, match=r"data.options \['seed'\]"):
        build_dataset(Spec(options={"seed": 1}), tmp_path, seed=0)
    with pytest.raises(ConfigError, match="nearest valid"):
        build_dataset(Spec(size=(50, 50)), tmp_path / "d", seed=0)

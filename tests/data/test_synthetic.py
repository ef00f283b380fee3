"""The ``synthetic`` kind: generate, reuse, regenerate, and never delete foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import (
    DATASETS,
    available_datasets,
    ensure_synthetic,
    generate_sealer_dataset,
    load_dataset,
    register_loader,
)

SIZE = (32, 48)


def _names(root: Path, folder: str) -> list[str]:
    return sorted(p.name for p in (root / folder).iterdir())


def _stamps(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


def test_generates_into_a_new_folder(tmp_path: Path) -> None:
    root = ensure_synthetic(tmp_path / "runs" / "x" / "data", 3, SIZE, seed=1)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["name"] == "synthetic-sealer" and "complete" not in meta
    assert (meta["n_images"], meta["size"], meta["seed"]) == (3, list(SIZE), 1)
    assert (
        _names(root, "images") == _names(root, "masks") == ["00000.png", "00001.png", "00002.png"]
    )


def test_generates_into_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()  # empty folders hold no files
    assert len(_names(ensure_synthetic(tmp_path, 2, SIZE), "images")) == 2


def test_same_settings_reuse_without_rewriting(tmp_path: Path) -> None:
    ensure_synthetic(tmp_path, 3, SIZE, seed=1)
    before = _stamps(tmp_path)
    ensure_synthetic(tmp_path, 3, SIZE, seed=1)
    assert _stamps(tmp_path) == before


@pytest.mark.parametrize("change", [dict(n_images=2), dict(seed=2), dict(size=(48, 32))])
def test_other_settings_regenerate_the_generators_own_files(tmp_path: Path, change: dict) -> None:
    ensure_synthetic(tmp_path, 3, SIZE, seed=1)
    settings = {"n_images": 3, "size": SIZE, "seed": 1, **change}
    ensure_synthetic(tmp_path, **settings)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    assert meta["n_images"] == settings["n_images"] and meta["seed"] == settings["seed"]
    assert len(_names(tmp_path, "images")) == settings["n_images"]
    with Image.open(tmp_path / "images" / "00000.png") as image:
        assert image.size == (settings["size"][1], settings["size"][0])


def test_a_missing_image_is_regenerated(tmp_path: Path) -> None:
    ensure_synthetic(tmp_path, 3, SIZE)
    (tmp_path / "masks" / "00001.png").unlink()
    ensure_synthetic(tmp_path, 3, SIZE)
    assert (tmp_path / "masks" / "00001.png").is_file()


def test_a_run_cut_short_is_recognised_as_the_generators(tmp_path: Path) -> None:
    ensure_synthetic(tmp_path, 3, SIZE)
    meta = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "complete": False}))
    ensure_synthetic(tmp_path, 3, SIZE)
    assert "complete" not in json.loads((tmp_path / "dataset.json").read_text())


def test_foreign_file_in_a_plain_folder_is_refused_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "runs" / "x" / "data"
    root.mkdir(parents=True)
    (root / "keep.txt").write_text("mine")
    with pytest.raises(DataError) as err:
        ensure_synthetic(root, 3, SIZE)
    assert str(err.value) == (
        f"data folder {root} holds files not written by `linas data synth` (keep.txt); "
        "move them or pick another folder (data.root / --out)"
    )
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]


def test_foreign_files_beside_generated_data_are_refused_and_kept(tmp_path: Path) -> None:
    ensure_synthetic(tmp_path, 3, SIZE, seed=1)
    (tmp_path / "keep.txt").write_text("mine")
    (tmp_path / "images" / "photo.jpg").write_bytes(b"jpeg")
    before = _stamps(tmp_path)
    with pytest.raises(DataError, match=r"\(images/photo\.jpg, keep\.txt\)"):
        ensure_synthetic(tmp_path, 5, SIZE, seed=1)
    assert _stamps(tmp_path) == before


def test_a_users_folder_dataset_with_numbered_files_is_never_touched(tmp_path: Path) -> None:
    generate_sealer_dataset(tmp_path, 2, SIZE, seed=0)  # looks like ours ...
    meta = {"classes": ["bg", "sealer", "defect"], "name": "my-line-3"}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))  # ... but is not
    before = _stamps(tmp_path)
    with pytest.raises(DataError, match=r"\(dataset\.json, images/, masks/\)"):
        ensure_synthetic(tmp_path, 2, SIZE, seed=0)
    assert _stamps(tmp_path) == before


def test_root_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        ensure_synthetic(tmp_path / "data", 2, SIZE)


def test_bad_settings_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="n_images"):
        ensure_synthetic(tmp_path / "d", 0, SIZE)
    assert not (tmp_path / "d").exists()


def test_synthetic_kind_generates_then_loads(tmp_path: Path) -> None:
    root = tmp_path / "data"
    dataset = load_dataset("synthetic", root, size=(32, 64), fit="refuse", n_images=4, seed=3)
    assert len(dataset) == 4 and dataset.class_names == ("background", "sealer", "defect")
    assert dataset.ignore_index == 255 and dataset.input_size == (32, 64)
    assert json.loads((root / "dataset.json").read_text())["seed"] == 3
    with pytest.raises(ConfigError, match="multiples of 32"):
        load_dataset("synthetic", tmp_path / "other", size=(40, 40), fit="refuse")
    assert not (tmp_path / "other").exists()


# --- the registry -------------------------------------------------------------------------


def test_every_kind_is_in_the_one_registry() -> None:
    assert set(DATASETS.names()) >= {"folder", "mvtec", "cityscapes", "synthetic"}
    assert available_datasets() == sorted(DATASETS.names())


def test_duplicate_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="dataset kind 'folder' is registered twice"):
        register_loader("folder")(lambda root, size: None)  # type: ignore[arg-type,return-value]


def test_unknown_kind_lists_the_menu(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataset kind 'synthtic'.*'synthetic'.*valid: .*folder"):
        load_dataset("synthtic", tmp_path)

"""The prepare stage on the user's data: each loader through the run, the size policy, LUTs
checked against the run's size before any work, and stage seeds derived from the one seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from linas._errors import ConfigError, LUTError
from linas.config import load_config, stage_seeds
from linas.latency import LUT, save_lut
from linas.progress import Reporter
from linas.run import Run, RunDir, open_run, prepare
from linas.run.search import search_config
from linas.space import NUM_CHOICES, NUM_LAYERS


def lut_file(path: Path, size: tuple[int, int]) -> str:
    mean = np.random.default_rng(0).uniform(0.5, 5.0, (NUM_LAYERS, NUM_CHOICES))
    save_lut(LUT(hardware="edge", input_size=size, mean_ms=mean, std_ms=mean * 0.05,
                 fixed_ms=5.0, fixed_std_ms=0.1), path)
    return str(path)


def start(tmp_path: Path, overrides: list[str]) -> Run:
    cfg = load_config(None, ["encoder.weights=random", *overrides])
    return Run.start(cfg, open_run(tmp_path / "run", cfg), Reporter(quiet=True))


def cityscapes_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 3)):
        for i in range(n):
            frame = f"aachen_{split}_{i:06d}"
            img = root / "leftImg8bit" / split / "aachen" / f"{frame}_leftImg8bit.png"
            lab = root / "gtFine" / split / "aachen" / f"{frame}_gtFine_labelIds.png"
            img.parent.mkdir(parents=True, exist_ok=True)
            lab.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8)).save(img)
            ids = rng.choice(np.array([7, 8, 26, 0], dtype=np.uint8), size=(64, 128))
            Image.fromarray(ids, "L").save(lab)
    return root


def test_cityscapes_through_the_run_honours_its_test_split(tmp_path):
    root = cityscapes_tree(tmp_path / "cs")
    lut = lut_file(tmp_path / "e.json", (64, 128))
    run = start(tmp_path, ["data.kind=cityscapes", f"data.root={root}", "data.size=[64, 128]",
                           f'devices=[{{"name": "edge", "lut": "{lut}"}}]'])
    ctx = prepare(run)
    assert run.results["num_classes"] == 19 and run.results["ignore_index"] == 255
    assert run.results["dataset"]["splits"]["test"] == 3  # the layout's val split
    assert ctx.splits["train"].masks.shape[1:] == (64, 128)
    assert set(ctx.luts) == {"edge"} and (run.dir.luts / "edge.json").is_file()


def test_pad_fit_runs_at_the_next_multiple_of_32(tmp_path, folder_dataset):
    lut = lut_file(tmp_path / "e.json", (96, 160))
    run = start(tmp_path, ["data.kind=folder", f"data.root={folder_dataset}",
                           "data.size=[90, 150]", "data.fit=pad",
                           f'devices=[{{"name": "edge", "lut": "{lut}"}}]'])
    assert run.size == (96, 160)
    ctx = prepare(run)
    masks = ctx.splits["train"].masks
    assert masks.shape[1:] == (96, 160)
    assert (masks[:, 90:, :] == 255).all() and (masks[:, :, 150:] == 255).all()


def test_a_lut_of_another_size_stops_the_run_before_the_data(tmp_path, folder_dataset):
    lut = lut_file(tmp_path / "e.json", (128, 128))
    run = start(tmp_path, ["data.kind=folder", f"data.root={folder_dataset}",
                           "data.size=[96, 160]", f'devices=[{{"name": "edge", "lut": "{lut}"}}]'])
    with pytest.raises(LUTError, match="96x160"):
        prepare(run)
    assert "data" not in run.timings


def test_unrunnable_size_is_refused_with_the_nearest_valid(tmp_path):
    with pytest.raises(ConfigError, match=r"nearest valid: \[96, 160\]"):
        start(tmp_path, ["data.size=[100, 150]"])


def test_stage_seeds_reach_the_stages(tmp_path):
    a = start(tmp_path / "a", ["seed=0"])
    b = start(tmp_path / "b", ["seed=1"])
    assert a.seeds == stage_seeds(0) and b.seeds == stage_seeds(1)
    assert search_config(a).seed == a.seeds["search"] != search_config(b).seed
    assert a.results["stage_seeds"] == a.seeds


def test_rerun_with_other_settings_is_refused_and_restart_clears(tmp_path):
    start(tmp_path, ["seed=0"])
    (tmp_path / "run" / "results.json").write_text("{}")
    (tmp_path / "run" / "mine.txt").write_text("keep")
    cfg = load_config(None, ["encoder.weights=random", "seed=3"])
    with pytest.raises(ConfigError, match=r"seed: 0 -> 3.*--restart"):
        open_run(tmp_path / "run", cfg)
    open_run(tmp_path / "run", cfg, restart=True)
    assert not (tmp_path / "run" / "results.json").exists()
    assert (tmp_path / "run" / "mine.txt").read_text() == "keep"  # never deletes foreign files
    assert RunDir(tmp_path / "run").load_config().seed == 3


def test_a_key_added_by_a_newer_version_at_its_default_is_not_a_change(tmp_path):
    """A run made before a config key existed resumes when the key holds its default (the
    old run behaved as the default does); any other value is refused as before."""
    import yaml

    start(tmp_path, ["seed=0"])
    path = tmp_path / "run" / "config.yaml"
    stored = yaml.safe_load(path.read_text())
    del stored["pareto"]["bn_recal_batches"]  # as an older version wrote it
    path.write_text(yaml.safe_dump(stored))
    open_run(tmp_path / "run", load_config(None, ["encoder.weights=random"]))
    assert "bn_recal_batches" in yaml.safe_load(path.read_text())["pareto"]  # stored now
    path.write_text(yaml.safe_dump(stored))
    other = load_config(None, ["encoder.weights=random", "pareto.bn_recal_batches=4"])
    with pytest.raises(ConfigError, match=r"pareto.bn_recal_batches: '<unset>' -> 4"):
        open_run(tmp_path / "run", other)

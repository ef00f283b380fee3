"""A quick demo run with the hypernetwork strategy: the same results contract as the baseline,
a zero-shot front for the held-out device, a model per device, and `linas pareto` on the run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from linas._errors import ConfigError
from linas.config import load_config
from linas.latency import LUT, save_lut
from linas.progress import Reporter
from linas.run import build_config, run_demo, run_pareto_stage
from linas.space import NUM_CHOICES, NUM_LAYERS

HOLDOUT = "raspberrypi5"
DEVICES = ("rtx4090", "odroid", HOLDOUT)  # a GPU, an ARM CPU and the held-out device
LOCAL = "this-cpu"


def place_local_lut(out: Path) -> None:
    """A synthetic stand-in for this machine's LUT, so the test skips the minute of timing
    (the run reuses a LUT already in ``out/luts``, as on a rerun)."""
    mean = np.random.default_rng(0).uniform(0.5, 5.0, size=(NUM_LAYERS, NUM_CHOICES))
    save_lut(LUT(hardware=LOCAL, input_size=(128, 128), mean_ms=mean, std_ms=mean * 0.01,
                 fixed_ms=20.0, fixed_std_ms=0.1), out / "luts" / f"{LOCAL}.json")


def overrides(reference_luts: Path) -> list[str]:
    devices = [{"name": LOCAL, "measure": {}}] + [
        {"name": name, "lut": str(reference_luts / f"{name}.json")} for name in DEVICES]
    return [f"devices={json.dumps(devices)}", "seed=1", "encoder.weights=random",
            "search.strategy=hypernet", f"search.holdout={HOLDOUT}"]


@pytest.fixture(scope="module")
def hyper_run(tmp_path_factory, reference_luts) -> Iterator[tuple[Path, dict]]:
    out = tmp_path_factory.mktemp("hyperdemo")
    place_local_lut(out)
    cfg = build_config(None, overrides(reference_luts), quick=True)
    yield out, run_demo(cfg, out, Reporter(quiet=True))
    shutil.rmtree(out)  # the supernet checkpoint alone is ~2 GB


def test_hypernet_demo_writes_the_results_contract(hyper_run, check_device_result):
    out, _ = hyper_run
    res = json.loads((out / "results.json").read_text())
    assert res["search"]["strategy"] == "hypernet"
    assert len(res["devices"]) == 4 and HOLDOUT not in res["search"]["train_devices"]
    for name, dev in res["devices"].items():
        check_device_result(out, name, dev)
        assert dev["hypernet"]["zero_shot"] == (name == HOLDOUT)
        assert dev["hypernet"]["generated"] == len(dev["evaluated"]["miou"]) >= 1
        assert (out / "deploy" / name / "model.onnx").is_file()
    assert json.loads((out / "pareto.json").read_text())["search"]["strategy"] == \
        "hypernet-sweep"


def test_pareto_stage_on_a_hypernet_run_sweeps_again(hyper_run):
    out, res = hyper_run
    again = run_pareto_stage(out, None, Reporter(quiet=True))
    # the search is complete (loaded, not retrained) and the sweep is deterministic
    assert again["search"]["history"] == res["search"]["history"]
    for name, dev in res["devices"].items():
        assert again["devices"][name]["front"] == dev["front"]


def test_strategy_options_are_checked(reference_luts):
    load_config(None, overrides(reference_luts))
    with pytest.raises(ConfigError, match="valid: bilevel, hypernet"):
        load_config(None, ["search.strategy=hyper"])
    with pytest.raises(ConfigError, match="search.strategy: hypernet"):
        load_config(None, ["search.holdout=orin"])

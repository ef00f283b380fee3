"""`linas predictor train|eval|onboard` and `linas lut fingerprint` on small synthetic LUTs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from linas._errors import ConfigError
from linas.cli.lut import lut_app
from linas.cli.predictor import predictor_app
from linas.latency import LUT, load_lut, save_lut
from linas.latency.fingerprint import REFERENCE_ARCHS, reference_choices
from linas.latency.onboard import Fingerprint, load_fingerprint, save_fingerprint
from linas.latency.predictor_eval import table_latency

from .test_predictor import synthetic_devices

# synthetic tables under names the spec table knows (file stems are the device names)
NAMES = {"a6000": "A6000", "rtx3090": "RTX3090", "orin": "Orin", "raspberrypi5": "RaspberryPi5"}


@pytest.fixture(scope="module")
def lut_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("luts")
    for dev, (stem, hw) in zip(synthetic_devices(4), NAMES.items(), strict=True):
        save_lut(LUT(hw, (128, 128), dev.table_ms, dev.table_ms * 0.01), folder / f"{stem}.json")
    return folder


def invoke(*args: str) -> str:
    result = CliRunner().invoke(predictor_app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_train_onboard_round_trip(lut_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "p.safetensors"
    assert "4 devices" in invoke("train", "--luts", str(lut_dir), "--out",
                                 str(model), "--rank", "2")
    out = invoke("onboard", "--predictor", str(model), "--print-archs")
    assert all(str(a) in out for a in REFERENCE_ARCHS) and "linas lut fingerprint" in out
    table = load_lut(lut_dir / "orin.json").mean_ms * 1.5
    fp_ms = table_latency(table, reference_choices())
    fp = save_fingerprint(Fingerprint("newdev", fp_ms, fp_ms * 0), tmp_path / "fp.json")
    pred_path = tmp_path / "pred.json"
    invoke("onboard", "--predictor", str(model), "--fingerprint", str(fp),
           "--out", str(pred_path))
    lut = load_lut(pred_path)
    assert lut.provenance["predicted"] is True and lut.hardware == "newdev"
    np.testing.assert_allclose(table_latency(lut.mean_ms, reference_choices()), fp_ms, rtol=0.05)


def test_eval_lodo_writes_the_contract(lut_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "lodo.json"
    text = invoke("eval", "--luts", str(lut_dir), "--lodo", "--out", str(out),
                  "--n-archs", "100", "--rank", "2", "--quiet")
    res = json.loads(out.read_text())
    assert set(res["devices"]) == set(NAMES) and "MEAN" in text
    for method in ("zero_shot", "few_shot", "scaled_nearest"):
        assert set(res["mean"][method]) >= {"mape", "spearman", "within_10pct"}


def test_unknown_device_is_one_clear_error(lut_dir: Path, tmp_path: Path) -> None:
    dev = synthetic_devices(1)[0]
    save_lut(LUT("Mystery", (128, 128), dev.table_ms, dev.table_ms * 0.01),
             tmp_path / "mystery.json")
    with pytest.raises(ConfigError, match="unknown hardware 'Mystery'.*known names: .*A6000"):
        CliRunner().invoke(predictor_app, ["train", "--luts", str(lut_dir),
                                 str(tmp_path / "mystery.json"), "--out",
                                 str(tmp_path / "p.safetensors")], catch_exceptions=False)


def test_lut_fingerprint_measures_the_reference_archs(tmp_path: Path) -> None:
    out = tmp_path / "fp.json"
    result = CliRunner().invoke(lut_app, ["fingerprint", "--out", str(out), "--size", "64x64",
                                          "--threads", "1", "--warmup", "0", "--repeat", "3",
                                          "--name", "here"], catch_exceptions=False)
    assert result.exit_code == 0 and f"wrote {out}" in result.output, result.output
    fp = load_fingerprint(out)
    assert fp.hardware == "here" and fp.mean_ms.shape == (10,) and np.all(fp.mean_ms > 0)
    assert fp.provenance is not None and fp.provenance["runtime"] == "torch"

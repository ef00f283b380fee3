"""Cross-hardware predictor: oracles on synthetic devices, save/load, expected latency, LODO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from linas._errors import ConfigError, LUTError
from linas.latency.fingerprint import reference_choices
from linas.latency.onboard import Fingerprint, load_fingerprint, onboard, save_fingerprint
from linas.latency.predictor import LatencyPredictor, PredictorConfig
from linas.latency.predictor_eval import (
    METHODS,
    METRICS,
    latency_metrics,
    lodo,
    scaled_nearest,
    table_latency,
)
from linas.latency.predictor_train import DeviceData, train_predictor
from linas.space import NUM_CHOICES, NUM_LAYERS

FAST = PredictorConfig(rank=2, samples_per_device=300, steps=150, fewshot_steps=150, lr=0.05)


def synthetic_devices(n: int = 5, seed: int = 0) -> list[DeviceData]:
    """Devices drawn from an exact rank-2 log-table model, with spec features that determine
    their embedding linearly (so both representations carry the truth)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0.0, 0.6, (NUM_LAYERS, NUM_CHOICES))
    basis = rng.normal(0.0, 0.3, (NUM_LAYERS, NUM_CHOICES, 2))
    out = []
    for i in range(n):
        s, z = rng.normal(0.0, 1.0), rng.normal(0.0, 1.0, 2)
        table = np.exp(mu + s + basis @ z)
        out.append(DeviceData(f"dev{i}", table, np.array([s, *z, 0.0])))
    return out


def scaled(dev: DeviceData, factor: float, name: str) -> DeviceData:
    return DeviceData(name, dev.table_ms * factor, dev.features)


@pytest.fixture(scope="module")
def devices() -> list[DeviceData]:
    return synthetic_devices()


@pytest.fixture(scope="module")
def model(devices: list[DeviceData]) -> LatencyPredictor:
    torch.set_num_threads(1)
    return train_predictor(devices, FAST)


def test_fits_its_training_devices(model: LatencyPredictor, devices: list[DeviceData]) -> None:
    choices = np.random.default_rng(1).integers(0, NUM_CHOICES, (500, NUM_LAYERS))
    for dev in devices:
        pred = model.predict(choices, model.embedding(dev.name))
        assert latency_metrics(pred, table_latency(dev.table_ms, choices))["mape"] < 0.02
    assert max(model.meta["fit_rms_log_error"].values()) < 0.02


def test_few_shot_recovers_a_scaled_copy(model: LatencyPredictor,
                                         devices: list[DeviceData]) -> None:
    new = scaled(devices[2], 3.7, "copy")  # a device exactly described by a known LUT
    emb, err = model.embed_fingerprint(table_latency(new.table_ms, reference_choices()))
    assert err < 0.02
    choices = np.random.default_rng(2).integers(0, NUM_CHOICES, (500, NUM_LAYERS))
    m = latency_metrics(model.predict(choices, emb), table_latency(new.table_ms, choices))
    assert m["mape"] < 0.03 and m["spearman"] > 0.99 and m["within_10pct"] == 1.0


def test_scaled_nearest_is_exact_on_a_scaled_copy(devices: list[DeviceData]) -> None:
    new = scaled(devices[1], 0.25, "copy")
    choices = np.random.default_rng(3).integers(0, NUM_CHOICES, (100, NUM_LAYERS))
    pred, near = scaled_nearest(devices, table_latency(new.table_ms, reference_choices()),
                                choices)
    assert near == "dev1"
    np.testing.assert_allclose(pred, table_latency(new.table_ms, choices), rtol=1e-9)


def test_expected_equals_predict_on_one_hot(model: LatencyPredictor) -> None:
    emb = model.embedding("dev0")
    choices = np.array([[0, 5, 20, 7, 13]])
    probs = torch.nn.functional.one_hot(torch.as_tensor(choices[0]), NUM_CHOICES).double()
    probs.requires_grad_(True)
    exp = model.expected(probs, emb)
    assert float(exp.detach()) == pytest.approx(float(model.predict(choices, emb)[0]), rel=1e-6)
    exp.backward()
    assert probs.grad is not None and probs.grad.shape == (NUM_LAYERS, NUM_CHOICES)


def test_expected_is_the_mean_over_soft_probabilities(model: LatencyPredictor) -> None:
    emb = model.embedding("dev3")
    probs = torch.softmax(torch.randn(NUM_LAYERS, NUM_CHOICES,
                                      generator=torch.Generator().manual_seed(0)), -1)
    table = model.table(emb).numpy()
    want = float((probs.numpy() * table).sum())
    assert float(model.expected(probs, emb)) == pytest.approx(want, rel=1e-5)


def test_save_load_round_trip(model: LatencyPredictor, tmp_path: Path) -> None:
    path = model.save(tmp_path / "p.safetensors")
    back = LatencyPredictor.load(path)
    assert back.devices == model.devices and back.config == model.config
    assert back.meta["novelty_threshold"] == pytest.approx(model.meta["novelty_threshold"])
    choices = reference_choices()
    for name in model.devices:
        np.testing.assert_array_equal(back.predict(choices, back.embedding(name)),
                                      model.predict(choices, model.embedding(name)))
    assert b"pickle" not in path.read_bytes()[:200]


def test_load_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        LatencyPredictor.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="re-train"):
        LatencyPredictor.load(bad)


def test_zero_shot_uses_spec_features(model: LatencyPredictor,
                                      devices: list[DeviceData]) -> None:
    # features are linear in the true embedding, so the ridge head lands near the device
    emb = model.embed_spec(devices[0].features)
    choices = np.random.default_rng(4).integers(0, NUM_CHOICES, (300, NUM_LAYERS))
    m = latency_metrics(model.predict(choices, emb), table_latency(devices[0].table_ms, choices))
    assert m["spearman"] > 0.8


def test_fingerprint_file_and_onboarding(model: LatencyPredictor, devices: list[DeviceData],
                                         tmp_path: Path) -> None:
    fp_ms = table_latency(devices[4].table_ms * 2.0, reference_choices())
    path = save_fingerprint(Fingerprint("newdev", fp_ms, fp_ms * 0.01), tmp_path / "fp.json")
    fp = load_fingerprint(path)
    np.testing.assert_allclose(fp.mean_ms, fp_ms)
    result = onboard(model, fp)
    assert result.lut.hardware == "newdev" and result.lut.provenance["predicted"] is True
    assert result.lut.to_dict()["schema"] == "linas-lut/v2" and not result.far
    pred = table_latency(result.lut.mean_ms, reference_choices())
    np.testing.assert_allclose(pred, fp_ms, rtol=0.03)


def test_onboarding_warns_for_a_far_device(model: LatencyPredictor) -> None:
    rng = np.random.default_rng(9)
    weird = np.exp(rng.normal(0, 3, len(reference_choices())))  # no table explains this
    result = onboard(model, Fingerprint("weird", weird, weird * 0))
    assert result.far and result.warning is not None and "far from every device" in \
        result.warning


def test_bad_fingerprint_is_refused(model: LatencyPredictor, tmp_path: Path) -> None:
    with pytest.raises(LUTError, match="10 positive"):
        model.embed_fingerprint(np.ones(9))
    (tmp_path / "fp.json").write_text('{"schema": "linas-fingerprint/v1", "archs": []}')
    with pytest.raises(LUTError, match="reference architectures"):
        load_fingerprint(tmp_path / "fp.json")


def test_training_needs_distinct_devices(devices: list[DeviceData]) -> None:
    with pytest.raises(ConfigError, match="distinct names"):
        train_predictor([devices[0], devices[0]], FAST)


def test_lodo_json_contract(devices: list[DeviceData]) -> None:
    cfg = PredictorConfig(rank=2, samples_per_device=100, steps=30, fewshot_steps=30)
    res = lodo(devices[:4], cfg, n_archs=200, seed=0)
    assert set(res["devices"]) == {d.name for d in devices[:4]}
    for entry in [*res["devices"].values(), res["mean"]]:
        for method in METHODS:
            assert set(entry[method]) >= set(METRICS)
            assert 0.0 <= entry[method]["within_10pct"] <= 1.0
    assert {"zero_shot", "few_shot", "scaled_nearest"} <= set(METHODS)


def test_embed_lut_known_and_new(model: LatencyPredictor, devices: list[DeviceData]) -> None:
    from linas.latency import LUT

    known = LUT("dev1", (128, 128), devices[1].table_ms, devices[1].table_ms * 0)
    np.testing.assert_array_equal(model.embed_lut(known), model.embedding("dev1"))
    new = LUT("other", (128, 128), devices[1].table_ms * 2, devices[1].table_ms * 0)
    emb = model.embed_lut(new)
    assert emb[0] == pytest.approx(model.embedding("dev1")[0] + np.log(2), abs=0.05)

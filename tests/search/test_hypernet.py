"""The preference-conditioned hypernetwork (I1): outputs, toy optimum, sampling, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linas._errors import ConfigError
from linas.latency import LUT, LUTLatencyModel
from linas.search import (
    ArchHypernet,
    DeviceEmbedder,
    HypernetConfig,
    HypernetDevice,
    HypernetSearch,
    PreferenceSampler,
    SearchConfig,
    preference_grid,
    sweep_architectures,
)
from linas.search.hypernet import (
    build_hypernet,
    hypernet_objective,
    latency_prior,
    preference_gradient,
    raw_embedding,
)
from linas.space import NUM_CHOICES, NUM_LAYERS
from stand_ins import tiny_data, tiny_net


def toy_lut(seed: int, name: str = "toy") -> LUT:
    rng = np.random.default_rng(seed)
    mean = rng.uniform(1.0, 10.0, size=(NUM_LAYERS, NUM_CHOICES))
    return LUT(hardware=name, input_size=(64, 64), mean_ms=mean, std_ms=mean * 0.01)


def toy_device(seed: int, budget_ms: float = 1e6) -> HypernetDevice:
    return HypernetDevice.from_model(f"toy{seed}", LUTLatencyModel(toy_lut(seed, f"toy{seed}")),
                                     budget_ms)


def make_search(seed: int = 0) -> HypernetSearch:
    torch.manual_seed(seed)
    cfg = SearchConfig(warmup_epochs=1, search_epochs=3, soft_epochs=1, batch_size=4, seed=seed)
    return HypernetSearch(tiny_net(seed=seed), [toy_device(1), toy_device(2, budget_ms=30.0)], cfg,
                          HypernetConfig(hidden=16, pairs_per_step=2))


def test_output_is_a_distribution_over_choices_per_layer():
    net = ArchHypernet(hidden=8)
    for p in net.parameters():  # leave the zero (uniform) start for a generic network
        nn.init.normal_(p, std=1.0)
    emb, pref = torch.randn(6, 11), preference_grid(6)
    prior = torch.as_tensor(latency_prior(toy_lut(0).mean_ms), dtype=torch.float32)
    priors = prior.expand(6, -1, -1)
    probs = net.probs(emb, pref, priors)
    assert probs.shape == (6, NUM_LAYERS, NUM_CHOICES)
    assert (probs >= 0).all() and torch.allclose(probs.sum(-1), torch.ones(6, NUM_LAYERS))
    assert net(emb[0], pref[0], prior).shape == (NUM_LAYERS, NUM_CHOICES)
    fresh = ArchHypernet(hidden=8)  # zero-initialised output layer
    uniform = fresh.probs(emb[:1], pref[:1], priors[:1])  # w_lat = 0: the prior is off
    assert torch.allclose(uniform, torch.full_like(uniform, 1.0 / NUM_CHOICES))
    with pytest.raises(ValueError, match="embedding"):
        net(torch.randn(5), pref[0], prior)
    with pytest.raises(ValueError, match="prior"):
        net(emb[0], pref[0], prior[:4])


def test_latency_prior_is_scale_free_and_steers_by_preference():
    table = toy_lut(0).mean_ms
    prior = latency_prior(table)
    assert np.allclose(prior, latency_prior(table / 100.0))  # a 100x faster copy
    assert np.allclose(prior.mean(axis=1), 0.0)
    assert (prior.argmin(axis=1) == table.argmin(axis=1)).all()
    with pytest.raises(ValueError, match="finite"):
        latency_prior(np.full((NUM_LAYERS, NUM_CHOICES), np.nan))
    # an untrained hypernet already moves from uniform (w_lat 0) to the fastest ops (w_lat 1)
    net, emb = ArchHypernet(hidden=8), torch.zeros(11)
    prior_t = torch.as_tensor(prior, dtype=torch.float32)
    lat = LUTLatencyModel(toy_lut(0))
    with torch.no_grad():
        expected = [float(lat.expected(net.probs(emb, p, prior_t))) for p in preference_grid(5)]
    assert expected == sorted(expected, reverse=True) and expected[-1] < expected[0]
    fastest = net(emb, torch.tensor([0.0, 1.0]), prior_t).argmax(-1)
    assert fastest.tolist() == table.argmin(axis=1).tolist()


def test_latency_preference_yields_each_devices_fastest_architecture():
    """Toy problem with a known optimum: with w_lat = 1 the hypernet, trained against two
    devices' LUT latency from a start that favours the slowest ops, maps each device's
    embedding to its own per-layer fastest choices."""
    devices = [toy_device(3), toy_device(4)]
    embedder = DeviceEmbedder.fit(np.stack([d.raw for d in devices]))
    emb = embedder(np.stack([d.raw for d in devices]))
    prior = [torch.as_tensor(d.prior, dtype=torch.float32) for d in devices]
    net = build_hypernet(HypernetConfig(hidden=32), seed=0)
    with torch.no_grad():  # start at the wrong end: the prior's weight negative-ish, slow ops
        net.prior_raw.fill_(-10.0)
        net.out.bias.copy_(torch.as_tensor(devices[0].prior.ravel(), dtype=torch.float32))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    pref = torch.tensor([0.0, 1.0])
    for d, dev in enumerate(devices):
        assert net(emb[d], pref, prior[d]).argmax(-1).tolist() != dev.model.table.argmin(1).tolist()
    for _ in range(300):
        loss = torch.zeros(())
        for d, dev in enumerate(devices):
            expected = dev.model.expected(net.probs(emb[d], pref, prior[d]))
            loss = loss + hypernet_objective(torch.zeros(()), expected, dev.bounds, None, pref,
                                             10.0)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    for d, dev in enumerate(devices):
        assert net(emb[d], pref, prior[d]).argmax(-1).tolist() == dev.model.table.argmin(1).tolist()
    assert devices[0].model.table.argmin(1).tolist() != devices[1].model.table.argmin(1).tolist()


def test_objective_is_ce_under_a_preference_latency_target():
    ce, e = torch.tensor(0.7), torch.tensor(30.0)
    lat_expected = np.log(3.0) / np.log(5.0)  # 30 ms between 10 and 50 ms, in log-latency
    loss, lat = hypernet_objective(ce, e, (10.0, 50.0), 20.0, torch.tensor([0.25, 0.75]), 10.0)
    assert float(lat) == pytest.approx(lat_expected)
    # target 1 - 0.75 = 0.25 missed by lat - 0.25; budget 20 ms missed by 50%
    assert float(loss) == pytest.approx(0.7 + 10.0 * (lat_expected - 0.25) + 10.0 * 0.5)
    free, _ = hypernet_objective(ce, e, (10.0, 50.0), None, torch.tensor([0.8, 0.2]), 10.0)
    assert float(free) == pytest.approx(0.7)  # target 0.8 met, no budget: accuracy only
    same, lat0 = hypernet_objective(ce, torch.tensor(5.0), (5.0, 5.0), None,
                                    torch.tensor([0.0, 1.0]), 10.0)
    assert float(lat0) == 0.0 and float(same) == pytest.approx(0.7)  # degenerate bounds


def test_preference_gradient_is_unit_ce_plus_penalties():
    g_acc = torch.full((NUM_LAYERS, NUM_CHOICES), 3.0)
    g_pen = torch.zeros(NUM_LAYERS, NUM_CHOICES)
    g_pen[0, 0] = -2.0
    got = preference_gradient(g_acc, g_pen)
    assert torch.allclose(got - g_pen, g_acc / g_acc.norm())
    assert torch.allclose(preference_gradient(torch.zeros_like(g_acc), g_pen), g_pen)


def test_dirichlet_sampling_is_seeded_and_on_the_simplex():
    a, b = PreferenceSampler(1.0, seed=5), PreferenceSampler(1.0, seed=5)
    x = a.sample(50)
    assert torch.equal(x, b.sample(50))
    assert not torch.equal(x, PreferenceSampler(1.0, seed=6).sample(50))
    assert x.shape == (50, 2) and (x >= 0).all() and torch.allclose(x.sum(1), torch.ones(50))
    state = a.get_state()
    nxt = a.sample(3)
    a.set_state(state)
    assert torch.equal(a.sample(3), nxt)
    with pytest.raises(ValueError, match="alpha"):
        PreferenceSampler(0.0, seed=0)


def test_embedder_uses_training_statistics():
    raw = np.stack([raw_embedding(LUTLatencyModel(toy_lut(s))) for s in range(3)])
    emb = DeviceEmbedder.fit(raw)
    z = emb(raw).numpy()
    assert np.allclose(z.mean(0), 0, atol=1e-5)
    scaled = raw_embedding(LUTLatencyModel(LUT("fast", (64, 64), toy_lut(0).mean_ms / 100,
                                               toy_lut(0).mean_ms / 1e4)))
    # a 100x faster copy of a device differs in the speed feature only
    assert np.allclose(emb(scaled).numpy()[:10], z[0, :10], atol=1e-5)
    assert emb(scaled).numpy()[10] < z[0, 10]


def test_embedding_of_a_lut_with_negative_fitted_pairs_is_finite():
    # pair terms fitted end to end can hold part of the fixed cost: negative, and larger than
    # the op sum without the fixed part. The embedding must not take the log of that.
    base = toy_lut(0)
    pair = -base.mean_ms.max() * NUM_LAYERS / (NUM_LAYERS - 1)  # op sum + pairs <= 0
    pairs = np.full((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES), pair)
    lut = LUT("fitted", (64, 64), base.mean_ms, base.std_ms, fixed_ms=1000.0,
              interactions=pairs)
    emb = raw_embedding(LUTLatencyModel(lut))
    assert np.isfinite(emb).all()
    assert np.allclose(emb, raw_embedding(LUTLatencyModel(base)))  # the op entries alone


def test_sweep_gives_distinct_architectures():
    net = ArchHypernet(hidden=8)
    for p in net.parameters():
        nn.init.normal_(p, std=1.0)
    cfg = HypernetConfig(sweep_points=11, sweep_samples=2)
    emb = torch.randn(11, generator=torch.Generator().manual_seed(0))
    prior = torch.as_tensor(latency_prior(toy_lut(0).mean_ms), dtype=torch.float32)
    choices, w_lat = sweep_architectures(net, emb, prior, cfg, seed=0)
    assert choices.shape[1] == NUM_LAYERS and len(w_lat) == len(choices)
    assert len({tuple(r) for r in choices.tolist()}) == len(choices)
    assert w_lat[0] == 0.0 and w_lat == sorted(w_lat)
    assert np.array_equal(sweep_architectures(net, emb, prior, cfg, seed=0)[0], choices)  # seeded


def test_training_runs_and_checkpoint_round_trip_resumes_exactly(tmp_path):
    train, val = tiny_data(8, 0), tiny_data(8, 1)
    full = make_search()
    full.run(train, val)
    assert len(full.state.history) == 4
    assert full.state.history[-1]["phase"] == "hard"

    part = make_search()
    part.run(train, val, on_epoch=lambda s: part.save(tmp_path / "h.pt") if s.epoch == 2 else None)
    resumed = make_search()
    resumed.load(tmp_path / "h.pt", part.state.history[:2])
    assert resumed.state.epoch == 2
    resumed.run(train, val)
    for a, b in zip(full.hnet.parameters(), resumed.hnet.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.state.history == full.state.history


def test_checkpoint_of_other_devices_is_refused(tmp_path):
    s = make_search()
    s.save(tmp_path / "h.pt")
    other = HypernetSearch(tiny_net(), [toy_device(5)], s.cfg, s.hcfg)
    trained_on = r"devices: \[\['toy1', 1000000.0\], \['toy2', 30.0\]\] in the checkpoint"
    with pytest.raises(ConfigError, match=trained_on):
        other.load(tmp_path / "h.pt", [])

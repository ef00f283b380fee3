"""Zero-cost proxies: registry, determinism, prefix reuse, encoder untouched (64x64, few archs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linas._errors import ConfigError
from linas.data import cache_features
from linas.pareto.near import effective_rank
from linas.pareto.proxies import (
    PROXIES,
    ProxyContext,
    ProxyDecoder,
    candidate_costs,
    get_proxy,
    proxy_context,
)
from linas.pareto.sampling import sample_random
from linas.supernet import Supernet

SIZE = 64


@pytest.fixture(scope="module")
def setup() -> tuple[Supernet, object]:
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    images = torch.randn(4, 3, SIZE, SIZE)
    masks = torch.randint(0, 3, (4, SIZE, SIZE))
    return net, cache_features(net.encoder, images, masks)


def test_unknown_proxy_lists_the_menu() -> None:
    with pytest.raises(ConfigError, match="valid: flops, grad_norm, near, params"):
        get_proxy("nearr")
    assert {"near", "params", "flops", "grad_norm"} <= set(PROXIES)


def test_effective_rank_closed_forms() -> None:
    eye = torch.eye(8).reshape(1, 1, 8, 8, 1)  # (K, B, C, H, W): 8 orthonormal rows -> 8
    assert effective_rank(eye, max_positions=64).item() == pytest.approx(8.0)
    rank_one = torch.ones(1, 1, 4, 4, 4)
    assert effective_rank(rank_one).item() == pytest.approx(1.0)
    assert effective_rank(torch.zeros(1, 1, 4, 2, 2)).item() == 0.0


def test_near_is_deterministic_by_seed_and_prefix_reuse_changes_nothing(setup) -> None:
    net, split = setup
    choices = sample_random(12, seed=0)
    choices[6:, :2] = choices[0, :2]  # shared prefixes on purpose
    ctx = proxy_context(split, 3, seed=1, batch_size=2)
    reused = get_proxy("near").score(choices, ctx)
    alone = get_proxy("near", reuse_prefixes=False).score(choices, ctx)
    np.testing.assert_allclose(reused, alone, rtol=1e-5)
    again = get_proxy("near").score(choices, proxy_context(split, 3, seed=1, batch_size=2))
    np.testing.assert_array_equal(reused, again)
    other = get_proxy("near").score(choices, proxy_context(split, 3, seed=2, batch_size=2))
    assert not np.array_equal(reused, other)
    # a score does not depend on which other architectures are scored with it
    np.testing.assert_allclose(get_proxy("near").score(choices[:3], ctx), reused[:3], rtol=1e-5)


def test_proxies_never_touch_or_run_the_encoder(setup, monkeypatch) -> None:
    net, split = setup
    before = {k: v.clone() for k, v in net.encoder.state_dict().items()}

    def forbidden(*args, **kwargs):
        raise AssertionError("the encoder must not run")

    monkeypatch.setattr(net.encoder, "forward", forbidden)
    choices = sample_random(2, seed=5)
    training = net.training
    for init in ("seed", "supernet"):
        ctx = proxy_context(split, 3, seed=0, batch_size=2, init=init, supernet=net)
        for name in sorted(PROXIES):
            scores = get_proxy(name).score(choices, ctx)
            assert scores.shape == (2,) and np.all(np.isfinite(scores))
    after = net.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    assert net.training == training


def test_table_proxies_are_analytic_sums(setup) -> None:
    _, split = setup
    params, flops = candidate_costs((SIZE, SIZE))
    assert params.shape == flops.shape == (5, 21) and np.all(flops > 0)
    # Conv3x3_w100 (index 2) of layer 4: ConvT 64->32 3x3 + BN(32) = 64*32*9 + 64 params
    assert params[4, 2] == 64 * 32 * 9 + 2 * 32
    ctx = ProxyContext(ProxyDecoder.seeded(3, 0), split.feats, split.masks, 3)
    choices = np.array([[2, 2, 2, 2, 2], [0, 0, 0, 0, 0]])
    got = get_proxy("flops").score(choices, ctx)
    assert got[0] == pytest.approx(flops[:, 2].sum()) and got[0] > got[1]


def test_bad_context_inputs(setup) -> None:
    net, split = setup
    with pytest.raises(ConfigError, match="batch_size"):
        proxy_context(split, 3, seed=0, batch_size=99)
    with pytest.raises(ConfigError, match="unknown proxy init"):
        proxy_context(split, 3, seed=0, init="random")
    with pytest.raises(ConfigError, match="needs the trained supernet"):
        proxy_context(split, 3, seed=0, init="supernet")


def test_zero_cost_stage_pick_and_info(setup) -> None:
    from linas.latency import LUT, LUTLatencyModel
    from linas.pareto.strategies import (
        PARETO_STRATEGIES,
        ParetoConfig,
        PickContext,
        finish_search_info,
    )

    net, split = setup
    cfg = ParetoConfig(strategy="zero-cost", n_sample=24, n_prefilter=8, n_evaluate=4)
    mean = np.random.default_rng(0).uniform(1, 5, (5, 21))
    models = [LUTLatencyModel(LUT(hardware=f"d{i}", input_size=(32, 32), mean_ms=mean * (i + 1),
                                  std_ms=mean * 0.01)) for i in range(2)]
    picked, info = PARETO_STRATEGIES.get("zero-cost")(cfg, PickContext(models, None, net, split, 3))
    assert picked.shape == (4, 5)
    assert info["strategy"] == "zero-cost" and info["sampled"] == 24
    done = finish_search_info(info, np.array([0.1, 0.2, 0.3, 0.4]))
    assert done["evaluated"] == 4 and "evaluated_scores" not in done
    assert done["proxy_spearman_rho_evaluated"] is None or -1 <= done[
        "proxy_spearman_rho_evaluated"] <= 1


def test_unknown_pareto_strategy_fails_before_any_work() -> None:
    from linas.config import load_config

    with pytest.raises(ConfigError, match="valid: baseline, zero-cost"):
        load_config(None, ["pareto.strategy=zero_cost2"])

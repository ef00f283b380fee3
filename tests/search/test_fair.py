"""I2 fair training: complexity table, CaLR factors, separated momentum, single path, resume
(the hypernetwork strategy's use of it: tests/search/test_base.py)."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from linas._errors import ConfigError
from linas.latency import LUT, LUTLatencyModel
from linas.search import (
    CALR_MODES,
    MOMENTUM_MODES,
    PATH_SAMPLERS,
    TRAIN_MODES,
    BilevelSearch,
    DeviceTarget,
    FairTraining,
    SearchConfig,
)
from linas.search.complexity import complexity_table
from linas.search.fair import calr_seed_factor, dynas_factor, dynas_power, tercile_bin
from linas.space import CHOICE_KEYS, LAYERS, NUM_CHOICES, NUM_LAYERS
from linas.supernet.ops import build_candidate


def _conv_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Oracle: MACs of every (transposed) conv in ``module`` on ``x``, counted by hooks."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.ConvTranspose2d):  # scatter: each input pixel hits k*k outputs
            px, cin = inp[0].shape[2] * inp[0].shape[3], inp[0].shape[1]
        else:
            px, cin = out.shape[2] * out.shape[3], inp[0].shape[1]
        k = m.weight.shape[2] * m.weight.shape[3]
        total[0] += px * (cin // m.groups) * m.out_channels * k

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    module(x)
    for h in handles:
        h.remove()
    return total[0]


@pytest.mark.parametrize("layer", [3, 4])
def test_complexity_matches_modules(layer):
    table = complexity_table((64, 64))
    spec = LAYERS[layer]
    side = 64 // spec.out_stride // 2
    x = torch.zeros(1, spec.c_in, side, side)
    for j, key in enumerate(CHOICE_KEYS):
        cand = build_candidate(key, spec.c_in, spec.c_out)
        assert table.params[layer, j] == sum(p.numel() for p in cand.parameters()), key
        sobel = side * side * 2 * spec.c_in * 9 if key.startswith("EdgeConv") else 0  # functional
        with torch.no_grad():
            assert table.flops[layer, j] == _conv_macs(cand, x) + sobel, key


def test_complexity_is_vectorised_and_scales_with_pixels():
    small, big = complexity_table((64, 64)), complexity_table((128, 128))
    choices = np.array([[0, 1, 2, 3, 4], [20, 20, 20, 20, 20]])
    expect = [small.flops[np.arange(5), c].sum() for c in choices]
    assert np.allclose(small.flops_of(choices), expect)
    assert np.allclose(big.flops, 4 * small.flops) and np.array_equal(big.params, small.params)
    assert np.allclose(big.flops_terciles, 4 * small.flops_terciles)


def test_calr_factors_hand_computed():
    assert calr_seed_factor(50.0, 200.0) == pytest.approx(0.625)
    assert calr_seed_factor(200.0, 200.0) == pytest.approx(1.0)
    # log-linear exponent: P_max -> 0.5, P_min -> 2.0, geometric mean -> 1.25
    assert dynas_power(1e6, (1e2, 1e6)) == pytest.approx(0.5)
    assert dynas_power(1e2, (1e2, 1e6)) == pytest.approx(2.0)
    assert dynas_power(1e4, (1e2, 1e6)) == pytest.approx(1.25)
    assert dynas_factor(1e2, (1e2, 1e6), 0.75) == pytest.approx(0.25 ** 2)
    assert dynas_factor(1e6, (1e2, 1e6), 0.75) == pytest.approx(0.5)
    assert dynas_factor(1e4, (1e2, 1e6), 0.0) == pytest.approx(1.0)


def test_fair_training_lr_of_the_largest_and_smallest_subnet():
    table = complexity_table((64, 64))
    big, small = table.flops.argmax(1).tolist(), table.flops.argmin(1).tolist()
    p = [nn.Parameter(torch.zeros(2))]
    seed = FairTraining(p, lr=0.1, weight_decay=0.0, calr="seed", table=table)
    assert seed.optimizer_for(big, 0.3).param_groups[0]["lr"] == pytest.approx(0.1)
    f_small = table.flops_of(np.array(small)) / table.max_flops
    assert seed.lr_factor(small, 0.3) == pytest.approx(0.5 + 0.5 * f_small)
    dyn = FairTraining(p, lr=0.1, weight_decay=0.0, calr="dynas", table=table)
    pbig, psmall = table.params.argmax(1).tolist(), table.params.argmin(1).tolist()
    assert dyn.lr_factor(pbig, 0.75) == pytest.approx(0.5)
    assert dyn.lr_factor(psmall, 0.75) == pytest.approx(0.0625)


def _step(fair: FairTraining, param: nn.Parameter, choices: list[int]) -> None:
    opt = fair.optimizer_for(choices, 0.0)
    opt.zero_grad(set_to_none=True)
    (param * torch.arange(1.0, 4.0)).sum().backward()
    opt.step()


@pytest.mark.parametrize("momentum,n_states", [("seed", 3), ("dynas", NUM_CHOICES)])
def test_momentum_states_stay_separate(momentum, n_states):
    table = complexity_table((64, 64))
    param = nn.Parameter(torch.zeros(3))
    fair = FairTraining([param], lr=0.1, weight_decay=0.0, momentum=momentum, split_layer=2,
                        table=table)
    assert len(fair.optimizers) == n_states
    low, high = table.flops.argmin(1).tolist(), table.flops.argmax(1).tolist()
    a, b = fair.state_index(low), fair.state_index(high)
    assert a != b
    if momentum == "seed":
        t = table.flops_terciles
        assert (a, b) == (0, 2) and tercile_bin(t[0] - 1, t) == 0 and tercile_bin(t[1], t) == 2
    else:
        assert (a, b) == (low[2], high[2])
    _step(fair, param, low)
    before = {k: v.clone() for k, v in fair.optimizers[a].state[param].items()}
    _step(fair, param, high)
    _step(fair, param, high)
    after = fair.optimizers[a].state[param]
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert int(fair.optimizers[b].state[param]["step"]) == 2
    others = set(range(n_states)) - {a, b}
    assert all(param not in fair.optimizers[i].state for i in others)


def test_unknown_modes_fail_with_the_menu():
    with pytest.raises(ConfigError, match="did you mean .seed.*valid: dynas, none, seed"):
        SearchConfig(calr="sed")
    with pytest.raises(ConfigError, match="single-path"):
        SearchConfig(train_mode="single")
    with pytest.raises(ConfigError, match="split layer 7"):
        SearchConfig(momentum="dynas", split_layer=7)


def test_search_config_survives_json():
    search = SearchConfig(train_mode="single-path", path_sampler="gumbel", calr="dynas",
                          momentum="dynas", split_layer=3)
    back = SearchConfig(**json.loads(json.dumps(asdict(search))))
    assert back == search and back.momentum == "dynas"


def test_fair_menus_are_registries():
    assert CALR_MODES.names() == ["none", "seed", "dynas"]
    assert MOMENTUM_MODES.names() == ["shared", "seed", "dynas"]
    assert PATH_SAMPLERS.names() == ["uniform", "gumbel"]
    assert TRAIN_MODES.names() == ["soft", "single-path", "sandwich"]
    assert [MOMENTUM_MODES.get(n).n_states for n in MOMENTUM_MODES] == [1, 3, NUM_CHOICES]
    with pytest.raises(ConfigError, match="did you mean 'gumbel'.*valid: gumbel, uniform"):
        SearchConfig(path_sampler="gumbl")
    with pytest.raises(ValueError, match="needs architecture logits"):
        FairTraining([nn.Parameter(torch.zeros(1))], 0.1, 0.0, path_sampler="gumbel").sample_path(
            None, 1.0, torch.Generator(), uniform=False)


# --- on the real supernet (the `supernet` fixture of tests/search/conftest.py; fake 32x32
# features) --------------------------------------------------------------------------------


def _feats(seed: int, n: int = 2) -> tuple[list[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(64, 16), (256, 8), (512, 4), (1024, 2), (1024, 1)]  # 32x32 input
    feats = [torch.randn(n, c, s, s, generator=gen) for c, s in shapes]
    return feats, torch.randint(0, 3, (n, 32, 32), generator=gen)


def _search(net, **fields) -> BilevelSearch:
    mean = np.random.default_rng(0).uniform(1, 5, (NUM_LAYERS, NUM_CHOICES))
    lut = LUT(hardware="toy", input_size=(32, 32), mean_ms=mean, std_ms=mean * 0.01)
    cfg = SearchConfig(warmup_epochs=0, search_epochs=2, batch_size=2, seed=1, **fields)
    return BilevelSearch(net, [DeviceTarget("toy", LUTLatencyModel(lut), 8.0)], cfg)


@pytest.mark.parametrize("sampler", ["uniform", "gumbel"])
def test_single_path_computes_only_the_sampled_path(supernet, sampler):
    search = _search(supernet, train_mode="single-path", path_sampler=sampler)
    ran: list[tuple[int, int]] = []
    handles = [supernet.candidate(i, j).register_forward_hook(
        lambda m, a, o, key=(i, j): ran.append(key))
        for i in range(NUM_LAYERS) for j in range(NUM_CHOICES)]
    try:
        gen_state = search.gen.get_state()
        feats, masks = _feats(0)
        search._weight_step(feats, masks, 1.0, warm=False, tau=1.0, hard=False)  # soft phase too
        search.gen.set_state(gen_state)
        expected = search.fair.sample_path(search.logits, 1.0, search.gen, uniform=False)
    finally:
        for h in handles:
            h.remove()
    assert ran == list(enumerate(expected))


def test_checkpoint_round_trips_every_optimizer_state(supernet, tmp_path):
    search = _search(supernet, train_mode="single-path", momentum="seed", calr="seed")
    for seed in range(3):
        feats, masks = _feats(seed)
        search._weight_step(feats, masks, 1.0, warm=False, tau=1.0, hard=True)
    search.save(tmp_path / "s.pt")
    other = _search(supernet, train_mode="single-path", momentum="seed", calr="seed")
    other.load(tmp_path / "s.pt", [])
    for a, b in zip(search.fair.state_dicts(), other.fair.state_dicts(), strict=True):
        assert a["state"].keys() == b["state"].keys()
        for k in a["state"]:
            assert all(torch.equal(a["state"][k][n], b["state"][k][n]) for n in a["state"][k])
    shared = _search(supernet)  # a shared-momentum search cannot resume 3 states
    with pytest.raises(ConfigError, match="momentum: 'seed' in the checkpoint, 'shared' now"):
        shared.load(tmp_path / "s.pt", [])
    with pytest.raises(ConfigError, match="momentum 'shared' needs 1"):  # the second guard
        shared.fair.load_state_dicts(search.fair.state_dicts(), "s.pt")

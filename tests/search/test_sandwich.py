"""Train mode ``sandwich``: its paths, its loss against a hand computation, its refusals, a
short search of each strategy and a resumed one."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from linas._errors import ConfigError
from linas.distill.kd import logit_kd
from linas.search import (
    BilevelSearch,
    DeviceTarget,
    HypernetConfig,
    HypernetDevice,
    HypernetSearch,
    SearchConfig,
    SupernetSearch,
)
from linas.search.sandwich import (
    SANDWICH_RANDOM_PATHS,
    extreme_paths,
    inplace_kd,
    sandwich_paths,
)
from linas.space import CHOICE_KEYS, NUM_CHOICES, NUM_LAYERS
from stand_ins import TinyNet, tiny_data, tiny_net, toy_model

pytestmark = pytest.mark.usefixtures("one_thread")


def make(strategy: str, net: TinyNet | None = None, **fields) -> SupernetSearch:
    net = net if net is not None else tiny_net()
    base = dict(warmup_epochs=1, search_epochs=2, soft_epochs=1, batch_size=4, seed=0,
                train_mode="sandwich")
    cfg = SearchConfig(**{**base, **fields})
    if strategy == "bilevel":
        return BilevelSearch(net, [DeviceTarget("toy1", toy_model(1), 20.0)], cfg)
    devices = [HypernetDevice.from_model(f"toy{s}", toy_model(s), b)
               for s, b in ((1, 1e6), (2, 30.0))]
    return HypernetSearch(net, devices, cfg, HypernetConfig(hidden=16, pairs_per_step=2))


TRAIN, VAL = tiny_data(8, 0), tiny_data(6, 1)


def spy_decode(search: SupernetSearch) -> list[list[int]]:
    """Record the choices of every decode of the search's net."""
    calls: list[list[int]] = []
    decode = search.net.decode

    def spy(feats, weights=None, choices=None):
        calls.append(list(choices))
        return decode(feats, weights, choices)

    search.net.decode = spy  # type: ignore[method-assign]
    return calls


# ---- paths and loss terms -------------------------------------------------------------------


def test_largest_and_smallest_subnets_of_the_space():
    largest, smallest = extreme_paths()
    assert [CHOICE_KEYS[c] for c in largest] == ["Conv7x7_w100"] * NUM_LAYERS
    assert [CHOICE_KEYS[c] for c in smallest] == ["DWSep3x3_w50"] * NUM_LAYERS  # ties Dilated


def test_sandwich_paths_are_largest_smallest_then_seeded_draws():
    paths = sandwich_paths(torch.Generator().manual_seed(4))
    assert len(paths) == 2 + SANDWICH_RANDOM_PATHS == 4
    assert paths[:2] == list(extreme_paths())
    oracle = torch.Generator().manual_seed(4)
    draws = [torch.randint(0, NUM_CHOICES, (NUM_LAYERS,), generator=oracle).tolist()
             for _ in range(SANDWICH_RANDOM_PATHS)]
    assert paths[2:] == draws and draws[0] != draws[1]  # one draw each, in turn
    assert sandwich_paths(torch.Generator().manual_seed(4)) == paths
    assert sandwich_paths(torch.Generator().manual_seed(5))[2:] != paths[2:]
    assert len(sandwich_paths(torch.Generator(), n=3)) == 5
    assert sandwich_paths(torch.Generator(), n=0) == list(extreme_paths())
    with pytest.raises(ValueError, match="n = -1"):
        sandwich_paths(torch.Generator(), n=-1)


def test_inplace_kd_is_kl_to_the_detached_teacher_at_temperature_one():
    g = torch.Generator().manual_seed(0)
    student = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    teacher = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    masks = torch.randint(0, 3, (2, 4, 4), generator=g)
    masks[0, 0] = 255
    loss = inplace_kd(student, teacher, masks, 0.5)
    assert loss.item() == pytest.approx(0.5 * logit_kd(student, teacher, masks, 1.0).item())
    loss.backward()
    assert teacher.grad is None and student.grad is not None
    assert inplace_kd(student, student, masks, 1.0).item() == pytest.approx(0.0, abs=1e-6)
    zero = inplace_kd(student, teacher, torch.full_like(masks, 255), 1.0)
    assert zero.item() == 0.0 and zero.requires_grad


# ---- the weight step ------------------------------------------------------------------------


def test_one_step_is_ce_of_the_largest_plus_kl_of_the_others():
    """Oracle: the step's gradient and its Adam update equal those of the hand-computed loss
    ``CE(largest) + sum_s KL(softmax(largest).detach() || softmax(s))`` on a twin net."""
    search = make("bilevel")
    twin = copy.deepcopy(search.net)
    calls = spy_decode(search)
    feats, masks = TRAIN.batch(torch.arange(4))
    state = search.gen.get_state()
    ce = search._weight_step(feats, masks, 1.0, warm=True, tau=1.0, hard=False)
    search.gen.set_state(state)
    paths = sandwich_paths(search.gen)
    assert calls == paths  # largest first, then the students, each path run once

    teacher = twin.decode(feats, choices=paths[0])
    loss = F.cross_entropy(teacher, masks, ignore_index=255)
    assert ce == pytest.approx(loss.item())
    soft = F.softmax(teacher.detach(), dim=1)
    for path in paths[1:]:
        log_s = F.log_softmax(twin.decode(feats, choices=path), dim=1)
        loss = loss + (soft * (soft.log() - log_s)).sum(dim=1).mean()
    opt = torch.optim.Adam([p for p in twin.parameters() if p.requires_grad], lr=2e-3,
                           weight_decay=1e-4)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    trained = [(p, q) for p, q in zip(search.net.parameters(), twin.parameters(), strict=True)
               if q.grad is not None]
    assert trained and all(torch.allclose(p.grad, q.grad, atol=1e-6) for p, q in trained)
    opt.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in
               zip(search.net.parameters(), twin.parameters(), strict=True))
    assert len(search.fair.optimizers) == 1 and int(
        next(iter(search.fair.optimizers[0].state.values()))["step"]) == 1  # one step


def test_after_warmup_the_random_paths_come_from_the_path_sampler():
    search = make("bilevel", path_sampler="gumbel")
    calls = spy_decode(search)
    feats, masks = TRAIN.batch(torch.arange(4))
    state = search.gen.get_state()
    search._weight_step(feats, masks, 1.0, warm=False, tau=0.7, hard=False)
    search.gen.set_state(state)
    drawn = [search.fair.sample_path(search.logits, 0.7, search.gen, uniform=False)
             for _ in range(SANDWICH_RANDOM_PATHS)]
    assert calls == [*extreme_paths(), *drawn]


def test_sandwich_refuses_per_subnet_calr_and_momentum():
    with pytest.raises(ConfigError, match="search.calr = seed: train_mode sandwich .* set "
                                          "search.calr: none"):
        SearchConfig(train_mode="sandwich", calr="seed")
    with pytest.raises(ConfigError, match="search.momentum = dynas: .* set search.momentum: "
                                          "shared"):
        SearchConfig(train_mode="sandwich", momentum="dynas")
    SearchConfig(train_mode="sandwich", path_sampler="gumbel")  # accepted
    SearchConfig(train_mode="single-path", calr="seed", momentum="seed")  # others unchanged


# ---- searches -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["bilevel", "hypernet"])
def test_short_search_trains_the_smallest_path(strategy):
    search = make(strategy)
    smallest = extreme_paths()[1]
    before = [search.net.layers[i][c].weight.detach().clone() for i, c in enumerate(smallest)]
    state = search.run(TRAIN, VAL)
    assert state.epoch == 3 and all(np.isfinite(h["ce_train"]) for h in state.history)
    after = [search.net.layers[i][c].weight for i, c in enumerate(smallest)]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_sandwich_search_resumes_to_the_uninterrupted_result(tmp_path):
    full = make("bilevel")
    full.run(TRAIN, VAL)

    class Stop(Exception):
        pass

    first = make("bilevel")

    def save_then_stop(state):
        first.save(tmp_path / "s.pt")
        if state.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        first.run(TRAIN, VAL, on_epoch=save_then_stop)
    resumed = make("bilevel")  # a fresh net: weights, Adam state and RNG from the file
    resumed.load(tmp_path / "s.pt", first.state.history)
    resumed.run(TRAIN, VAL)
    assert all(torch.equal(p, q) for p, q in
               zip(resumed.net.parameters(), full.net.parameters(), strict=True))
    assert resumed.state.history == full.state.history
    with pytest.raises(ConfigError, match="train_mode: 'sandwich' in the checkpoint, 'soft'"):
        make("bilevel", train_mode="soft").load(tmp_path / "s.pt", first.state.history)

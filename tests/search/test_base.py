"""The search base class: both strategies through one loop, the I2 weight step for the
hypernetwork too, seeds, and the checkpointed ``fit`` (resume, refusal, fine-tuned encoder)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from linas._errors import ConfigError, DataError
from linas.compute import shard_batches
from linas.progress import Reporter
from linas.search import (
    SEARCH_STRATEGIES,
    BilevelSearch,
    DeviceTarget,
    HypernetConfig,
    HypernetDevice,
    HypernetSearch,
    SearchConfig,
    SupernetSearch,
)
from linas.search.checkpoint import history_path
from stand_ins import TinyNet, tiny_data, tiny_net, toy_model


def config(**fields) -> SearchConfig:
    base = dict(warmup_epochs=1, search_epochs=3, soft_epochs=1, batch_size=4, seed=0)
    return SearchConfig(**{**base, **fields})


def make(strategy: str, net: TinyNet | None = None, **fields) -> SupernetSearch:
    net = net if net is not None else tiny_net()
    if strategy == "bilevel":
        return BilevelSearch(net, [DeviceTarget("toy1", toy_model(1), 20.0)], config(**fields))
    devices = [HypernetDevice.from_model(f"toy{s}", toy_model(s), b)
               for s, b in ((1, 1e6), (2, 30.0))]
    return HypernetSearch(net, devices, config(**fields), HypernetConfig(hidden=16,
                                                                         pairs_per_step=2))


def snapshot(search: SupernetSearch) -> list[torch.Tensor]:
    """Every trained tensor of a search: supernet weights and the architecture part."""
    out = [p.detach().clone() for p in search.net.parameters()]
    if isinstance(search, BilevelSearch):
        return [*out, search.logits.detach().clone()]
    assert isinstance(search, HypernetSearch)
    return [*out, *(p.detach().clone() for p in search.hnet.parameters())]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class Killed(Exception):
    pass


class Recorder(Reporter):
    """A quiet reporter that keeps its messages and can 'kill' the run after a checkpoint."""

    def __init__(self, kill_after_checkpoints: int | None = None) -> None:
        super().__init__(quiet=True)
        self.messages: list[str] = []
        self.kill_after = kill_after_checkpoints

    def info(self, message: str) -> None:
        self.messages.append(message)
        if self.kill_after is not None and len(self.saves()) == self.kill_after:
            raise Killed

    def saves(self) -> list[str]:
        return [m for m in self.messages if m.startswith("checkpoint")]


STRATEGIES = ["bilevel", "hypernet"]
TRAIN, VAL = tiny_data(8, 0), tiny_data(6, 1)  # 6 arch-val images: batches cycle


def test_registry_holds_both_strategies():
    assert SEARCH_STRATEGIES.names() == STRATEGIES
    for name in SEARCH_STRATEGIES:
        cls = SEARCH_STRATEGIES.get(name)
        assert issubclass(cls, SupernetSearch) and cls.strategy == name
    with pytest.raises(ConfigError, match="did you mean 'hypernet'.*valid: bilevel, hypernet"):
        SEARCH_STRATEGIES.get("hypernt")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_both_strategies_run_through_the_base_loop(strategy):
    search = make(strategy)
    state = search.run(TRAIN, VAL)
    assert state.epoch == 4 and [h["phase"] for h in state.history] == [
        "warmup", "soft", "hard", "hard"]
    assert state.history[0]["ce_val"] == 0.0 and state.history[-1]["ce_val"] > 0.0
    assert set(search.arch_stats) < set(state.history[-1])
    with pytest.raises(DataError, match="arch-val 0"):
        make(strategy).run(TRAIN, tiny_data(0, 2))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_global_rng_and_seeds_decide(strategy):
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    a = make(strategy)
    a.run(TRAIN, VAL)
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert json.dumps(np.random.get_state()[1].tolist()) == json.dumps(np_state[1].tolist())
    b, c = make(strategy), make(strategy, seed=1)
    b.run(TRAIN, VAL)
    c.run(TRAIN, VAL)
    assert same(snapshot(a), snapshot(b)) and a.state.history == b.state.history
    assert not same(snapshot(a), snapshot(c))


def test_hypernet_separates_momentum_in_three_states():
    search = make("hypernet", momentum="seed")
    search.run(TRAIN, VAL)
    assert len(search.fair.optimizers) == 3
    used = [i for i, opt in enumerate(search.fair.optimizers) if opt.state]
    assert len(used) >= 2  # random subnets of several FLOPs terciles were trained


def test_hypernet_weight_step_takes_the_calr_learning_rate():
    search = make("hypernet", calr="seed")
    seen: list[tuple[list[int], float]] = []
    pick = search.fair.optimizer_for

    def spy(choices, progress):
        opt = pick(choices, progress)
        seen.append((list(choices), opt.param_groups[0]["lr"]))
        return opt

    search.fair.optimizer_for = spy  # type: ignore[method-assign]
    search.run(TRAIN, VAL)
    table = search.fair.table
    for choices, lr in seen:
        flops = float(table.flops_of(np.asarray(choices)))
        assert lr == pytest.approx(2e-3 * (0.5 + 0.5 * flops / table.max_flops))
    assert len(seen) == 8 and max(lr for _, lr in seen) < 2e-3
    plain = make("hypernet")
    plain.run(TRAIN, VAL)
    assert not same(snapshot(search), snapshot(plain))


@pytest.mark.parametrize("sampler", ["uniform", "gumbel"])
def test_hypernet_single_path_trains_one_path_from_the_hypernet(sampler):
    search = make("hypernet", train_mode="single-path", path_sampler=sampler)
    calls: list[tuple[bool, list[int]]] = []
    decode = search.net.decode

    def spy(feats, weights=None, choices=None):
        calls.append((weights is None, list(choices)))
        return decode(feats, weights, choices)

    search.net.decode = spy  # type: ignore[method-assign]
    gen, prefs = search.gen.get_state(), search.prefs.get_state()
    feats, masks = TRAIN.batch(torch.arange(4))
    search._weight_step(feats, masks, 1.0, warm=False, tau=1.0, hard=False)  # soft phase too
    search.gen.set_state(gen)
    search.prefs.set_state(prefs)
    logits = search._weight_logits() if sampler == "gumbel" else None
    expected = search.fair.sample_path(logits, 1.0, search.gen, uniform=False)
    assert calls == [(True, expected)]


def test_hypernet_default_weight_step_is_plain_adam():
    """Oracle: with the default I2 options the hypernet's weight step is one plain Adam state
    at the configured lr, as before the weight step went through FairTraining."""
    search = make("hypernet")
    twin = copy.deepcopy(search.net)
    opt = torch.optim.Adam([p for p in twin.parameters() if p.requires_grad], lr=2e-3,
                           weight_decay=1e-4)
    calls: list[tuple[torch.Tensor | None, list[int] | None]] = []
    decode = search.net.decode

    def spy(feats, weights=None, choices=None):
        calls.append((None if weights is None else weights.detach().clone(), choices))
        return decode(feats, weights, choices)

    search.net.decode = spy  # type: ignore[method-assign]
    phases = [(True, False), (False, False), (False, True)]  # warm-up, soft, hard
    batches = (b for _, b in shard_batches(tiny_data(12, 3), 4, None))
    for (warm, hard), (feats, masks) in zip(phases, batches, strict=True):
        search._weight_step(feats, masks, 1.0, warm=warm, tau=1.0, hard=hard)
        weights, choices = calls[-1]
        assert (weights is None) == (warm or hard)
        loss = nn.functional.cross_entropy(twin.decode(feats, weights, choices), masks,
                                           ignore_index=255)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert len(calls) == 3 and len(search.fair.optimizers) == 1
    assert same(list(search.net.parameters()), list(twin.parameters()))


# ---- checkpointed fit ---------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fit_killed_and_resumed_matches_uninterrupted(strategy, tmp_path):
    full_rep = Recorder()
    full = make(strategy)
    full.fit(TRAIN, VAL, tmp_path / "full.pt", full_rep, "full", every_s=1e9)
    assert len(full_rep.saves()) == 1  # at most once per interval, and after the last epoch

    ckpt = tmp_path / "run" / "search.pt"
    with pytest.raises(Killed):  # killed right after the checkpoint of epoch 2
        make(strategy).fit(TRAIN, VAL, ckpt, Recorder(kill_after_checkpoints=2), "x",
                           every_s=0.0)
    assert len(json.loads(history_path(ckpt).read_text())) == 2
    rep = Recorder()
    resumed = make(strategy)  # a new process: a fresh net, everything else from the files
    state = resumed.fit(TRAIN, VAL, ckpt, rep, "x", every_s=0.0)
    assert rep.messages[0] == f"resuming from {ckpt} at epoch 2"
    assert rep.saves()[-1].endswith(f"{ckpt.stat().st_size} bytes")
    assert same(snapshot(resumed), snapshot(full)) and state.history == full.state.history
    again = Recorder()  # a finished checkpoint is only loaded
    assert make(strategy).fit(TRAIN, VAL, ckpt, again, "x").history == full.state.history
    assert again.saves() == []


def test_checkpoint_of_another_config_or_strategy_is_refused(tmp_path):
    search = make("bilevel")
    search.save(tmp_path / "b.pt")
    with pytest.raises(ConfigError, match=r"search.lr_weights: 0.002 in the checkpoint, 0.001 "
                                          r"now; search.seed: 0 in the checkpoint, 3 now"):
        make("bilevel", lr_weights=1e-3, seed=3).load(tmp_path / "b.pt", [])
    with pytest.raises(ConfigError, match="written by the 'bilevel' strategy, this search is "
                                          "'hypernet'"):
        make("hypernet").load(tmp_path / "b.pt", [])
    torch.save({"supernet": {}}, tmp_path / "old.pt")
    with pytest.raises(ConfigError, match="not a search checkpoint"):
        make("bilevel").load(tmp_path / "old.pt", [])


def test_history_ahead_of_its_checkpoint_is_cut_and_one_behind_refused(tmp_path):
    search = make("bilevel")
    search.run(TRAIN, VAL)
    search.save(tmp_path / "b.pt")
    other = make("bilevel")
    other.load(tmp_path / "b.pt", [*search.state.history, {"epoch": 4}])
    assert other.state.history == search.state.history
    with pytest.raises(ConfigError, match="history holds 3 epochs"):
        make("bilevel").load(tmp_path / "b.pt", search.state.history[:3])


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_finetuned_encoder_weights_are_checkpointed(strategy, tmp_path):
    net = tiny_net(frozen=False)
    data = tiny_data(4, 0, net)
    search = make(strategy, net, warmup_epochs=1, search_epochs=0)
    before = net.encoder.weight.detach().clone()
    search.run(data, data)
    assert not torch.equal(before, net.encoder.weight)  # trained
    search.save(tmp_path / "ft.pt")
    blob = torch.load(tmp_path / "ft.pt", weights_only=True)
    assert torch.equal(blob["supernet"]["encoder.weight"], net.encoder.weight)
    fresh = tiny_net(frozen=False)
    make(strategy, fresh, warmup_epochs=1, search_epochs=0).load(tmp_path / "ft.pt",
                                                                 search.state.history)
    assert torch.equal(fresh.encoder.weight, net.encoder.weight)
    with pytest.raises(ConfigError, match="trains_encoder: True in the checkpoint, False now"):
        make(strategy, tiny_net(), warmup_epochs=1, search_epochs=0).load(tmp_path / "ft.pt",
                                                                          [])
    frozen = make(strategy, tiny_net(), warmup_epochs=1, search_epochs=0)
    frozen.save(tmp_path / "frozen.pt")
    keys = torch.load(tmp_path / "frozen.pt", weights_only=True)["supernet"]
    assert not any(k.startswith("encoder.") for k in keys)

"""BatchNorm recalibration of one path: which layers, hand-computed statistics, no parameter
change, restored statistics, and an evaluation that recalibration repairs."""

import copy

import pytest
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from linas._errors import ConfigError, DataError
from linas.data import FeatureSet
from linas.search import evaluate_choices
from linas.search.bn_recal import (
    feature_batches,
    path_batchnorms,
    recalibrate_bn,
    recalibrated,
)
from linas.space import NUM_CHOICES, NUM_LAYERS

pytestmark = pytest.mark.usefixtures("one_thread")


class TinyBNNet(nn.Module):
    """Stand-in supernet: layer 0's 21 candidates are 1x1 conv + BN, layers 1-4 plain 1x1
    convs, so layer 0's statistics on the data can be computed by hand; the encoder has a BN
    that recalibration must leave alone."""

    def __init__(self, c: int = 4, classes: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(3, c, 1), nn.BatchNorm2d(c))
        first = nn.ModuleList(nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))
                              for _ in range(NUM_CHOICES))
        rest = [nn.ModuleList(_identity_conv(c) for _ in range(NUM_CHOICES))
                for _ in range(NUM_LAYERS - 1)]
        self.layers = nn.ModuleList([first, *rest])
        self.head = nn.Conv2d(c, classes, 1)

    def decode(self, feats, weights=None, choices=None):
        x = feats[-1]
        for i, cands in enumerate(self.layers):
            x = torch.relu(cands[choices[i]](x))  # (B, c, H, W)
        return self.head(x)


def _identity_conv(c: int) -> nn.Conv2d:
    """A 1x1 conv that passes its input through (so the prediction varies per pixel)."""
    conv = nn.Conv2d(c, c, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(c).view(c, c, 1, 1))
        conv.bias.zero_()
    return conv


def tiny_bn_net() -> TinyBNNet:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = TinyBNNet()
    net.eval()
    return net


def tiny_data(n: int = 8, seed: int = 0) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(n, 4, 6, 6, generator=g) * 2.0 + 1.0
    return FeatureSet(masks=torch.randint(0, 3, (n, 6, 6), generator=g), feats=[feats])


def bn_buffers(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()
            if k.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked")}


def params(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in net.named_parameters()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


CHOICES = [5, 0, 1, 2, 3]


def hand_stats(net: TinyBNNet, data: FeatureSet, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Oracle: layer 0's cumulative average over the batches of the per-batch mean and
    unbiased variance of its conv output (what momentum=None BN accumulates)."""
    conv = net.layers[0][CHOICES[0]][0]
    means, variances = [], []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            y = conv(data.feats[0][start:start + batch])  # (B, c, H, W)
            means.append(y.mean(dim=(0, 2, 3)))
            variances.append(y.var(dim=(0, 2, 3), unbiased=True))
    return torch.stack(means).mean(0), torch.stack(variances).mean(0)


def test_only_the_paths_batchnorm_is_found():
    net, data = tiny_bn_net(), tiny_data()
    found = path_batchnorms(net, CHOICES, data.feats)
    assert found == [net.layers[0][CHOICES[0]][1]]  # not the encoder's, not other candidates'


def test_recalibration_matches_hand_statistics_and_changes_no_parameter():
    net, data = tiny_bn_net(), tiny_data()
    bn = net.layers[0][CHOICES[0]][1]
    before_params, before_bufs = params(net), bn_buffers(net)
    recalibrate_bn(net, CHOICES, feature_batches(data, 4, n_batches=2))
    mean, var = hand_stats(net, data, 4)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5)
    assert torch.allclose(bn.running_var, var, atol=1e-5)
    assert int(bn.num_batches_tracked) == 2
    assert bn.momentum == 0.1 and not net.training and not bn.training
    assert same(params(net), before_params)
    after = bn_buffers(net)
    changed = {k for k in after if not torch.equal(after[k], before_bufs[k])}
    assert changed == {f"layers.0.{CHOICES[0]}.1.{n}" for n in
                       ("running_mean", "running_var", "num_batches_tracked")}


def test_only_the_first_n_batches_count():
    net, data = tiny_bn_net(), tiny_data()
    recalibrate_bn(net, CHOICES, feature_batches(data, 4, n_batches=1))
    mean, _ = hand_stats(net, FeatureSet(masks=data.masks[:4], feats=[data.feats[0][:4]]), 4)
    assert torch.allclose(net.layers[0][CHOICES[0]][1].running_mean, mean, atol=1e-5)


def _corrupt(net: TinyBNNet) -> None:
    bn = net.layers[0][CHOICES[0]][1]
    with torch.no_grad():
        bn.running_mean.fill_(100.0)
        bn.running_var.fill_(1e-4)


def test_recalibration_repairs_corrupted_statistics_and_restores_them_after():
    net, data = tiny_bn_net(), tiny_data()
    reference = copy.deepcopy(net)  # statistics set by hand from the data
    mean, var = hand_stats(net, data, 4)
    ref_bn = reference.layers[0][CHOICES[0]][1]
    with torch.no_grad():
        ref_bn.running_mean.copy_(mean)
        ref_bn.running_var.copy_(var)
    _corrupt(net)
    corrupted = bn_buffers(net)
    ref_miou, ref_cm = evaluate_choices(reference, data, CHOICES, 3, batch_size=4)
    bad_miou, bad_cm = evaluate_choices(net, data, CHOICES, 3, batch_size=4)
    fixed_miou, fixed_cm = evaluate_choices(net, data, CHOICES, 3, batch_size=4, bn_recal=data,
                                            bn_recal_batches=2)
    assert len(set(ref_cm.sum(axis=0).nonzero()[0])) > 1  # the reference predicts classes
    assert (bad_cm != ref_cm).any() and bad_miou < ref_miou
    assert (fixed_cm == ref_cm).all() and fixed_miou == ref_miou
    assert same(bn_buffers(net), corrupted)  # the supernet's own statistics are back
    feats = data.feats
    with recalibrated(net, CHOICES, feature_batches(data, 4, 2)):
        assert torch.allclose(net.decode(feats, choices=CHOICES),
                              reference.decode(feats, choices=CHOICES), atol=1e-5)
    assert same(bn_buffers(net), corrupted)


def test_statistics_are_restored_when_the_block_raises():
    net, data = tiny_bn_net(), tiny_data()
    before = bn_buffers(net)
    with pytest.raises(RuntimeError, match="boom"), recalibrated(
            net, CHOICES, feature_batches(data, 4, 2)):
        assert not same(bn_buffers(net), before)
        raise RuntimeError("boom")
    assert same(bn_buffers(net), before)


def test_bad_recalibration_inputs_fail_with_the_fix():
    net, data = tiny_bn_net(), tiny_data()
    with pytest.raises(ConfigError, match="bn_recal_batches = 0: expected at least 1"):
        evaluate_choices(net, data, CHOICES, 3, bn_recal=data, bn_recal_batches=0)
    empty = FeatureSet(masks=data.masks[:0], feats=[data.feats[0][:0]])
    with pytest.raises(DataError, match="holds no images"):
        evaluate_choices(net, data, CHOICES, 3, bn_recal=empty)
    with pytest.raises(DataError, match="no feature batches"):
        recalibrate_bn(net, CHOICES, [])


# --- on the real supernet (the `supernet` fixture of tests/search/conftest.py) ---------------


def _feats(seed: int, n: int = 2) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shapes = [(64, 16), (256, 8), (512, 4), (1024, 2), (1024, 1)]  # 32x32 input
    return [torch.randn(n, c, s, s, generator=gen) for c, s in shapes]


def _bns(module: nn.Module) -> set[int]:
    return {id(m) for m in module.modules() if isinstance(m, _BatchNorm)}


def test_supernet_path_batchnorms_are_the_candidates_and_the_fusions(supernet):
    choices = [0, 4, 10, 15, 20]  # widths 0.5, 0.75, 0.75, 1.0, 1.0: with and without proj
    found = {id(m) for m in path_batchnorms(supernet, choices, _feats(0))}
    expected = set().union(*(_bns(supernet.candidate(i, c)) for i, c in enumerate(choices)),
                           _bns(supernet.head))
    assert found == expected and not found & _bns(supernet.encoder)


def test_supernet_recalibration_is_deterministic_and_restored(supernet):
    choices = [0, 4, 10, 15, 20]
    batches = [_feats(1), _feats(2)]
    # only modules that run can change; cloning all 174 M parameters would take seconds
    ran = nn.ModuleList([supernet.head, *(supernet.candidate(i, c) for i, c in
                                          enumerate(choices))])
    before_params, before_bufs = params(ran), bn_buffers(supernet)
    with recalibrated(supernet, choices, batches):
        inside = bn_buffers(supernet)
        assert same(params(ran), before_params)
    assert same(bn_buffers(supernet), before_bufs)
    with recalibrated(supernet, choices, batches):
        again = bn_buffers(supernet)
    assert same(inside, again)
    changed = {k for k in inside if not torch.equal(inside[k], before_bufs[k])}
    assert changed and not any(k.startswith("encoder.") for k in changed)
    assert any(k.startswith("head.fusions.0.") for k in changed)
    assert all(k.startswith(("head.", *(f"layers.{i}.candidates.{c}." for i, c in
                                        enumerate(choices)))) for k in changed)
    assert not supernet.training


def test_pareto_stage_recalibrates_when_configured():
    """``pareto.bn_recal_batches`` > 0: the Pareto stage's weight-sharing evaluation is the
    recalibrated one (on the training split); 0: the supernet's own statistics."""
    from types import SimpleNamespace

    from linas.compute import CPU
    from linas.config import RunConfig, with_overrides
    from linas.run.fronts import ws_miou

    net, data = tiny_bn_net(), tiny_data()
    _corrupt(net)
    corrupted = bn_buffers(net)
    train = tiny_data(seed=1)
    ctx = SimpleNamespace(net=net, splits={"arch_val": data, "train": train})

    def run(n: int) -> SimpleNamespace:
        cfg = with_overrides(RunConfig(), {"pareto.bn_recal_batches": n}, "test")
        return SimpleNamespace(cfg=cfg, results={"num_classes": 3},
                               compute=CPU)

    plain = ws_miou(run(0), ctx, CHOICES)
    recal = ws_miou(run(1), ctx, CHOICES)
    assert plain == evaluate_choices(net, data, CHOICES, 3)[0]
    assert recal == evaluate_choices(net, data, CHOICES, 3, bn_recal=train,
                                     bn_recal_batches=1)[0]
    assert recal > plain
    assert same(bn_buffers(net), corrupted)
    with pytest.raises(ConfigError, match="pareto.bn_recal_batches = -1"):
        with_overrides(RunConfig(), {"pareto.bn_recal_batches": -1}, "test")

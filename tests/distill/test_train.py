"""Final training with and without distillation: kd none is today's CE training bit for bit,
a KD step trains the student and the adapters and leaves the teacher alone, every term is
scaled by the rank's share, and an empty shard still gives a graph."""

from __future__ import annotations

import copy

import pytest
import torch

from linas.compute import CPU, shard_batches
from linas.distill import Distillation, FinalTrainConfig, train_final
from linas.search.losses import segmentation_ce
from linas.space import Arch
from linas.supernet import SegmentationModel

CFG = FinalTrainConfig(epochs=2, batch_size=3, lr=3e-3, seed=7)


def small_arch(op: str = "DWSep3x3", width: str = "w50") -> Arch:
    return Arch.parse("-".join([f"{op}_{width}"] * 5))


def reference_ce_training(model: SegmentationModel, train, config: FinalTrainConfig,
                          ignore_index: int = 255) -> list[dict]:
    """The CE final training as it was before I5 (one process, fp32), written out here."""
    gen = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train) // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    history = []
    for epoch in range(config.epochs):
        model.train()
        model.encoder.eval()
        losses = []
        for share, (feats, masks) in shard_batches(train, config.batch_size, gen, CPU):
            loss = segmentation_ce(model.decode(feats), masks, ignore_index) * share
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        history.append({"epoch": epoch,
                        "ce": float(torch.tensor(losses, dtype=torch.float64).mean())})
    return history


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_decode_with_features_gives_decode_and_the_five_layer_outputs(tiny_net,
                                                                      tiny_splits) -> None:
    model = tiny_net.extract(small_arch("EdgeConv", "w75"))
    model.eval()
    feats, _ = tiny_splits["test"].batch(torch.arange(2))
    logits, outs = model.decode_with_features(feats)
    assert torch.equal(logits, model.decode(feats))
    assert [tuple(o.shape) for o in outs] == [(2, 512, 2, 2), (2, 256, 4, 4), (2, 128, 8, 8),
                                              (2, 64, 16, 16), (2, 32, 32, 32)]


def test_kd_none_is_the_ce_training_bit_for_bit(tiny_net, tiny_splits) -> None:
    arch = small_arch()
    ours, ref = tiny_net.extract(arch), tiny_net.extract(arch)
    assert same_weights(ours, ref)
    rng = torch.random.get_rng_state()
    history = train_final(ours, tiny_splits["train"], CFG)
    assert torch.equal(rng, torch.random.get_rng_state())  # no global draw
    assert history == reference_ce_training(ref, tiny_splits["train"], CFG)
    assert [set(h) for h in history] == [{"epoch", "ce"}] * 2
    assert same_weights(ours, ref)
    assert not same_weights(ours, tiny_net.extract(arch))  # it did train


def distill_setup(tiny_net, alpha: float = 0.8) -> tuple[SegmentationModel, Distillation]:
    teacher = tiny_net.extract(small_arch("Conv3x3", "w100"))
    return tiny_net.extract(small_arch()), Distillation(teacher, alpha, beta=1.0, gamma=10.0,
                                                        temperature=4.0)


def test_a_kd_step_trains_student_and_adapters_not_the_teacher(tiny_net, tiny_splits) -> None:
    student, kd = distill_setup(tiny_net)
    teacher_before = copy.deepcopy(kd.teacher.state_dict())
    adapters_before = copy.deepcopy(kd.adapters.state_dict())
    cfg = FinalTrainConfig(epochs=1, batch_size=3, seed=7)
    history = train_final(student, tiny_splits["train"], cfg, distill=kd)
    assert set(history[0]) == {"epoch", "ce", "logit_kd", "feature_kd", "aicsd", "loss"}
    h = history[0]
    assert h["loss"] == pytest.approx(h["ce"] + 0.8 * h["logit_kd"] + h["feature_kd"]
                                      + 10.0 * h["aicsd"], rel=1e-6)
    assert all(h[k] > 0 for k in ("logit_kd", "feature_kd", "aicsd"))
    teacher_after = kd.teacher.state_dict()
    assert all(torch.equal(teacher_before[k], teacher_after[k]) for k in teacher_before)
    assert not kd.teacher.training and not any(p.requires_grad for p in kd.teacher.parameters())
    assert all(p.grad is None for p in kd.teacher.parameters())
    after = kd.adapters.state_dict()
    assert any(not torch.equal(adapters_before[k], after[k]) for k in after)
    ce_only = tiny_net.extract(small_arch())
    train_final(ce_only, tiny_splits["train"], cfg)
    assert not same_weights(student, ce_only)  # the KD terms changed the student's steps
    assert not any(k.startswith("adapters") for k in student.state_dict())  # not exported


def test_every_term_is_scaled_by_the_share_and_an_empty_shard_keeps_a_graph(
        tiny_net, tiny_splits) -> None:
    student, kd = distill_setup(tiny_net)
    student.eval()  # the same BN statistics in both calls
    feats, masks = tiny_splits["train"].batch(torch.arange(3))
    full = kd.losses(student, feats, masks, 1.0, 255)
    half = kd.losses(student, feats, masks, 0.5, 255)
    for key in full:
        assert float(half[key].detach()) == pytest.approx(0.5 * float(full[key].detach()),
                                                          rel=1e-6), key
    student.train()  # as in training: BN on an empty batch
    empty = kd.losses(student, [f[:0] for f in feats], masks[:0], 0.0, 255)
    assert all(float(v.detach()) == 0.0 for v in empty.values())
    empty["loss"].backward()  # carries the graph: every rank joins the gradient sum
    assert any(p.grad is not None for p in student.parameters())


def test_the_teacher_sees_no_gradient_even_when_asked(tiny_net, tiny_splits) -> None:
    student, kd = distill_setup(tiny_net)
    feats, masks = tiny_splits["train"].batch(torch.arange(3))
    for p in kd.teacher.parameters():
        p.requires_grad_(True)  # someone unfroze it: losses still run it without grads
    kd.losses(student, feats, masks, 1.0, 255)["loss"].backward()
    assert all(p.grad is None for p in kd.teacher.parameters())

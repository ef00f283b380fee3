"""The final stage with distillation (``linas.run.final``): the teacher is fine-tuned once and
reused on rerun, alpha comes from each device's latency model (devices with the same arch and
alpha train once), weights files are keyed by the final section, alpha and teacher, and the
cards carry the kd block (with a warning when the teacher tests worse than its student)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import linas.run.final as final
from linas._errors import LUTError
from linas.config import DeviceConfig, RunConfig, stage_seeds
from linas.distill import FinalTrainConfig, kd_alpha
from linas.latency import LUT
from linas.progress import Reporter
from linas.run import Context, Run, RunDir
from linas.run.cards import render_card
from linas.space import CHOICE_KEYS, Arch

STUDENT = Arch.parse("-".join(["DWSep3x3_w50"] * 5))
TEACHER = "-".join(["Conv3x3_w100"] * 5)  # small enough for a test; the default is Conv7x7_w100
KD = FinalTrainConfig(epochs=1, batch_size=4, kd="latency", teacher=TEACHER)


class Recorder(Reporter):
    def __init__(self) -> None:
        super().__init__(quiet=True)
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def lut(name: str, teacher_ms: float) -> LUT:
    """1 ms per op, ``teacher_ms`` for the teacher's op (Conv3x3_w100)."""
    mean = np.ones((5, 21))
    mean[:, CHOICE_KEYS.index("Conv3x3_w100")] = teacher_ms
    return LUT(hardware=name, input_size=(32, 32), mean_ms=mean, std_ms=mean * 0.01)


def make_run(root: Path, net, splits, cfg: FinalTrainConfig) -> tuple[Run, Context]:
    """Devices a and b share a LUT (same alpha), c's teacher is 4x slower per op."""
    names = ("a", "b", "c")
    run_cfg = RunConfig(devices=tuple(DeviceConfig(n, lut=f"{n}.json") for n in names),
                        final=cfg)
    run = Run(run_cfg, RunDir(root), Recorder(), (32, 32), stage_seeds(0),
              results={"num_classes": net.num_classes, "ignore_index": 255,
                       "dataset": {"classes": ["bg", "sealer", "defect"]}})
    ctx = Context(net, splits, {"a": lut("a", 1.0), "b": lut("b", 1.0), "c": lut("c", 4.0)})
    return run, ctx


@pytest.fixture
def counted(monkeypatch):
    """Count final trainings and skip the ONNX export (its own tests cover it)."""
    calls: list[int] = []
    real = final.train_final

    def train_final(model, *args, **kwargs):
        calls.append(1)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(final, "train_final", train_final)
    monkeypatch.setattr(final, "export_onnx", lambda m, s, path: Path(path))
    monkeypatch.setattr(final, "onnx_parity", lambda *a, **k: 0.0)
    return calls


def selections(arch: Arch = STUDENT) -> dict:
    return {n: {"selected": {"arch": str(arch)}} for n in ("a", "b", "c")}


def test_teacher_once_students_per_arch_and_alpha_reused_on_rerun(
        tmp_path, tiny_net, tiny_splits, counted) -> None:
    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, KD)
    cards = final.run_final(run, ctx, selections())
    assert len(counted) == 3  # the teacher, then a+b (same alpha) and c
    files = sorted(p.name for p in (tmp_path / "checkpoints" / "final").iterdir())
    assert len(files) == 3 and files[-1].startswith(f"teacher-{TEACHER}-")
    assert all(f.startswith(f"{STUDENT}-") for f in files[:2])
    assert cards["a"]["weights"] == cards["b"]["weights"] != cards["c"]["weights"]
    for name, ratio in (("a", 5 / 5), ("c", 5 / 20)):  # 5 ops: student 5 ms, teacher 5 / 20
        kd = cards[name]["kd"]
        assert kd["alpha"] == pytest.approx(0.5 * max(1.0, 2 - ratio))
        assert kd["alpha"] == kd_alpha("latency", 0.5, kd["student_predicted_ms"],
                                       kd["teacher_predicted_ms"])
        assert kd["student_predicted_ms"] == pytest.approx(5.0)
        assert (kd["mode"], kd["T"], kd["beta"], kd["gamma"], kd["teacher_arch"]) == \
            ("latency", 4.0, 0.1, 20.0, TEACHER)
        assert kd["teacher_worse_than_student"] == (kd["teacher_test_miou"]
                                                    < cards[name]["test_miou"])
        assert "distillation (latency)" in (tmp_path / "deploy" / name / "card.md").read_text()
    assert run.results["final_teacher"]["arch"] == TEACHER
    miou = run.results["final_teacher"]["test_miou"]
    assert any(f"test mIoU {miou:.3f}" in m for m in run.rep.infos)  # type: ignore[attr-defined]

    rerun, ctx = make_run(tmp_path, tiny_net, tiny_splits, KD)
    again = final.run_final(rerun, ctx, selections())
    assert len(counted) == 3  # nothing trained again: teacher and students reused
    assert again["c"]["kd"] == cards["c"]["kd"] and again["c"]["test_miou"] == \
        cards["c"]["test_miou"]


def test_kd_none_trains_each_arch_once_without_a_teacher(tmp_path, tiny_net, tiny_splits,
                                                         counted) -> None:
    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, replace(KD, kd="none"))
    cards = final.run_final(run, ctx, selections())
    assert len(counted) == 1 and "final_teacher" not in run.results
    assert cards["c"]["kd"]["mode"] == "none" and cards["c"]["kd"]["alpha"] == 0.0
    assert "CE only" in render_card(cards["c"])
    names = [p.name for p in (tmp_path / "checkpoints" / "final").iterdir()]
    assert names == [Path(cards["a"]["weights"]).name] and names[0] != f"{STUDENT}.safetensors"


def test_teacher_epochs_zero_uses_the_teacher_as_extracted(tmp_path, tiny_net, tiny_splits,
                                                           counted) -> None:
    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, replace(KD, teacher_epochs=0))
    teacher = final.build_teacher(run, ctx)
    assert counted == [] and not (tmp_path / "checkpoints").exists()
    extracted = tiny_net.extract(Arch.parse(TEACHER)).state_dict()
    assert all(torch.equal(v, extracted[k]) for k, v in teacher.model.state_dict().items())
    assert not teacher.model.training
    assert not any(p.requires_grad for p in teacher.model.parameters())  # frozen
    assert run.results["final_teacher"]["epochs"] == 0
    assert final.teacher_arch(FinalTrainConfig()) == final.LARGEST
    assert str(final.LARGEST) == "-".join(["Conv7x7_w100"] * 5)


def test_weights_names_follow_every_setting_they_depend_on(tmp_path, tiny_net,
                                                           tiny_splits) -> None:
    run, _ = make_run(tmp_path, tiny_net, tiny_splits, KD)
    teacher = final.Teacher(Arch.parse(TEACHER), tiny_net.extract(STUDENT), 0.5, "t1")

    def name(cfg: FinalTrainConfig, alpha: float = 0.75, t=teacher) -> str:
        return final.weights_path(run, STUDENT, cfg, alpha, t).name

    base = name(KD)
    assert base.startswith(f"{STUDENT}-") and base.endswith(".safetensors")
    assert name(KD) == base  # deterministic
    for changed in (replace(KD, epochs=2), replace(KD, lr=2e-3), replace(KD, seed=1),
                    replace(KD, batch_size=8), replace(KD, kd="constant"), replace(KD, T=2.0),
                    replace(KD, beta=0.0), replace(KD, gamma=0.0), replace(KD, base_alpha=0.4),
                    replace(KD, teacher_epochs=0), replace(KD, teacher=None)):
        assert name(changed) != base, changed
    assert name(KD, alpha=0.8) != base
    assert name(KD, t=replace(teacher, key="t2")) != base
    ce = replace(KD, kd="none")
    assert name(ce, 0.0, None) != name(replace(ce, epochs=2), 0.0, None)
    # the KD-only options do not shape CE-only weights: changing them retrains nothing
    assert name(ce, 0.0, None) == name(replace(ce, T=2.0, gamma=0.0, teacher=None), 0.0, None)


def test_linas_train_after_a_final_change_trains_again(tmp_path, tiny_net, tiny_splits,
                                                       counted) -> None:
    cfg = replace(KD, kd="none")
    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, cfg)
    _, _, first = final.train_arch(run, ctx, STUDENT)
    _, _, same = final.train_arch(run, ctx, STUDENT)
    assert first == same and len(counted) == 1  # reused
    run.cfg = replace(run.cfg, final=replace(cfg, lr=3e-3))  # what `reopen` allows
    _, _, other = final.train_arch(run, ctx, STUDENT)
    assert other != first and len(counted) == 2 and first.is_file() and other.is_file()


def test_a_teacher_worse_than_its_student_is_flagged_and_warned(tmp_path, tiny_net,
                                                                tiny_splits) -> None:
    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, KD)
    teacher = final.Teacher(Arch.parse(TEACHER), tiny_net.extract(STUDENT), 0.25, "t")
    plan = final.Plan(str(STUDENT), 0.6, 2.0, 8.0)
    block = final.kd_block(run, run.cfg.device("a"), plan, teacher, {"miou": 0.5})
    assert block["teacher_worse_than_student"] is True
    warns = run.rep.warnings  # type: ignore[attr-defined]
    assert len(warns) == 1 and "tests worse (mIoU 0.250)" in warns[0]
    assert "final.kd=none" in warns[0]
    better = final.kd_block(run, run.cfg.device("a"), plan, replace(teacher, test_miou=0.9),
                            {"miou": 0.5})
    assert better["teacher_worse_than_student"] is False and len(warns) == 1
    card = {"device": "a", "arch": str(STUDENT), "input_size": [32, 32], "budget_ms": 160.0,
            "meets_budget": True, "verdict_basis": "x", "predicted_latency_ms": 2.0,
            "predicted_p95_ms": 2.1, "measured_latency_ms": None, "test_miou": 0.5,
            "per_class_iou": {"bg": 0.5}, "pixel_accuracy": 0.9, "onnx": "m.onnx",
            "onnx_max_abs_diff": 0.0, "lut_sha256": "l", "config_sha256": "c", "kd": block}
    text = render_card(card)
    assert "alpha 0.600" in text and "teacher tests worse than the student" in text
    assert "predicted 8.000 ms vs the student's 2.000 ms" in text


def test_a_latency_model_predicting_zero_fails_before_any_training(tmp_path, tiny_net,
                                                                   tiny_splits,
                                                                   counted) -> None:
    class Broken:
        def predict(self, choices):
            return np.zeros(len(choices))

    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, KD)
    ctx.__dict__["models"] = {**ctx.models, "b": Broken()}  # the cached property's slot
    with pytest.raises(LUTError, match="device b: student latency 0.0 ms: must be a positive"):
        final.run_final(run, ctx, selections())
    assert counted == []


def test_the_report_lists_distilled_devices(tmp_path, tiny_net, tiny_splits, counted) -> None:
    from linas.run.report import render_markdown

    run, ctx = make_run(tmp_path, tiny_net, tiny_splits, KD)
    cards = final.run_final(run, ctx, selections())
    text = render_markdown({}, cards, [])
    assert "## Distillation (I5)" in text and f"| c | latency | {cards['c']['kd']['alpha']:.3f}" \
        in text
    plain = {n: {**c, "kd": {"mode": "none"}} for n, c in cards.items()}
    assert "Distillation" not in render_markdown({}, plain, [])

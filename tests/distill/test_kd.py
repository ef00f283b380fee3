"""The KD loss terms (I5) against values worked out by hand on 2 classes x 1x2 pixels, the
ignore index, the latency rule for alpha, and the ``final`` config's KD options."""

from __future__ import annotations

import math

import pytest
import torch

from linas._errors import ConfigError
from linas.config import load_config
from linas.distill import (
    FeatureAdapters,
    FinalTrainConfig,
    aicsd,
    feature_kd,
    kd_alpha,
    kd_total,
    logit_kd,
)

E = math.e


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def softmax2(a: float, b: float) -> list[float]:
    return [math.exp(a) / (math.exp(a) + math.exp(b)), math.exp(b) / (math.exp(a) + math.exp(b))]


def logits(*pixels: tuple[float, float]) -> torch.Tensor:
    """(1, 2, 1, P): one image, 2 classes, 1 x P pixels, each pixel's (class 0, class 1)."""
    return torch.tensor(pixels).T.reshape(1, 2, 1, len(pixels))  # (P, 2) -> (1, 2, 1, P)


# student pixel 0 (0, 0), pixel 1 (1, 0); teacher pixel 0 (2, 0), pixel 1 (0, 0); T = 2
STUDENT, TEACHER = logits((0.0, 0.0), (1.0, 0.0)), logits((2.0, 0.0), (0.0, 0.0))


def test_logits_helper_lays_out_classes_and_pixels() -> None:
    assert STUDENT.shape == (1, 2, 1, 2)
    assert STUDENT[0, :, 0, 1].tolist() == [1.0, 0.0]


def test_logit_kd_is_hinton_kl_times_t_squared_over_labelled_pixels() -> None:
    # pixel 0: p_t = softmax(1, 0) = (e, 1)/(e+1), p_s = (1/2, 1/2)
    px0 = E / (E + 1) * math.log(2 * E / (E + 1)) + 1 / (E + 1) * math.log(2 / (E + 1))
    # pixel 1: p_t = (1/2, 1/2), p_s = softmax(1/2, 0)
    e_h = math.exp(0.5)
    px1 = 0.5 * math.log(0.5 * (e_h + 1) / e_h) + 0.5 * math.log(0.5 * (e_h + 1))
    assert px0 == pytest.approx(0.110944, abs=1e-5)  # worked out on paper
    masks = torch.tensor([[[0, 1]]])
    got = logit_kd(STUDENT, TEACHER, masks, temperature=2.0)
    assert float(got) == pytest.approx(4 * (px0 + px1) / 2, rel=1e-6)
    ignored = logit_kd(STUDENT, TEACHER, torch.tensor([[[1, 255]]]), 2.0, ignore_index=255)
    assert float(ignored) == pytest.approx(4 * px0, rel=1e-6)


def test_logit_kd_with_every_pixel_ignored_is_a_zero_with_a_graph() -> None:
    s = STUDENT.clone().requires_grad_(True)
    out = logit_kd(s, TEACHER, torch.full((1, 1, 2), 255), 2.0)
    assert float(out.detach()) == 0.0
    out.backward()
    assert s.grad is not None and float(s.grad.abs().sum()) == 0.0


def test_logit_kd_sends_no_gradient_to_the_teacher() -> None:
    t = TEACHER.clone().requires_grad_(True)
    s = STUDENT.clone().requires_grad_(True)
    logit_kd(s, t, torch.tensor([[[0, 1]]]), 2.0).backward()
    assert t.grad is None and s.grad is not None


def test_feature_kd_is_the_mean_over_layers_of_the_mse() -> None:
    student = [torch.tensor([[[[1.0, 2.0]]]]), torch.tensor([[[[3.0]]]])]  # (1, 1, 1, 2), (1,1,1,1)
    teacher = [torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 1)]
    # layer 0: (1 + 4) / 2 = 2.5; layer 1: (3 - 1)^2 = 4; mean 3.25
    assert float(feature_kd(student, teacher)) == pytest.approx(3.25)
    adapters = FeatureAdapters([1, 1])  # identity 1x1 convs
    with torch.no_grad():
        assert float(feature_kd(adapters(student), teacher)) == pytest.approx(3.25)
        adapters.convs[1].weight.fill_(2.0)  # layer 1 maps 3 -> 6: (6 - 1)^2 = 25
        assert float(feature_kd(adapters(student), teacher)) == pytest.approx((2.5 + 25) / 2)
    with pytest.raises(ValueError, match="layer 1"):
        feature_kd(student, [teacher[0], torch.ones(1, 1, 2, 2)])


def test_adapters_default_to_the_decoder_widths_and_the_identity() -> None:
    adapters = FeatureAdapters()
    assert [c.in_channels for c in adapters.convs] == [512, 256, 128, 64, 32]
    x = torch.randn(2, 32, 3, 3)
    assert torch.equal(adapters.convs[4](x), x)


def test_aicsd_by_hand() -> None:
    # student class maps (1, 0) and (0, 1): orthogonal, S_s = I; teacher (1, 1) and (1, 1):
    # S_t = all ones. T = 1: teacher rows uniform, student rows softmax(1, 0), softmax(0, 1)
    s, t = logits((1.0, 0.0), (0.0, 1.0)), logits((1.0, 1.0), (1.0, 1.0))
    row = kl([0.5, 0.5], softmax2(1.0, 0.0))
    assert row == pytest.approx(0.120114, abs=1e-5)  # worked out on paper
    masks = torch.tensor([[[0, 1]]])
    assert float(aicsd(s, t, masks, temperature=1.0)) == pytest.approx(row, rel=1e-6)
    # T = 2 divides the similarities: student rows softmax(1/2, 0)
    assert float(aicsd(s, t, masks, 2.0)) == pytest.approx(kl([0.5, 0.5], softmax2(0.5, 0.0)),
                                                           rel=1e-6)


def test_aicsd_leaves_out_ignored_pixels_and_unlabelled_images() -> None:
    s, t = logits((1.0, 0.0), (0.0, 1.0)), logits((1.0, 1.0), (1.0, 1.0))
    # pixel 1 ignored: student maps (1) and (0) -> S_s = [[1, 0], [0, 0]] (a zero map stays 0);
    # S_t = ones. Row 0: KL(uniform || softmax(1, 0)); row 1: KL(uniform || uniform) = 0.
    want = kl([0.5, 0.5], softmax2(1.0, 0.0)) / 2
    one = aicsd(s, t, torch.tensor([[[0, 255]]]), 1.0)
    assert float(one) == pytest.approx(want, rel=1e-6)
    # a second image with no labelled pixel is left out of the mean over images
    two = aicsd(torch.cat([s, s * 3]), torch.cat([t, -t]),
                torch.tensor([[[0, 255]], [[255, 255]]]), 1.0)
    assert float(two) == pytest.approx(want, rel=1e-6)
    none = aicsd(s, t, torch.full((1, 1, 2), 255), 1.0)
    assert float(none) == 0.0


def test_kd_total_weights_the_terms() -> None:
    one = torch.tensor(1.0)
    got = kd_total(one, one * 2, one * 3, one * 4, alpha=0.5, beta=0.25, gamma=2.0)
    assert float(got) == 1 + 1 + 0.75 + 8


@pytest.mark.parametrize(("mode", "student", "teacher", "want"), [
    ("none", 1.0, 4.0, 0.0),
    ("constant", 1.0, 4.0, 0.5),
    ("constant", 9.0, 4.0, 0.5),
    ("latency", 1.0, 4.0, 0.5 * 1.75),  # 2 - 1/4
    ("latency", 3.0, 4.0, 0.5 * 1.25),
    ("latency", 4.0, 4.0, 0.5),  # as slow as the teacher: base_alpha
    ("latency", 8.0, 4.0, 0.5),  # 2 - 2 = 0: clipped up to base_alpha
    ("latency", 1e-9, 4.0, 1.0 - 0.5 * 1e-9 / 4.0),  # near 2 * base_alpha, never above
])
def test_kd_alpha(mode, student, teacher, want) -> None:
    assert kd_alpha(mode, 0.5, student, teacher) == pytest.approx(want, rel=1e-12)
    assert 0.0 <= kd_alpha(mode, 0.5, student, teacher) <= 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_kd_alpha_refuses_latencies_that_are_not_positive_finite(bad) -> None:
    with pytest.raises(ValueError, match="student latency"):
        kd_alpha("latency", 0.5, bad, 1.0)
    with pytest.raises(ValueError, match="teacher latency"):
        kd_alpha("constant", 0.5, 1.0, bad)
    with pytest.raises(ValueError, match="teacher latency"):
        kd_alpha("none", 0.5, 1.0, bad)


def test_kd_alpha_refuses_an_unknown_mode_and_a_negative_base() -> None:
    with pytest.raises(ValueError, match="use one of none, constant, latency"):
        kd_alpha("fast", 0.5, 1.0, 2.0)
    with pytest.raises(ValueError, match="base_alpha"):
        kd_alpha("latency", -0.5, 1.0, 2.0)


# ---- config ------------------------------------------------------------------------------

def test_kd_keys_load_from_set_and_default_to_ce_only() -> None:
    assert FinalTrainConfig().kd == "none" and load_config(None).final.kd == "none"
    arch = "Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50"
    cfg = load_config(None, ["final.kd=latency", "final.T=2", f"final.teacher={arch}",
                             "final.teacher_epochs=0", "final.gamma=0"]).final
    assert (cfg.kd, cfg.T, cfg.teacher, cfg.teacher_epochs, cfg.gamma) == \
        ("latency", 2.0, arch, 0, 0.0)


@pytest.mark.parametrize(("setting", "needles"), [
    ("final.kd=latancy", ("final.kd = 'latancy'", "did you mean 'latency'",
                          "use one of none, constant, latency")),
    ("final.teacher=Conv7x7_w100", ("final.teacher = 'Conv7x7_w100'", "1 parts")),
    ("final.teacher=Conv7x7_w100-Conv7x7_w100-Conv7x7_w100-Conv7x7_w100-Conv9x9_w100",
     ("final.teacher", "Conv9x9")),
    ("final.T=0", ("final.T = 0.0", "> 0")),
    ("final.beta=-1", ("final.beta = -1.0", ">= 0")),
    ("final.base_alpha=-0.1", ("final.base_alpha = -0.1",)),
    ("final.teacher_epochs=-1", ("final.teacher_epochs = -1", ">= 0")),
    ("final.kd=3", ("final.kd = '3'",)),
])
def test_bad_kd_values_are_one_line_config_errors(setting, needles) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [setting])
    msg = str(err.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg

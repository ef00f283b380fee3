"""The C3 throughput check: timed on ``measure.throughput_images`` images, stated per 100."""

from __future__ import annotations

import types

import pytest
import torch
from torch import nn

import linas.run.throughput as throughput
from linas.config import MeasureConfig


class FakeClock:
    """A clock that a model advances by ``per_image`` seconds for every image it segments."""

    def __init__(self, per_image: float) -> None:
        self.now, self.per_image, self.images = 0.0, per_image, 0

    def perf_counter(self) -> float:
        return self.now


class Timed(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.clock.per_image * x.shape[0]
        self.clock.images += x.shape[0]
        return torch.zeros(x.shape[0], 2, *x.shape[2:])


@pytest.mark.parametrize(("timed", "per_image", "meets"), [(100, 0.1, True), (16, 0.1, True),
                                                            (16, 0.2, False)])
def test_throughput_is_stated_per_100_images(monkeypatch, timed, per_image, meets):
    clock = FakeClock(per_image)
    monkeypatch.setattr(throughput, "time", types.SimpleNamespace(perf_counter=clock.perf_counter))
    m = MeasureConfig(throughput_batches=(1, 8), throughput_images=timed)
    out = throughput.batched_throughput(Timed(clock), (8, 8), m)  # type: ignore[arg-type]
    assert clock.images == 1 + timed + 8 + timed  # one warm-up batch, then `timed` per size
    assert out["images"] == 100 and out["images_timed"] == timed
    assert out["seconds_by_batch"] == {"1": pytest.approx(100 * per_image),
                                       "8": pytest.approx(100 * per_image)}
    assert out["meets_c3_batched"] is meets  # 100 images within 16 s
    assert out["batch1_images_per_16s"] == pytest.approx(16 / per_image)

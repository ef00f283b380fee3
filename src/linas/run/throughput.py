"""Timing a deployed model on this machine in its device's runtime: per-image latency
(batch 1) and the C3 throughput check (100 images at batch 1 and the best of the device's other
``measure.throughput_batches``, pre- and post-processing included; timed on
``measure.throughput_images`` images and stated per 100)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas.config import MeasureConfig
from linas.data import IMAGENET_MEAN, IMAGENET_STD
from linas.latency import get_runtime
from linas.latency.measure import num_threads, time_runners
from linas.supernet import SegmentationModel

C3_IMAGES, C3_SECONDS = 100, 16.0


def time_deployed(model: SegmentationModel, onnx_path: Path, size: tuple[int, int],
                  m: MeasureConfig) -> dict[str, Any]:
    """Per-image latency (batch 1) of the model in ``m.runtime``: torch times the module,
    ONNX runtimes time the exported file itself."""
    rt = get_runtime(m.runtime, m.device, m.threads)
    x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0))
    if m.runtime == "torch":
        runner = rt.prepare(model, x)
    else:
        runner = rt.prepare_onnx(Path(onnx_path).read_bytes(), x)  # type: ignore[attr-defined]
    with rt.scope():
        stats = time_runners([runner], m.e2e_warmup, m.e2e_repeat)[0]
    return {"runtime": m.runtime, "device": m.device, "threads": rt.threads_used(),
            "mean_ms": stats.mean_ms, "std_ms": stats.std_ms, "p95_ms": stats.p95_ms,
            "count": stats.count}


@torch.no_grad()
def batched_throughput(model: SegmentationModel, size: tuple[int, int],
                       m: MeasureConfig) -> dict[str, Any]:
    """Seconds for 100 images at each of ``m.throughput_batches`` in torch eager, from uint8
    HWC images to uint8 class masks (normalisation, forward, argmax): the C3 check with
    batching (the best batch is batch 1 when no other size is timed). ``m.throughput_images``
    are timed; fewer than 100 are scaled to 100 (``images_timed`` says so)."""
    n = m.throughput_images
    gen = np.random.default_rng(0)
    images = gen.integers(0, 256, size=(n, *size, 3), dtype=np.uint8)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model.eval()

    def process(batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, H, W)
        return model((x - mean) / std).argmax(dim=1).to(torch.uint8).numpy()  # (B, H, W)

    seconds: dict[str, float] = {}
    with num_threads(m.threads):
        for b in sorted(m.throughput_batches):
            process(images[:b])  # warm-up at this batch size
            start = time.perf_counter()
            for i in range(0, n, b):
                process(images[i:i + b])
            seconds[str(b)] = round((time.perf_counter() - start) * C3_IMAGES / n, 4)
    others = [b for b in m.throughput_batches if b > 1]
    best = min(others, key=lambda b: seconds[str(b)]) if others else 1
    return {"images": C3_IMAGES, "images_timed": n, "seconds_by_batch": seconds,
            "batch1_images_per_16s": C3_IMAGES * C3_SECONDS / seconds["1"],
            "best_batch": best, "best_images_per_16s": C3_IMAGES * C3_SECONDS / seconds[str(best)],
            "meets_c3_batched": bool(min(seconds.values()) <= C3_SECONDS),
            "includes": "uint8 -> normalised tensor, forward, argmax -> uint8 mask"}

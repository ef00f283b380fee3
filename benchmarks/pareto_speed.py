"""Speed of the Pareto machinery: exhaustive LUT latency, a 1M-point front, NEAR on 10k archs.

Writes JSON with ``exhaustive_latency_s`` (all 4,084,101 architectures, one device),
``front_1m_s`` (2-D front of 1,000,000 random points) and ``proxy_10k_s`` (NEAR on 10,000
seeded random architectures at 128x128: seeded decoder built + scored on cached encoder
features), each the median of ``--repeats`` runs, plus the settings used.

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/pareto_speed.py --out speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from linas.latency import LUTLatencyModel, load_lut
from linas.pareto import pareto_front
from linas.pareto.proxies import ProxyContext, ProxyDecoder, get_proxy
from linas.pareto.sampling import sample_random
from linas.supernet import DenseNetEncoder

REFERENCE_LUT = Path(__file__).resolve().parents[2] / "shared/reference-luts/raspberrypi5.json"


def median_time(fn: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``fn`` (after one untimed warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_exhaustive(lut_path: Path, repeats: int) -> dict[str, object]:
    model = LUTLatencyModel(load_lut(lut_path))
    med, times = median_time(model.exhaustive, repeats)
    lat = model.exhaustive()
    return {"exhaustive_latency_s": med, "exhaustive_runs_s": times, "lut": str(lut_path),
            "architectures": int(lat.shape[0])}


def bench_front(repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    lat, acc = rng.random(1_000_000), rng.random(1_000_000)
    med, times = median_time(lambda: pareto_front(lat, acc), repeats)
    return {"front_1m_s": med, "front_runs_s": times}


def bench_proxy(n: int, size: int, batch: int, repeats: int) -> dict[str, object]:
    torch.manual_seed(0)
    encoder = DenseNetEncoder().eval()  # random weights: speed does not depend on them
    with torch.inference_mode():
        feats = [f.clone() for f in encoder(torch.randn(batch, 3, size, size))]
    masks = torch.zeros(batch, size, size, dtype=torch.long)
    choices = sample_random(n, seed=0)

    def run() -> np.ndarray:  # a fresh seeded decoder each time: its init is part of the cost
        ctx = ProxyContext(ProxyDecoder.seeded(3, seed=0), feats, masks, num_classes=3)
        return get_proxy("near").score(choices, ctx)

    med, times = median_time(run, repeats)
    return {"proxy_10k_s": med, "proxy_runs_s": times, "proxy": "near",
            "proxy_architectures": n, "proxy_input_size": [size, size],
            "proxy_batch_images": batch, "proxy_ms_per_arch": 1000 * med / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lut", type=Path, default=REFERENCE_LUT)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--proxy-repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out: dict[str, object] = {"threads": torch.get_num_threads(), "torch": torch.__version__,
                              "machine": platform.processor() or platform.machine()}
    out.update(bench_exhaustive(args.lut, args.repeats))
    out.update(bench_front(args.repeats))
    out.update(bench_proxy(args.n, args.size, args.batch, args.proxy_repeats))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("runs_s")}, indent=2))


if __name__ == "__main__":
    main()

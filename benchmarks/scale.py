"""Scale: per-step time and peak RSS of a soft and a single-path weight step at 128x128 and
480x640 (global batch 8), one process against two torchrun (gloo) processes on this CPU, and
the frozen-encoder feature cache in RAM against memory-mapped on disk.

Every case runs in its own process(es), so each peak RSS is that case's alone:

    .venv/bin/python benchmarks/scale.py --out benchmarks/results/scale.json
    .venv/bin/python benchmarks/scale.py --device cuda --precisions fp32,bf16   # on a GPU

A step's time is the median over ``--steps`` timed steps after one untimed warm-up step.
Peak RSS is ``ru_maxrss`` of each process (the largest rank's under torchrun).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve()


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB on Linux


def step_worker(size: tuple[int, int], mode: str, batch: int, steps: int, device: str,
                precision: str) -> dict[str, Any]:
    """Time ``steps`` weight steps (``soft``: every candidate mixed; ``single``: one sampled
    path) of the real supernet on random features; this rank's share of the global batch."""
    from linas.compute import resolve_compute
    from linas.data import FeatureSet
    from linas.latency import LUT, LUTLatencyModel
    from linas.search import BilevelSearch, DeviceTarget, SearchConfig
    from linas.supernet import Supernet
    from linas.supernet.encoder import TAPS

    compute = resolve_compute(device, precision)
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    net.to(compute.device)
    local = batch // compute.world
    gen = torch.Generator().manual_seed(compute.rank)
    h, w = size
    feats = [torch.randn(local, c, h // s, w // s, generator=gen) for _, c, s in TAPS]
    masks = torch.randint(0, 3, (local, h, w), generator=gen)
    data = FeatureSet(masks=masks, feats=feats)
    mean = np.random.default_rng(0).uniform(1, 5, (5, 21))
    dev = DeviceTarget("toy", LUTLatencyModel(LUT(hardware="toy", input_size=size,
                                                  mean_ms=mean, std_ms=mean * 0.01)), 10.0)
    search = BilevelSearch(net, [dev], SearchConfig(batch_size=batch), compute=compute)
    net.train()
    times = []
    idx = torch.arange(local)
    for i in range(steps + 1):
        f, m = data.batch(idx)
        f, m = compute.to(f), m.to(compute.device)
        if compute.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        search._weight_step(f, m, 1.0 / compute.world, warm=mode == "single", tau=1.0,
                            hard=False)
        if compute.device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - start)
    out = {"step_s": statistics.median(times), "peak_rss_gib": peak_rss_gib()}
    if compute.device.type == "cuda":
        out["peak_cuda_gib"] = torch.cuda.max_memory_allocated() / 1024**3
    if compute.distributed:
        import torch.distributed as dist

        every: list[Any] = [None] * compute.world
        dist.all_gather_object(every, out)
        out = {"step_s": max(o["step_s"] for o in every),
               "peak_rss_gib": max(o["peak_rss_gib"] for o in every),
               "sum_rss_gib": sum(o["peak_rss_gib"] for o in every)}
    return out


def cache_worker(size: tuple[int, int], n_images: int, where: str, dtype: str) -> dict[str, Any]:
    """Cache the frozen encoder's features of ``n_images`` random images, then read every
    batch once: time and peak RSS."""
    from linas.compute import shard_batches
    from linas.data import cache_features
    from linas.supernet import Supernet

    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    images = torch.randn(n_images, 3, *size)
    masks = torch.zeros(n_images, *size, dtype=torch.long)
    base = peak_rss_gib()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fs = cache_features(net.encoder, images, masks, batch_size=8,
                            path_prefix=Path(tmp) / "train" if where == "disk" else None,
                            dtype=torch.float16 if dtype == "float16" else torch.float32)
        cache_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in shard_batches(fs, 8, None):
            pass
        read_s = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in Path(tmp).glob("*.npy"))
    return {"cache_s": cache_s, "read_all_s": read_s, "peak_rss_gib": peak_rss_gib(),
            "rss_before_gib": base, "disk_gib": disk / 1024**3}


def spawn(args: list[str], processes: int, threads: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = str(threads)
    if processes == 1:
        cmd = [sys.executable, str(HERE), "--worker", *args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_port", "29611", str(HERE), "--worker", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:300] if proc.stderr else
                f"exit {proc.returncode}"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    parser.add_argument("--sizes", default="128x128,480x640")
    parser.add_argument("--modes", default="single,soft")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precisions", default="fp32")
    parser.add_argument("--processes", default="1,2", help="process counts to compare")
    parser.add_argument("--cache-images", type=int, default=32)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="step", help=argparse.SUPPRESS)
    parser.add_argument("--size", default="128x128", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="single", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    parser.add_argument("--where", default="ram", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        size = tuple(int(v) for v in args.size.split("x"))
        if args.kind == "cache":
            res = cache_worker(size, args.cache_images, args.where, args.dtype)  # type: ignore[arg-type]
        else:
            res = step_worker(size, args.mode, args.batch, args.steps, args.device,  # type: ignore[arg-type]
                              args.precision)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps(res), flush=True)
        return
    cores = os.cpu_count() or 1
    result: dict[str, Any] = {"batch": args.batch, "steps_timed": args.steps,
                              "device": args.device, "cpu_cores": cores,
                              "torch": torch.__version__, "steps": [], "cache": []}
    for size in args.sizes.split(","):
        for mode in args.modes.split(","):
            for precision in args.precisions.split(","):
                h, w = (int(v) for v in size.split("x"))
                # a soft step keeps all 21 candidates' activations of every layer: above
                # 128x128 only one image in one process fits this machine's 24 GB
                large_soft = mode == "soft" and h * w > 4 * 128 * 128 and args.device == "cpu"
                batch = 1 if large_soft else args.batch
                for n in (int(p) for p in args.processes.split(",")):
                    if (args.device != "cpu" or large_soft) and n > 1:
                        continue  # one GPU here / one image cannot be split among ranks
                    threads = max(cores // n, 1)  # the same cores in all, split among ranks
                    row = {"size": size, "mode": mode, "precision": precision, "batch": batch,
                           "processes": n, "threads_per_process": threads,
                           **spawn(["--size", size, "--mode", mode, "--batch",
                                    str(batch), "--steps", str(args.steps), "--device",
                                    args.device, "--precision", precision], n, threads)}
                    print(json.dumps(row), flush=True)
                    result["steps"].append(row)
    if args.device == "cpu":
        for size in args.sizes.split(","):
            for where, dtype in (("ram", "float32"), ("disk", "float32"), ("disk", "float16")):
                row = {"size": size, "images": args.cache_images, "where": where,
                       "dtype": dtype, **spawn(["--kind", "cache", "--size", size, "--where",
                                                where, "--dtype", dtype, "--cache-images",
                                                str(args.cache_images)], 1, cores)}
                print(json.dumps(row), flush=True)
                result["cache"].append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

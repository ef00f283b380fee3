"""A 480x640 search on 200 images on this CPU, frozen encoder, features cached on disk:
wall time per stage and the peak RSS of the `linas search` process.

The data is the tests' folder dataset (JPEG images, PNG masks, three classes, rendered by
linas.data.synth.render_sample) generated at 480x640; the one device is a LUT file at that
size. The schedule is cut to one warm-up and one hard search epoch (stated in the JSON):

    .venv/bin/python benchmarks/scale_search.py --out benchmarks/results/scale_search.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from linas.data.synth import render_sample
from linas.latency import LUT, save_lut
from linas.space import NUM_CHOICES, NUM_LAYERS

SETTINGS = ["search.warmup_epochs=1", "search.search_epochs=1", "search.soft_epochs=0",
            "search.batch_size=8", "compute.feature_cache=disk"]  # later --set win


def make_dataset(root: Path, n: int, size: tuple[int, int]) -> Path:
    if (root / "dataset.json").is_file():
        return root
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for i in range(n):
        image, mask = render_sample(np.random.default_rng([11, i]), size)
        Image.fromarray(image).save(root / "images" / f"img_{i:03d}.jpg", quality=95)
        Image.fromarray(mask).save(root / "masks" / f"img_{i:03d}.png")
    (root / "dataset.json").write_text(json.dumps(
        {"classes": ["background", "sealer", "defect"], "ignore_index": 255}) + "\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_search.json"))
    parser.add_argument("--work", type=Path, default=Path("runs/scale_search"))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", default="480x640")
    parser.add_argument("--set", dest="extra", action="append", default=[],
                        help="further --set section.key=value for the search (repeatable)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    data = make_dataset(args.work / "data", args.images, size)  # type: ignore[arg-type]
    mean = np.random.default_rng(0).uniform(5, 50, (NUM_LAYERS, NUM_CHOICES))
    lut = save_lut(LUT(hardware="edge", input_size=size, mean_ms=mean,  # type: ignore[arg-type]
                       std_ms=mean * 0.02), args.work / "edge.json")
    cfg = {"seed": 0, "encoder": {"weights": "random"},
           "data": {"kind": "folder", "root": str(data.resolve()), "size": list(size)},
           "devices": [{"name": "edge", "lut": str(lut.resolve()), "budget_ms": 160.0}]}
    cfg_path = args.work / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "linas", "search", "--config", str(cfg_path), "--out",
           str(args.work / "run"), "--restart", "--quiet"]
    settings = [*SETTINGS, *args.extra]
    for item in settings:
        cmd += ["--set", item]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-2000:])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    res = json.loads((args.work / "run" / "results.json").read_text())
    out = {"images": args.images, "size": list(size), "settings": settings,
           "wall_s": round(wall, 1), "peak_rss_gib": round(peak, 2),
           "timings_s": res["timings_s"], "feature_cache": res.get("feature_cache"),
           "splits": res["dataset"]["splits"],
           "checkpoint_bytes": (args.work / "run" / "checkpoints" / "search.pt").stat().st_size,
           "history": res["search"]["history"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "history"}))


if __name__ == "__main__":
    main()

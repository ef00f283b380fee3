"""Wall time of one bi-level search epoch per phase (warm-up single path, soft, hard) on a
fixed tiny setting: 48 train / 16 arch-val images at 128x128, batch 16, one toy device.

Written to compare two versions of the code on one machine, back to back (the machine's speed
wanders, so only ratios from one session mean anything):

    git worktree add ../old 61b6497
    PYTHONPATH=../old/src .venv/bin/python benchmarks/search_epoch_time.py --label old
    .venv/bin/python benchmarks/search_epoch_time.py --label new --out epoch_new.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from linas.latency import LUT, LUTLatencyModel
from linas.search import BilevelSearch, DeviceTarget, SearchConfig
from linas.supernet import Supernet

try:  # the feature cache moved to linas.data in the run-layer redesign
    from linas.data import FeatureSet, cache_features
except ImportError:  # older trees
    from linas.search import FeatureSet, cache_features  # type: ignore[attr-defined,no-redef]

PHASES = {"warmup": {"warmup_epochs": 1, "search_epochs": 0},
          "soft": {"warmup_epochs": 0, "search_epochs": 1, "soft_epochs": 1},
          "hard": {"warmup_epochs": 0, "search_epochs": 1, "soft_epochs": 0}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(64, 3, 128, 128, generator=gen)
    masks = torch.randint(0, 3, (64, 128, 128), generator=gen)
    feats = cache_features(net.encoder, images, masks)
    train = FeatureSet(masks=feats.masks[:48], feats=[f[:48] for f in feats.feats])
    val = FeatureSet(masks=feats.masks[48:], feats=[f[48:] for f in feats.feats])
    mean = np.random.default_rng(0).uniform(1, 5, (5, 21))
    device = DeviceTarget("toy", LUTLatencyModel(LUT(hardware="toy", input_size=(128, 128),
                                                     mean_ms=mean, std_ms=mean * 0.01)), 10.0)
    result: dict[str, object] = {"label": args.label}
    for phase, epochs in PHASES.items():
        search = BilevelSearch(net, [device], SearchConfig(batch_size=16, **epochs))
        start = time.perf_counter()
        search.run(train, val)
        result[f"{phase}_s"] = round(time.perf_counter() - start, 2)
        print(args.label, phase, result[f"{phase}_s"], flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

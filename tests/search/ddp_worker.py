"""A tiny bi-level search, run by tests/search/test_distributed.py once as one process and
once under ``torchrun --nproc_per_node=2`` (gloo): rank 0 writes the architecture logits,
the epoch history and a weight-sharing mIoU over the whole arch-val split to ``argv[1]``."""

from __future__ import annotations

import json
import sys

import numpy as np
import torch

from linas.compute import resolve_compute
from linas.data import FeatureSet, cache_features
from linas.latency import LUT, LUTLatencyModel
from linas.search import BilevelSearch, DeviceTarget, SearchConfig, evaluate_choices
from linas.supernet import Supernet


def main() -> None:
    compute = resolve_compute("cpu", "fp32")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(14, 3, 32, 32, generator=gen)
    masks = torch.randint(0, 3, (14, 32, 32), generator=gen)
    feats = cache_features(net.encoder, images, masks)
    assert feats.feats is not None
    train = FeatureSet(masks=masks[:9], feats=[f[:9] for f in feats.feats])
    val = FeatureSet(masks=masks[9:], feats=[f[9:] for f in feats.feats])
    mean = np.random.default_rng(0).uniform(1, 5, (5, 21))
    device = DeviceTarget("toy", LUTLatencyModel(LUT(hardware="toy", input_size=(32, 32),
                                                     mean_ms=mean, std_ms=mean * 0.01)), 10.0)
    cfg = SearchConfig(batch_size=4, warmup_epochs=1, search_epochs=2, soft_epochs=1, seed=3)
    if len(sys.argv) > 2 and sys.argv[2] == "frozen-bn":  # batch statistics off: exact check
        train_mode = net.train

        def train_without_bn(mode: bool = True) -> Supernet:
            train_mode(mode)
            for m in net.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
            return net

        net.train = train_without_bn  # type: ignore[method-assign]
    search = BilevelSearch(net, [device], cfg, compute=compute)
    state = search.run(train, val)
    miou, cm = evaluate_choices(net, val, [int(i) for i in state.logits.argmax(-1)], 3,
                                compute=compute)
    if compute.main:
        with open(sys.argv[1], "w") as fh:
            json.dump({"logits": state.logits.tolist(), "history": state.history,
                       "miou": miou, "pixels": int(cm.sum()), "world": compute.world}, fh)


if __name__ == "__main__":
    main()

"""The frozen encoder's feature cache: RAM and memory-mapped disk give the same batches, a
matching disk cache is reused without encoding, anything else is recomputed, never read."""

from __future__ import annotations

import json
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from linas._errors import ConfigError
from linas.compute import shard_batches
from linas.data import cache_features
from linas.data.features import FeatureSet
from linas.run import resources

STRIDES = (2, 4, 8, 16, 32)


class ToyEncoder(nn.Module):
    """Five maps at the real encoder's strides (2 channels each); counts its calls."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(2, 3, 1, 1, generator=g))
            self.proj.bias.copy_(torch.randn(2, generator=g))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.calls += 1
        y = self.proj(x)  # (B, 2, H, W)
        return [nn.functional.avg_pool2d(y, s) * (i + 1) for i, s in enumerate(STRIDES)]


def _data(n: int = 5, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 3, (n, 32, 32), generator=g)


def _same(a: FeatureSet, b: FeatureSet, idx: torch.Tensor, rtol: float = 0.0) -> None:
    fa, ma = a.batch(idx)
    fb, mb = b.batch(idx)
    assert torch.equal(ma, mb)
    for x, y in zip(fa, fb, strict=True):
        assert x.dtype == y.dtype == torch.float32
        if rtol:
            torch.testing.assert_close(x, y, rtol=rtol, atol=rtol * float(y.abs().max()))
        else:
            assert torch.equal(x, y)


def test_disk_and_ram_give_the_same_batches(tmp_path: Path) -> None:
    images, masks = _data()
    enc = ToyEncoder()
    ram = cache_features(enc, images, masks, batch_size=2)
    disk = cache_features(enc, images, masks, batch_size=2, path_prefix=tmp_path / "train")
    half = cache_features(enc, images, masks, batch_size=2, path_prefix=tmp_path / "half",
                          dtype=torch.float16)
    assert ram.feats is not None and disk.feats is not None and half.feats is not None
    assert all(isinstance(f, torch.Tensor) for f in ram.feats)
    # the disk cache holds read-only memory maps, not the features themselves
    assert all(isinstance(f, np.memmap) and not f.flags.writeable for f in disk.feats)
    assert [f.shape for f in disk.feats] == [f.shape for f in ram.feats]
    assert [f.shape[-1] for f in disk.feats] == [32 // s for s in STRIDES]
    assert all(f.dtype == np.float16 for f in half.feats)
    assert sorted(p.name for p in tmp_path.glob("train*")) == [
        "train.json", *(f"train_f{i}.npy" for i in range(5))]
    for idx in (torch.arange(5), torch.tensor([4, 0, 2]), torch.tensor([3])):
        _same(disk, ram, idx)
        _same(half, ram, idx, rtol=1e-2)
    shuffled = [b for _, b in shard_batches(disk, 2, torch.Generator().manual_seed(1))]
    again = [b for _, b in shard_batches(ram, 2, torch.Generator().manual_seed(1))]
    for (fd, md), (fr, mr) in zip(shuffled, again, strict=True):
        assert torch.equal(md, mr) and all(torch.equal(a, b) for a, b in zip(fd, fr, strict=True))


def test_matching_disk_cache_is_reused_without_encoding(tmp_path: Path) -> None:
    images, masks = _data()
    enc = ToyEncoder()
    first = cache_features(enc, images, masks, batch_size=2, path_prefix=tmp_path / "train")
    assert enc.calls == 3
    said: list[str] = []
    done: list[int] = []
    again = cache_features(enc, images, masks, batch_size=2, path_prefix=tmp_path / "train",
                           info=said.append, progress=done.append)
    assert enc.calls == 3 and "reused" in said[0] and sum(done) == 5
    _same(again, first, torch.arange(5))


@pytest.mark.parametrize("change", ["masks", "images", "dtype", "encoder"])
def test_a_changed_input_recomputes(tmp_path: Path, change: str) -> None:
    images, masks = _data()
    enc = ToyEncoder()
    cache_features(enc, images, masks, path_prefix=tmp_path / "train")
    kwargs: dict[str, object] = {}
    if change == "masks":
        masks = masks.clone()
        masks[0, 0, 0] = (masks[0, 0, 0] + 1) % 3
    elif change == "images":
        images = images.clone()
        images[1, 0, 8, 8] += 1.0
    elif change == "dtype":
        kwargs["dtype"] = torch.float16
    else:
        enc.load_state_dict(ToyEncoder(seed=1).state_dict())
    said: list[str] = []
    calls = enc.calls
    got = cache_features(enc, images, masks, path_prefix=tmp_path / "train", info=said.append,
                         **kwargs)  # type: ignore[arg-type]
    assert enc.calls > calls and "recomputing" in said[0]
    ref = cache_features(enc, images, masks, **kwargs)  # type: ignore[arg-type]
    _same(got, ref, torch.arange(5))


@pytest.mark.parametrize("damage", ["truncate", "foreign", "sidecar"])
def test_a_damaged_cache_is_recomputed_not_read(tmp_path: Path, damage: str) -> None:
    images, masks = _data()
    enc = ToyEncoder()
    cache_features(enc, images, masks, path_prefix=tmp_path / "train")
    target = tmp_path / "train_f2.npy"
    if damage == "truncate":
        data = target.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":  # a valid .npy of the right shape and dtype, other values
        shape = np.load(target, mmap_mode="r").shape
        np.save(target, np.full(shape, 7.0, dtype=np.float32))
    else:
        (tmp_path / "train.json").write_text("{not json")
    said: list[str] = []
    calls = enc.calls
    got = cache_features(enc, images, masks, path_prefix=tmp_path / "train", info=said.append)
    assert enc.calls > calls and "recomputing" in said[0]
    _same(got, cache_features(enc, images, masks), torch.arange(5))
    assert json.loads((tmp_path / "train.json").read_text())["n_images"] == 5


def test_real_encoder_disk_cache_matches_ram(tmp_path: Path) -> None:
    from linas.supernet import Supernet

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Supernet(num_classes=3)
    net.freeze_encoder()
    images, masks = _data(n=4)
    ram = cache_features(net.encoder, images, masks, batch_size=2)
    disk = cache_features(net.encoder, images, masks, batch_size=2,
                          path_prefix=tmp_path / "val", dtype=torch.float16)
    _same(disk, ram, torch.tensor([3, 1]), rtol=1e-2)
    assert sum(f.nbytes for f in disk.feats or []) == resources.feature_cache_bytes(
        4, (32, 32), dtype_bytes=2)


def test_disk_cache_without_space_is_refused(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, 5 * resources.GIB))
    need, line = resources.check_feature_cache(50, (480, 640), "disk", "float16", tmp_path)
    assert need == resources.feature_cache_bytes(50, (480, 640), 2)
    assert "float16" in line and "GiB free" in line and "RAM per batch" in line
    with pytest.raises(ConfigError, match=r"200 images .*not enough space.*cache_dtype: float16"):
        resources.check_feature_cache(200, (480, 640), "disk", "float32", tmp_path)

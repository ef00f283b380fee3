"""Disk and memory checks before long work: figures, and refusals that name them."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
import torch

from linas._errors import ConfigError
from linas.run import resources
from linas.supernet import Supernet


def test_feature_cache_size_matches_the_encoder_taps():
    # 480x640 float32: 64*240*320 + 256*120*160 + 512*60*80 + 1024*30*40 + 1024*15*20 floats
    floats = 64 * 240 * 320 + 256 * 120 * 160 + 512 * 60 * 80 + 1024 * 30 * 40 + 1024 * 15 * 20
    assert resources.feature_cache_bytes(1, (480, 640)) == floats * 4  # ~52.7 MiB an image
    assert resources.feature_cache_bytes(1000, (480, 640)) > 50 * resources.GIB
    assert resources.feature_cache_bytes(1, (480, 640), dtype_bytes=2) == floats * 2


def test_cache_that_does_not_fit_ram_is_refused(monkeypatch):
    monkeypatch.setattr(resources, "available_ram_bytes", lambda: 8 * resources.GIB)
    need, line = resources.check_feature_cache(100, (128, 128))
    assert need > 0 and "GiB" in line
    with pytest.raises(ConfigError, match=r"1000 images at 480x640 need 51\.\d+ GiB.*"
                                          r"compute\.feature_cache: disk.*fewer"):
        resources.check_feature_cache(1000, (480, 640))


def test_disk_cache_counts_the_free_space_and_a_cache_already_there(monkeypatch, tmp_path):
    usage = namedtuple("usage", "total used free")
    need = resources.feature_cache_bytes(10, (64, 64))
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, need))
    with pytest.raises(ConfigError, match=r"10% margin.*compute\.cache_dtype: float16.*--out"):
        resources.check_feature_cache(10, (64, 64), "disk", "float32", tmp_path)
    (tmp_path / "train_f0.npy").write_bytes(b"0" * (need // 5))  # reused or replaced in place
    got, line = resources.check_feature_cache(10, (64, 64), "disk", "float32", tmp_path)
    assert got == need and "on disk under" in line


def test_checkpoint_without_disk_space_is_refused(monkeypatch, tmp_path):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = Supernet(num_classes=3)
    net.freeze_encoder()
    need = resources.checkpoint_bytes(net)
    assert 1.5 * resources.GIB < need < 2.5 * resources.GIB  # ~2 GB at any input size
    # a checkpoint holds every optimizer state: 21 dynas states need ~9 GiB of disk, not ~2
    dynas = resources.checkpoint_bytes(net, "dynas")
    assert 8 * resources.GIB < dynas < 10 * resources.GIB
    assert resources.checkpoint_bytes(net, "seed") == need + 2 * 2 * need // 3
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, need // 2))
    with pytest.raises(ConfigError, match="not enough space"):
        resources.check_checkpoint_disk(net, tmp_path / "ckpt")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 0, 2 * need))
    assert resources.check_checkpoint_disk(net, tmp_path / "ckpt")[0] == need
    with pytest.raises(ConfigError, match="not enough space"):
        resources.check_checkpoint_disk(net, tmp_path / "ckpt", momentum="dynas")


def test_search_memory_estimate_warns_before_an_out_of_memory_run(monkeypatch) -> None:
    from linas.run import resources
    from linas.supernet import Supernet

    net = Supernet(num_classes=3)
    net.freeze_encoder()
    single = resources.search_memory_bytes(net, 8, (480, 640), soft=False)
    soft = resources.search_memory_bytes(net, 8, (480, 640), soft=True)
    assert 5 * resources.GIB < single < 10 * resources.GIB < 50 * resources.GIB < soft
    # every extra optimizer state adds two moments of the weights it trains: all of them for
    # seed (3 states); for dynas (21 states, one per op of layer 0) all but layer 0's other 20
    # candidates, which hold most of the decoder's weights, unless soft steps train them all
    params = sum(p.numel() * 4 for p in net.parameters() if p.requires_grad)
    layer0 = sum(p.numel() * 4 for p in net.layers[0].parameters())
    seed = resources.search_memory_bytes(net, 8, (480, 640), False, "seed")
    assert seed - single == 2 * 2 * params
    dynas = resources.search_memory_bytes(net, 8, (480, 640), False, "dynas")
    assert dynas - single == 2 * (21 * (params - layer0) + layer0 - params)
    assert single < seed < dynas < resources.search_memory_bytes(net, 8, (480, 640), False,
                                                                 "dynas", split_layer=4)
    assert resources.search_memory_bytes(net, 8, (480, 640), True, "dynas") - soft == \
        2 * 20 * params
    monkeypatch.setattr(resources, "available_ram_bytes", lambda: 20 * resources.GIB)
    line = resources.search_memory_line(soft, 8, (480, 640), soft=True)
    assert "LIKELY OUT OF MEMORY" in line and "search.soft_epochs: 0" in line
    assert "OUT OF MEMORY" not in resources.search_memory_line(single, 8, (480, 640), False)
    # the fixes named are those that apply: no soft-epoch advice to a single-path run, the
    # momentum mode when it multiplies the optimizer states
    line = resources.search_memory_line(soft, 8, (480, 640), soft=False, n_optimizers=21)
    assert "search.momentum: shared" in line and "soft_epochs" not in line
    assert "search.momentum" not in resources.search_memory_line(soft, 8, (480, 640), True)

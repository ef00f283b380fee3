"""Device and precision of the training stages: bf16 autocast on the CPU trains and records
what it used; on a CUDA device (tests marked ``gpu``, skipped without one) the search, the
weight-sharing evaluation and the final training run there in fp32, bf16 and fp16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from linas._errors import ConfigError
from linas.compute import resolve_compute
from linas.data import FeatureSet, cache_features
from linas.distill import FinalTrainConfig, evaluate_model, train_final
from linas.latency import LUT, LUTLatencyModel
from linas.search import BilevelSearch, DeviceTarget, SearchConfig, evaluate_choices
from linas.space import Arch
from linas.supernet import Supernet

CUDA = torch.cuda.is_available()


def tiny(compute_device: str) -> tuple[Supernet, FeatureSet, FeatureSet, DeviceTarget]:
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(8, 3, 32, 32, generator=gen)
    masks = torch.randint(0, 3, (8, 32, 32), generator=gen)
    feats = cache_features(net.encoder, images, masks)
    assert feats.feats is not None
    train = FeatureSet(masks=masks[:6], feats=[f[:6] for f in feats.feats])
    val = FeatureSet(masks=masks[6:], feats=[f[6:] for f in feats.feats])
    mean = np.random.default_rng(0).uniform(1, 5, (5, 21))
    dev = DeviceTarget("toy", LUTLatencyModel(LUT(hardware="toy", input_size=(32, 32),
                                                  mean_ms=mean, std_ms=mean * 0.01)), 10.0)
    return net.to(compute_device), train, val, dev


def search_and_train(device: str, precision: str) -> dict:
    compute = resolve_compute(device, precision)
    net, train, val, dev = tiny(str(compute.device))
    cfg = SearchConfig(batch_size=3, warmup_epochs=1, search_epochs=1, soft_epochs=1, seed=1)
    state = BilevelSearch(net, [dev], cfg, compute=compute).run(train, val)
    arch = [int(i) for i in state.logits.argmax(-1)]
    miou, _ = evaluate_choices(net, val, arch, 3, compute=compute)
    model = net.extract(Arch(tuple(arch)))
    history = train_final(model, train, FinalTrainConfig(epochs=1, batch_size=3), 255,
                          compute=compute)
    test = evaluate_model(model, val, 3, compute=compute)
    assert all(p.device.type == compute.device.type for p in model.parameters())
    return {"logits": state.logits, "history": state.history, "miou": miou,
            "final": history, "test": test["miou"], "describe": compute.describe()}


def test_bf16_autocast_on_the_cpu_trains_and_differs_from_fp32() -> None:
    fp32, bf16 = search_and_train("cpu", "fp32"), search_and_train("cpu", "bf16")
    assert bf16["describe"] == {"device": "cpu", "precision": "bf16", "processes": 1,
                                "backend": None}
    for res in (fp32, bf16):
        assert all(np.isfinite(h["ce_train"]) for h in res["history"])
        assert np.isfinite(res["final"][0]["ce"]) and 0.0 <= res["test"] <= 1.0
    # the same run at another precision: close, not identical (bf16 really ran)
    assert fp32["history"][0]["ce_train"] != bf16["history"][0]["ce_train"]
    assert abs(fp32["history"][0]["ce_train"] - bf16["history"][0]["ce_train"]) < 0.1


def test_asking_for_cuda_without_it_is_a_clear_error() -> None:
    if CUDA:
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="compute.device = cuda:1: this machine has no CUDA"):
        resolve_compute("cuda:1", "fp32")
    assert resolve_compute("auto", "fp32").device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_stages_run_on_cuda(precision) -> None:
    res = search_and_train("cuda", precision)
    assert res["describe"]["device"].startswith("cuda")
    assert all(np.isfinite(h["ce_train"]) for h in res["history"])
    assert 0.0 <= res["miou"] <= 1.0 and 0.0 <= res["test"] <= 1.0
    cpu = search_and_train("cpu", "fp32")
    if precision == "fp32":  # the same seeds on another device: the same search, to rounding
        assert torch.allclose(res["logits"], cpu["logits"], atol=1e-3)


def test_grad_checkpointing_of_a_finetuned_encoder_gives_the_same_gradients() -> None:
    from linas.run.prepare import set_grad_checkpointing
    from linas.supernet import load_encoder

    torch.manual_seed(0)
    plain, _ = load_encoder("random")
    torch.manual_seed(0)
    ckpt, _ = load_encoder("random")
    assert set_grad_checkpointing(ckpt) == 58  # every dense layer of DenseNet121
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for enc in (plain, ckpt):
        enc.train()
        sum(f.float().mean() for f in enc(x)).backward()
        grads.append(next(enc.parameters()).grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_freezing_the_weights_in_the_arch_step_changes_no_result(monkeypatch) -> None:
    """The architecture step runs with the supernet weights frozen (less memory): the
    logits after a search are the same as with the weights left trainable."""
    import contextlib

    import linas.search.base as base

    def search() -> tuple[torch.Tensor, Supernet]:
        net, train, val, dev = tiny("cpu")
        cfg = SearchConfig(batch_size=3, warmup_epochs=0, search_epochs=2, soft_epochs=1,
                           seed=2)
        return BilevelSearch(net, [dev], cfg).run(train, val).logits, net

    with_freeze, net = search()
    assert all(p.requires_grad for p in net.decoder_parameters())  # trainable again after
    monkeypatch.setattr(base, "frozen", lambda params: contextlib.nullcontext())
    assert torch.equal(with_freeze, search()[0])

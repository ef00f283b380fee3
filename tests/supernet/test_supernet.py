import pytest
import torch

from linas import ConfigError
from linas.space import SearchSpace
from linas.supernet import FixedPart, Supernet, imagenet_cache_path, load_encoder, save_encoder


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return Supernet(num_classes=3).eval()


def test_decoder_chain_and_output_shape(net):
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = net.encoder(x)
        assert [tuple(f.shape[1:]) for f in feats] == [
            (64, 32, 48), (256, 16, 24), (512, 8, 12), (1024, 4, 6), (1024, 2, 3)]
        out = net.decode(feats, choices=[0, 5, 10, 15, 20])
    assert out.shape == (2, 3, 64, 96)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_extract_matches_supernet_path(net, seed):
    arch = SearchSpace().sample(1, seed)[0]
    x = torch.randn(1, 3, 64, 64)
    net.set_arch(arch)
    model = net.extract(arch).eval()
    with torch.no_grad():
        ref = net(x)
        out = model(x)
    assert torch.allclose(ref, out, atol=1e-5)
    assert not any("candidates" in n for n, _ in model.named_modules())
    assert model.arch_string == str(arch)


def test_soft_weights_mix_candidates(net):
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = net.encoder(x)
        one_hot = torch.zeros(5, 21)
        one_hot[torch.arange(5), torch.tensor([1, 2, 3, 4, 5])] = 1.0
        soft = net.decode(feats, weights=one_hot)
        path = net.decode(feats, choices=[1, 2, 3, 4, 5])
    assert torch.allclose(soft, path, atol=1e-5)


def test_straight_through_reaches_logits(net):
    feats = [f.detach() for f in net.encoder(torch.randn(1, 3, 64, 64))]
    logits = torch.zeros(5, 21, requires_grad=True)
    soft = torch.softmax(logits, -1)
    hard = torch.zeros_like(soft).scatter_(-1, torch.zeros(5, 1, dtype=torch.long), 1.0)
    w = hard - soft.detach() + soft
    net.decode(feats, weights=w, choices=[0] * 5).mean().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_fixed_part_runs(net):
    with torch.no_grad():
        assert FixedPart(net)(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_encoder_weights_from_local_file(tmp_path):
    enc, _ = load_encoder("random")
    torch.nn.init.constant_(enc.features.conv0.weight, 0.5)
    # a full torchvision-style state_dict with the legacy 'norm.1' key naming
    state = {f"features.{k}": v for k, v in enc.features.state_dict().items()}
    legacy = {k.replace("norm1.", "norm.1.") if "denselayer" in k else k: v
              for k, v in state.items() if not k.endswith("num_batches_tracked")}
    legacy["classifier.weight"] = torch.zeros(1000, 1024)
    path = tmp_path / "densenet121.pth"
    torch.save(legacy, path)
    loaded, source = load_encoder(str(path))
    assert source == str(path)
    assert torch.all(loaded.features.conv0.weight == 0.5)

    from safetensors.torch import save_file
    st = tmp_path / "enc.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(st))
    assert torch.all(load_encoder(str(st))[0].features.conv0.weight == 0.5)


def test_saved_encoder_loads_back_exactly(tmp_path):
    """A fine-tuned encoder written by save_encoder is what encoder.weights: PATH reads,
    weights and BatchNorm statistics alike."""
    enc, _ = load_encoder("random")
    enc.train()
    with torch.no_grad():
        enc(torch.randn(2, 3, 64, 64))  # moves the running statistics off their init
        enc.features.conv0.weight.mul_(3.0)
    path = save_encoder(enc, tmp_path / "out" / "adapted.safetensors")
    loaded, source = load_encoder(str(path))
    assert source == str(path)
    want, got = enc.features.state_dict(), loaded.features.state_dict()
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert not torch.equal(want["norm0.running_mean"], torch.zeros_like(want["norm0.running_mean"]))
    assert [p.name for p in path.parent.iterdir()] == ["adapted.safetensors"]  # no temp file


def test_bad_encoder_weights_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_encoder(str(tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    torch.save({"features.conv0.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(ConfigError, match="do not fit DenseNet121"):
        load_encoder(str(bad))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_encoder(str(junk))


def test_imagenet_offline_names_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    import torchvision

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.models.DenseNet121_Weights.IMAGENET1K_V1.__class__,
                        "get_state_dict", offline)
    with pytest.raises(ConfigError) as err:
        load_encoder("imagenet")
    assert str(imagenet_cache_path()) in str(err.value)
    _, source = load_encoder("auto")
    assert source == "random"


def test_imagenet_loads_from_torchvision_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    enc, _ = load_encoder("random")
    torch.nn.init.constant_(enc.features.conv0.weight, 0.25)
    cache = imagenet_cache_path()
    cache.parent.mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in enc.features.state_dict().items()}, cache)
    loaded, source = load_encoder("imagenet")
    assert source == "imagenet"
    assert torch.all(loaded.features.conv0.weight == 0.25)

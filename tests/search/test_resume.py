"""A search interrupted after a checkpoint resumes to the same result as an uninterrupted one."""

import numpy as np
import torch

from linas.data import FeatureSet, cache_features
from linas.latency import LUT, LUTLatencyModel
from linas.search import BilevelSearch, DeviceTarget, SearchConfig
from linas.space import NUM_CHOICES, NUM_LAYERS
from linas.supernet import Supernet


def tiny_setup(seed=0):
    torch.manual_seed(seed)
    net = Supernet(num_classes=3)
    net.freeze_encoder()
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(8, 3, 32, 32, generator=gen)
    masks = torch.randint(0, 3, (8, 32, 32), generator=gen)
    feats = cache_features(net.encoder, images, masks)
    rng = np.random.default_rng(seed)
    mean = rng.uniform(1, 5, (NUM_LAYERS, NUM_CHOICES))
    lut = LUT(hardware="toy", input_size=(32, 32), mean_ms=mean, std_ms=mean * 0.01)
    return net, feats, [DeviceTarget("toy", LUTLatencyModel(lut), 8.0)]


def make(net, devices):
    cfg = SearchConfig(warmup_epochs=1, search_epochs=2, soft_epochs=1, batch_size=4, seed=3)
    return BilevelSearch(net, devices, cfg)


def test_resume_matches_uninterrupted(tmp_path):
    net, feats, devices = tiny_setup()
    train = FeatureSet(masks=feats.masks[:4], feats=[f[:4] for f in feats.feats])
    val = FeatureSet(masks=feats.masks[4:], feats=[f[4:] for f in feats.feats])
    initial = {k: v.clone() for k, v in net.state_dict().items()}

    full = make(net, devices).run(train, val)

    net.load_state_dict(initial)
    first = make(net, devices)
    ckpt = tmp_path / "search.pt"

    class Stop(Exception):
        pass

    def save_then_crash(state):
        first.save(ckpt)
        if state.epoch == 2:
            raise Stop

    try:
        first.run(train, val, on_epoch=save_then_crash)
    except Stop:
        pass
    net.load_state_dict(initial)  # a fresh process: weights come from the checkpoint only
    resumed = make(net, devices)
    resumed.load(ckpt, first.state.history)
    assert resumed.state.epoch == 2
    final = resumed.run(train, val)
    assert torch.allclose(final.logits, full.logits, atol=1e-6)
    assert [h["argmax_arch"] for h in final.history] == [h["argmax_arch"] for h in full.history]


def test_finetuned_encoder_is_trained_when_not_frozen():
    torch.manual_seed(0)
    net = Supernet(num_classes=3)
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(4, 3, 32, 32, generator=gen)
    masks = torch.randint(0, 3, (4, 32, 32), generator=gen)
    data = FeatureSet(masks=masks, images=images, encoder=net.encoder)
    before = net.encoder.features.conv0.weight.detach().clone()
    _, _, devices = tiny_setup()
    cfg = SearchConfig(warmup_epochs=1, search_epochs=0, batch_size=4, seed=0)
    BilevelSearch(net, devices, cfg).run(data, data)
    assert not torch.equal(before, net.encoder.features.conv0.weight)


def test_a_finished_search_checkpoints_without_optimizer_states(tmp_path):
    """Nothing trains from a finished search again: its checkpoint keeps the weights and
    leaves out the optimizer states (most of its size), and loads to the same supernet
    (decoder; the frozen encoder is not checkpointed)."""
    net, feats, devices = tiny_setup()
    search = make(net, devices)
    search.run(feats, feats)
    mid, done = tmp_path / "mid.pt", tmp_path / "done.pt"
    search.save(done)
    assert torch.load(done, weights_only=True)["fair"] == []
    search.state.epoch -= 1  # as if one epoch were left: the states are kept
    search.save(mid)
    search.state.epoch += 1
    assert torch.load(mid, weights_only=True)["fair"]
    assert done.stat().st_size < 0.6 * mid.stat().st_size
    trained = {k: v.clone() for k, v in net.state_dict().items()}
    fresh, _, _ = tiny_setup(seed=1)
    loaded = make(fresh, devices)
    loaded.load(done, search.state.history)
    assert loaded.state.epoch == search.total_epochs
    decoder = {k: v for k, v in fresh.state_dict().items() if not k.startswith("encoder.")}
    assert decoder and all(torch.equal(trained[k], v) for k, v in decoder.items())

"""Contract test over every registered op: shape, backward, ONNX export."""

import onnxruntime as ort
import pytest
import torch

from linas import ConfigError
from linas.space import CHOICE_KEYS
from linas.supernet import OP_BUILDERS, build_candidate, build_op


@pytest.mark.parametrize("key", CHOICE_KEYS)
def test_candidate_shape_and_backward(key):
    torch.manual_seed(0)
    cand = build_candidate(key, 16, 8)
    x = torch.randn(2, 16, 5, 6, requires_grad=True)
    y = cand(x)
    assert y.shape == (2, 8, 10, 12)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in cand.parameters())


@pytest.mark.parametrize("op", OP_BUILDERS.names())
def test_op_exports_to_onnx_and_matches(op, tmp_path):
    torch.manual_seed(0)
    cand = build_candidate(f"{op}_w75", 8, 8).eval()
    x = torch.randn(1, 8, 4, 4)
    path = tmp_path / f"{op}.onnx"
    torch.onnx.export(cand, (x,), str(path), opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = cand(x).numpy()
    assert out.shape == ref.shape
    assert abs(out - ref).max() < 1e-4


def test_width_sets_channels_and_projection():
    c50 = build_candidate("Conv3x3_w50", 16, 8)
    c100 = build_candidate("Conv3x3_w100", 16, 8)
    assert c50.op.out_channels == 4 and not isinstance(c50.proj, torch.nn.Identity)
    assert c100.op.out_channels == 8 and isinstance(c100.proj, torch.nn.Identity)


def test_edgeconv_sees_edges():
    op = build_op("EdgeConv", 1, 1)
    flat = torch.ones(1, 1, 6, 6)
    step = torch.cat([torch.zeros(1, 1, 6, 3), torch.ones(1, 1, 6, 3)], dim=3)
    grads_flat = torch.nn.functional.conv2d(flat, op.sobel, padding=1, groups=1)[..., 1:-1, 1:-1]
    grads_step = torch.nn.functional.conv2d(step, op.sobel, padding=1, groups=1)[..., 1:-1, 1:-1]
    assert grads_flat.abs().sum() == 0 and grads_step.abs().sum() > 0


def test_unknown_op_is_a_clear_error():
    with pytest.raises(ConfigError, match="did you mean 'DWSep3x3'"):
        build_op("DWSep3x4", 4, 4)

import numpy as np
import torch

from linas.latency import LUT, LUTLatencyModel
from linas.search import gumbel_softmax, latency_penalty, temperature
from linas.space import NUM_CHOICES, NUM_LAYERS, SearchSpace


def toy_lut(seed=0, interactions=False, fixed=None):
    rng = np.random.default_rng(seed)
    mean = rng.uniform(1.0, 10.0, size=(NUM_LAYERS, NUM_CHOICES))
    pairs = rng.normal(0, 0.5, size=(NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES)) \
        if interactions else None
    return LUT(hardware="toy", input_size=(128, 128), mean_ms=mean, std_ms=mean * 0.01,
               fixed_ms=fixed, interactions=pairs)


def test_temperature_anneals_from_start_to_end():
    assert temperature(0, 5, 5.0, 0.5) == 5.0
    assert abs(temperature(4, 5, 5.0, 0.5) - 0.5) < 1e-9
    taus = [temperature(e, 5, 5.0, 0.5) for e in range(5)]
    assert all(a > b for a, b in zip(taus, taus[1:], strict=False))


def test_gumbel_is_seeded_and_hard_is_one_hot():
    logits = torch.randn(5, 21)
    a, ca = gumbel_softmax(logits, 1.0, True, torch.Generator().manual_seed(3))
    b, cb = gumbel_softmax(logits, 1.0, True, torch.Generator().manual_seed(3))
    assert ca == cb and torch.equal(a, b)
    assert torch.allclose(a.sum(-1), torch.ones(5))
    assert ((a == 0) | (a == 1)).all() or torch.allclose(a.detach().max(-1).values, torch.ones(5))
    soft, _ = gumbel_softmax(logits, 1.0, False, torch.Generator().manual_seed(3))
    assert torch.allclose(soft.sum(-1), torch.ones(5)) and (soft > 0).all()


def test_expected_latency_equals_predict_on_one_hot():
    model = LUTLatencyModel(toy_lut(interactions=True, fixed=7.0))
    for arch in SearchSpace().sample(10, seed=0):
        probs = torch.zeros(NUM_LAYERS, NUM_CHOICES, dtype=torch.float64)
        probs[torch.arange(NUM_LAYERS), torch.tensor(arch.choices)] = 1.0
        assert abs(float(model.expected(probs)) - model.latency(arch)) < 1e-9


def test_exhaustive_matches_predict():
    model = LUTLatencyModel(toy_lut(interactions=True, fixed=3.0))
    allc = SearchSpace().all_choices()
    ex = model.exhaustive()
    idx = np.random.default_rng(0).integers(0, len(ex), 500)
    assert np.allclose(ex[idx], model.predict(allc[idx]), rtol=1e-5)


def test_latency_penalty_normalised_per_device():
    fast = LUTLatencyModel(toy_lut(1))
    slow_lut = toy_lut(1)
    slow_lut.mean_ms = slow_lut.mean_ms * 1000
    slow = LUTLatencyModel(slow_lut)
    probs = torch.full((NUM_LAYERS, NUM_CHOICES), 1.0 / NUM_CHOICES)
    e_fast = float(fast.expected(probs))
    # both devices exceed their target by the same 50%: equal contributions
    pen, expected = latency_penalty(probs, [fast, slow], [e_fast / 1.5, e_fast * 1000 / 1.5])
    assert abs(float(pen) - 1.0) < 1e-6
    assert abs(expected[1] / expected[0] - 1000) < 1e-3
    zero, _ = latency_penalty(probs, [fast], [e_fast * 2])
    assert float(zero) == 0.0


def test_gradient_descent_on_penalty_finds_fastest_arch():
    """Toy problem with a known optimum: with the latency term alone, the logits converge to
    the per-layer fastest choice."""
    model = LUTLatencyModel(toy_lut(5))
    logits = torch.zeros(NUM_LAYERS, NUM_CHOICES, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        pen, _ = latency_penalty(torch.softmax(logits, -1), [model], [1.0])
        opt.zero_grad()
        pen.backward()
        opt.step()
    assert logits.argmax(-1).tolist() == model.table.argmin(1).tolist()

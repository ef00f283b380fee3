"""Interaction terms (I4): the ridge fit recovers a known synthetic model; the differentiable
form equals the discrete one; v2 files with fitted interactions round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from linas.latency import LUTLatencyModel, load_lut, save_lut
from linas.latency.interactions import (
    context_design,
    context_marginals,
    context_terms,
    design_matrix,
    fit_interactions,
    fold_into_pairs,
    op_sum,
    pair_interactions,
    pair_sum,
    ridge_solve,
)
from linas.latency.lut import LUT
from linas.latency.validate import sample_architectures
from linas.space import NUM_CHOICES, NUM_LAYERS


def _table(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 3.0, (NUM_LAYERS, NUM_CHOICES))


def _truth(table: np.ndarray, choices: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    # framework overhead 1.5 ms, ops 20% slower in the model, plus pair terms; fixed 10 ms
    return 10.0 + 1.5 + 1.2 * op_sum(table, choices) + pair_sum(pairs, choices)


def test_fit_recovers_intercept_scale_and_structured_pairs() -> None:
    table = _table()
    rng = np.random.default_rng(1)
    # structured interaction: (layer i choice a) x (layer i+1 choice b) cache term
    pairs = 0.05 * rng.random((NUM_LAYERS - 1, NUM_CHOICES, 1)) * rng.random((1, 1, NUM_CHOICES))
    fit_c = sample_architectures(300, seed=1)
    held = sample_architectures(200, seed=2, exclude=[int(i) for i in range(0)])
    measured = _truth(table, fit_c, pairs) + rng.normal(0, 0.01, len(fit_c))
    fit = fit_interactions(table, 10.0, fit_c, measured, seed=0)
    predicted = 10.0 + op_sum(table, held) + pair_sum(fit.pairs, held)
    truth = _truth(table, held, pairs)
    assert np.max(np.abs(predicted - truth) / truth) < 0.01
    assert abs(fit.intercept - 1.5) < 0.3 and np.allclose(fit.scales, 0.2, atol=0.05)
    assert fit.pairs.shape == (NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES)


def test_small_noisy_sample_keeps_the_simple_model() -> None:
    """40 timings of a machine whose only departure from fixed + op sum is a constant and
    2% noise: the guard keeps the intercept-only term set, and predictions stay close."""
    table = _table(5)
    rng = np.random.default_rng(6)
    fit_c, held = sample_architectures(40, seed=7), sample_architectures(200, seed=8)

    def machine(c: np.ndarray) -> np.ndarray:
        t = 10.0 + op_sum(table, c) + 2.0
        return t * (1.0 + rng.normal(0, 0.02, len(c)))

    fit = fit_interactions(table, 10.0, fit_c, machine(fit_c), seed=0)
    assert fit.terms == "intercept" and set(fit.cv_by_terms) == {"intercept", "scale", "full"}
    assert np.allclose(fit.scales, 0.0) and abs(fit.intercept - 2.0) < 0.5
    truth = 12.0 + op_sum(table, held)
    pred = 10.0 + op_sum(table, held) + pair_sum(fit.pairs, held)
    assert np.mean(np.abs(pred - truth) / truth) < 0.01


def test_fit_recovers_pure_pair_terms_with_many_samples() -> None:
    table = _table(3)
    rng = np.random.default_rng(4)
    pairs = rng.normal(0, 0.3, (NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES))
    fit_c = sample_architectures(2500, seed=5)
    held = sample_architectures(300, seed=6)
    fit = fit_interactions(table, 0.0, fit_c, op_sum(table, fit_c) + pair_sum(pairs, fit_c),
                           alphas=(0.003,))
    err = pair_sum(fit.pairs, held) - pair_sum(pairs, held)
    assert np.sqrt(np.mean(err ** 2)) < 0.2 * np.std(pair_sum(pairs, held))


def test_fold_into_pairs_matches_linear_model() -> None:
    table = _table(7)
    choices = sample_architectures(50, seed=8)
    x, penalty = design_matrix(table, choices)
    beta = np.random.default_rng(9).normal(size=x.shape[1])
    np.testing.assert_allclose(pair_sum(fold_into_pairs(beta, table), choices), x @ beta,
                               rtol=1e-10, atol=1e-10)
    assert penalty.shape == (x.shape[1],) and np.all(penalty > 0)


def test_ridge_primal_equals_dual() -> None:
    rng = np.random.default_rng(0)
    x, y, pen = rng.normal(size=(30, 12)), rng.normal(size=30), rng.uniform(0.1, 2, 12)
    np.testing.assert_allclose(ridge_solve(x[:8], y[:8], pen),
                               np.linalg.solve(x[:8].T @ x[:8] + np.diag(pen), x[:8].T @ y[:8]),
                               rtol=1e-8)
    with pytest.raises(ValueError, match="positive"):
        ridge_solve(x, y, np.zeros(12))


def test_fit_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match=">= 5"):
        fit_interactions(_table(), 0.0, np.zeros((3, 5), int), np.ones(3))
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        fit_interactions(_table(), 0.0, np.zeros((6, 4), int), np.ones(6))


def test_pair_interactions_is_pair_minus_parts() -> None:
    table = _table(2)
    pair_ms = table[:-1, :, None] + table[1:, None, :] + 0.25
    np.testing.assert_allclose(pair_interactions(pair_ms, table), 0.25)
    with pytest.raises(ValueError, match="shape"):
        pair_interactions(np.zeros((3, 21, 21)), table)


def _lut(pairs: np.ndarray | None) -> LUT:
    table = _table(11)
    return LUT(hardware="synthetic", input_size=(64, 64), mean_ms=table, std_ms=0.01 * table,
               fixed_ms=5.0, fixed_std_ms=0.1, interactions=pairs,
               interaction_method=None if pairs is None else "fit",
               provenance={"runtime": "torch", "interactions": {"method": "fit",
                                                                "arch_ids": [1, 2, 3]}})


def test_expected_equals_predict_on_one_hot_and_is_differentiable() -> None:
    pairs = np.random.default_rng(12).normal(0, 0.2, (NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES))
    model = LUTLatencyModel(_lut(pairs))
    choices = sample_architectures(5, seed=13)
    for row in choices:
        one_hot = torch.zeros(NUM_LAYERS, NUM_CHOICES, dtype=torch.float64)
        one_hot[torch.arange(NUM_LAYERS), torch.as_tensor(row)] = 1.0
        assert float(model.expected(one_hot)) == pytest.approx(float(model.predict(row[None])[0]))
    logits = torch.zeros(NUM_LAYERS, NUM_CHOICES, dtype=torch.float64, requires_grad=True)
    model.expected(torch.softmax(logits, dim=1)).backward()
    assert logits.grad is not None and torch.all(torch.isfinite(logits.grad))
    assert float(logits.grad.abs().sum()) > 0


def test_v2_with_interactions_round_trips(tmp_path: Path) -> None:
    pairs = np.random.default_rng(14).normal(0, 0.2, (NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES))
    lut = _lut(pairs)
    back = load_lut(save_lut(lut, tmp_path / "lut.json"))
    np.testing.assert_allclose(back.interactions, pairs)
    assert back.interaction_method == "fit" and back.fixed_ms == 5.0
    assert back.provenance["interactions"]["arch_ids"] == [1, 2, 3]
    choices = sample_architectures(20, seed=15)
    np.testing.assert_allclose(LUTLatencyModel(back).predict(choices),
                               LUTLatencyModel(lut).predict(choices))


@pytest.mark.parametrize(("pairs", "match"), [
    ({"layer_0-layer_1": [[0.0] * 21] * 21}, "lack the pair 'layer_1-layer_2'"),
    ({f"layer_{i}-layer_{i + 1}": [[0.0] * 20] * 21 for i in range(4)}, "finite 21x21"),
    ({f"layer_{i}-layer_{i + 1}": [[float("nan")] * 21] * 21 for i in range(4)}, "finite 21x21"),
])
def test_bad_interactions_block_is_one_clear_line(tmp_path: Path, pairs: dict, match: str,
                                                   v1_dict) -> None:
    import json

    from linas._errors import LUTError

    data = v1_dict()
    data["interactions"] = {"method": "fit", "pairs": pairs}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LUTError, match=match) as info:
        load_lut(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_context_terms_reproduce_an_additive_graph_exactly() -> None:
    """In a model whose in-graph costs are additive but unlike the stand-alone entries (a
    fused op costs a third, a per-call overhead disappears), the marginal costs around an
    anchor make fixed + op sum + pairs exact for every architecture."""
    table = _table(12)
    rng = np.random.default_rng(13)
    in_graph = table * rng.uniform(0.3, 1.0, table.shape) - 0.1
    fixed = 10.0

    def truth(c: np.ndarray) -> np.ndarray:
        return fixed + 0.7 + op_sum(in_graph, c)

    anchor = (10, 3, 0, 20, 7)
    rows = context_design(anchor)
    assert rows.shape == (100, NUM_LAYERS)
    assert all(int((r != np.asarray(anchor)).sum()) == 1 for r in rows)
    anchor_ms = float(truth(np.asarray([anchor]))[0])
    marginal = context_marginals(rows, anchor, truth(rows) - anchor_ms)
    pairs = context_terms(table, fixed, anchor, anchor_ms, marginal)
    held = sample_architectures(500, seed=14)
    np.testing.assert_allclose(fixed + op_sum(table, held) + pair_sum(pairs, held), truth(held),
                               rtol=1e-10)
    marginal[0, anchor[0]] = 1.0
    with pytest.raises(ValueError, match="anchor"):
        context_terms(table, fixed, anchor, anchor_ms, marginal)


def _unconstrained(table: np.ndarray, choices: np.ndarray, measured: np.ndarray,
                   fit) -> np.ndarray:
    """The pair table the plain ridge fit (no constraints) gives for ``fit``'s term set."""
    from linas.latency.interactions import TERM_SETS

    x, penalty = design_matrix(table, choices, dict(TERM_SETS)[fit.terms])
    return fold_into_pairs(ridge_solve(x, measured - op_sum(table, choices), fit.alpha * penalty),
                           table)


def test_fit_that_would_extrapolate_negative_stays_positive() -> None:
    """A decoder-only machine whose latency grows faster than linearly with the op sum (caches
    overflow): a linear fit of 40 mid-range architectures has a steep slope and a negative
    intercept, so unconstrained it predicts about -4 ms at the fastest corner of the space.
    The constrained fit keeps every one of the 21**5 architectures above the floor."""
    from linas.latency.constrained import FLOOR_FRACTION
    from linas.latency.sums import space_minimum, space_sums

    table = np.random.default_rng(0).uniform(0.2, 3.0, (NUM_LAYERS, NUM_CHOICES))

    def truth(c: np.ndarray) -> np.ndarray:
        return 0.2 + op_sum(table, c) ** 2 / 8.0

    fit_c = sample_architectures(40, seed=3)
    fit = fit_interactions(table, 0.0, fit_c, truth(fit_c))
    raw = _unconstrained(table, fit_c, truth(fit_c), fit)
    assert space_minimum(table, 0.0, raw)[0] < -1.0  # what the plain ridge fit did
    lat = space_sums(table, 0.0, fit.pairs)  # every architecture
    plain_min = table.min(axis=1).sum()
    assert lat.min() >= FLOOR_FRACTION * plain_min * (1 - 1e-6) and lat.min() > 0
    assert fit.min_ms == pytest.approx(lat.min(), rel=1e-12)
    assert np.all(fit.scales >= -1.0) and fit.shrink == 1.0  # constrained fit, no fallback
    held = sample_architectures(500, seed=9)
    pred = op_sum(table, held) + pair_sum(fit.pairs, held)
    assert np.median(np.abs(pred - truth(held)) / truth(held)) < 0.2  # still a usable fit


def test_layer_scales_stay_non_negative() -> None:
    """Timings in which layer 0's op cost *lowers* the latency (1 + s_0 = -0.5, unphysical):
    the fit pins that layer's effective scale at 0 instead of inverting its ranking."""
    table = _table(21)
    rng = np.random.default_rng(22)
    fit_c = sample_architectures(120, seed=23)

    def truth(c: np.ndarray) -> np.ndarray:
        return 30.0 + op_sum(table, c) - 1.5 * table[0][c[:, 0]]

    measured = truth(fit_c) + rng.normal(0, 0.01, len(fit_c))
    fit = fit_interactions(table, 20.0, fit_c, measured)
    raw = _unconstrained(table, fit_c, measured, fit)
    assert fit.terms in ("scale", "full")
    assert 1.0 + fit.scales[0] == pytest.approx(0.0, abs=1e-9)  # at the bound
    assert np.all(1.0 + fit.scales >= -1e-9)
    # the unconstrained fit put layer 0's scale below zero: its rows decrease with cost
    row0 = raw[0].mean(axis=1) + table[0]  # layer 0's in-model cost per choice, up to a shift
    assert np.corrcoef(row0, table[0])[0, 1] < 0
    assert np.all(np.abs(1.0 + fit.scales[1:] - 1.0) < 0.05)  # other layers unharmed


def test_keep_positive_shrinks_only_when_needed() -> None:
    from linas.latency.constrained import keep_positive
    from linas.latency.sums import space_minimum

    table = _table(30)
    plain = space_minimum(table, 5.0, None)[0]
    small = np.full((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES), -0.1)
    same, t = keep_positive(table, 5.0, small)
    assert same is small and t == 1.0
    big = np.full((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES), -10.0)  # -40 ms everywhere
    shrunk, t = keep_positive(table, 5.0, big, floor_fraction=0.25)
    # min(plain - 40 t) = 0.25 plain  =>  t = 0.75 plain / 40, from below
    assert t == pytest.approx(0.75 * plain / 40.0, rel=1e-9) and t <= 0.75 * plain / 40.0
    assert space_minimum(table, 5.0, shrunk)[0] == pytest.approx(0.25 * plain, rel=1e-9)
    with pytest.raises(ValueError, match="floor_fraction"):
        keep_positive(table, 5.0, big, floor_fraction=1.0)


def test_context_terms_never_predict_non_positive() -> None:
    """Noisy marginals that, added up, claim the fastest corner runs in negative time: the
    marginals are scaled down until the model clears the floor; the anchor stays exact."""
    from linas.latency.sums import space_minimum

    table = _table(31)
    anchor = (10, 3, 0, 20, 7)
    marginal = -np.abs(np.random.default_rng(32).normal(0, 4.0, (NUM_LAYERS, NUM_CHOICES)))
    marginal[np.arange(NUM_LAYERS), anchor] = 0.0
    anchor_ms = 12.0  # anchor + sum of the most negative marginals is far below zero
    assert anchor_ms + marginal.min(axis=1).sum() < 0
    pairs = context_terms(table, 2.0, anchor, anchor_ms, marginal)
    assert space_minimum(table, 2.0, pairs)[0] > 0
    at = np.asarray([anchor])
    assert 2.0 + op_sum(table, at)[0] + pair_sum(pairs, at)[0] == pytest.approx(anchor_ms)
    exact = context_terms(table, 2.0, anchor, anchor_ms, marginal, floor_fraction=None)
    assert space_minimum(table, 2.0, exact)[0] < 0  # what it would have been

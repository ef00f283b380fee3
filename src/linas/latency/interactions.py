"""Adjacent-layer interaction terms (I4): measured from pairs, or fitted from end-to-end runs.

The full latency model of a device is ``fixed + sum_l table[l, c_l] + sum_i P_i[c_i, c_i+1]``
with four (21, 21) pair matrices ``P`` (layer i, layer i+1). Two ways to get ``P``:

* **full**: time each adjacent pair of candidates back to back; ``P = pair - (a + b)``
  (:func:`pair_interactions`, measured by :func:`measure_pairs`). 4 x 441 timings.
* **fit**: ridge least squares on the end-to-end residual ``measured - (fixed + op sum)`` of a
  sample of architectures (:func:`fit_interactions`). Besides one indicator per pair cell the
  design has an intercept (framework overhead), a scale per layer (ops run with colder caches
  in the model than alone, roughly in proportion to their cost) and a correction per
  (layer, choice) (e.g. the skip fusion reading the previous op's fresh output). All of these
  are exactly representable as pair entries (:func:`fold_into_pairs`), so the fitted model is
  still a (4, 21, 21) table and stays differentiable in :class:`LUTLatencyModel`. Structured
  terms get weak penalties and pair cells strong ones, so few samples do not overfit; the
  overall strength is chosen by k-fold cross-validation on the fitting sample only.
  Model selection guards small samples: nested term sets (intercept; + per-layer scales;
  everything) are cross-validated too, and a richer set must beat the simpler one's CV error
  by 5% to be kept (a 24-architecture fit of every term once over-fitted one layer's scale
  and predicted +60% on an architecture outside the sample).
  Physical constraints (:mod:`linas.latency.constrained`): a layer's effective scale
  ``1 + s_l`` stays >= 0, and the fastest architecture of the *whole* space stays above a
  floor (a quarter of the plain LUT's fastest): a linear fit of a few dozen mid-range
  architectures can otherwise extrapolate to a negative latency at the fastest corner of the
  space, which no sample covers. Both are constraints of the least-squares problem (active
  set), with a final shrink toward the plain LUT as the guarantee.

* **context**: time the model itself with one layer changed at a time around an anchor
  architecture (101 end-to-end timings): each candidate's *in-graph* marginal cost. Graph
  compilers (OpenVINO, ONNX Runtime) fuse and re-layout a candidate differently inside the
  whole model than alone, so stand-alone entries misjudge them per op;
  :func:`context_terms` turns the marginal costs into the intercept and per-(layer, choice)
  corrections that make ``fixed + op sum + pairs`` reproduce them exactly (unless noisy
  marginals add up to a non-physical latency somewhere: then they are scaled down).

Everything here is pure numpy except :func:`measure_pairs`, which times through
:mod:`linas.latency.measure`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from linas.latency.constrained import (
    FLOOR_FRACTION,
    MIN_LAYER_SCALE,
    constrained_solve,
    keep_positive,
    largest_scale,
    plain_floor,
)
from linas.latency.measure import Candidate, time_in_runtime
from linas.latency.runtimes import Runtime
from linas.latency.sums import space_minimum
from linas.space import NUM_CHOICES, NUM_LAYERS

NUM_PAIRS = NUM_LAYERS - 1
# Relative ridge penalties of the design's column groups (times the CV-chosen strength alpha).
GROUP_PENALTY = {"intercept": 1e-6, "scale": 1e-2, "unary": 1.0, "pair": 4.0}
ALPHAS = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
# Nested term sets tried by fit_interactions, simplest first.
TERM_SETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("intercept", ("intercept",)),
    ("scale", ("intercept", "scale")),
    ("full", ("intercept", "scale", "unary", "pair")),
)
RICHER_MUST_GAIN = 0.05  # relative CV-MAPE gain a richer term set needs to be chosen
_SCALES = slice(1, 1 + NUM_LAYERS)  # the per-layer scale columns of design_matrix


@dataclass(frozen=True)
class InteractionFit:
    """A fitted interaction model.

    Attributes:
        pairs: (4, 21, 21) interaction table with every fitted term folded in.
        intercept: fitted constant in ms.
        scales: (5,) per-layer multiplicative corrections of the op entries.
        alpha: the ridge strength chosen by cross-validation.
        cv_mape: cross-validated MAPE of the end-to-end prediction at ``alpha``.
        n_archs: number of fitting architectures.
        terms: the term set chosen (``intercept``, ``scale`` or ``full``, see TERM_SETS).
        cv_by_terms: the best CV MAPE of every term set tried.
        shrink: factor (0..1] the fitted pair table was scaled by to stay above the floor
            (1.0: untouched; see :func:`keep_positive`).
        min_ms: the fitted model's latency at the fastest architecture of the space.
    """

    pairs: np.ndarray
    intercept: float
    scales: np.ndarray
    alpha: float
    cv_mape: float
    n_archs: int
    terms: str = "full"
    cv_by_terms: dict[str, float] | None = None
    shrink: float = 1.0
    min_ms: float | None = None


def op_sum(table: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Sum of the five op entries of each architecture: (N,) from (5, 21) and (N, 5)."""
    choices = np.asarray(choices, dtype=np.int64)
    return np.asarray(table)[np.arange(NUM_LAYERS)[None, :], choices].sum(axis=1)


def pair_sum(pairs: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """Sum of the four adjacent-pair terms of each architecture: (N,)."""
    choices = np.asarray(choices, dtype=np.int64)
    return sum((pairs[i][choices[:, i], choices[:, i + 1]] for i in range(NUM_PAIRS)),
               np.zeros(len(choices)))


def pair_interactions(pair_ms: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Measured interaction terms ``pair - (a + b)`` for the four adjacent layer pairs.

    Args:
        pair_ms: (4, 21, 21) time of candidates (i, a) then (i+1, b) run back to back.
        table: (5, 21) the single-op entries measured the same way.

    Returns:
        (4, 21, 21) interactions in ms (negative when the pair is faster than its parts).
    """
    pair_ms, table = np.asarray(pair_ms, dtype=np.float64), np.asarray(table, dtype=np.float64)
    if pair_ms.shape != (NUM_PAIRS, NUM_CHOICES, NUM_CHOICES):
        raise ValueError(f"pair_ms must have shape (4, 21, 21), got {pair_ms.shape}")
    return pair_ms - (table[:-1, :, None] + table[1:, None, :])


def design_matrix(table: np.ndarray, choices: np.ndarray,
                  groups: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of the fit and each column's relative penalty.

    Columns: intercept (1), per-layer op cost (5, the entry of the chosen op), per-(layer,
    choice) indicators (105), per-(pair, a, b) indicators (4 * 441).

    Args:
        table: (5, 21) op entries in ms.
        choices: (N, 5) architectures as choice indices.
        groups: when given, columns of other groups are zero (same layout, so a restricted
            fit folds like a full one); their penalty stays positive.

    Returns:
        ``(X, penalty)``: X (N, 1876) and penalty (1876,).
    """
    choices = np.asarray(choices, dtype=np.int64)
    n = len(choices)
    rows = np.arange(n)
    unary = np.zeros((n, NUM_LAYERS * NUM_CHOICES))
    pair = np.zeros((n, NUM_PAIRS * NUM_CHOICES * NUM_CHOICES))
    for layer in range(NUM_LAYERS):
        unary[rows, layer * NUM_CHOICES + choices[:, layer]] = 1.0
    for i in range(NUM_PAIRS):
        cell = (i * NUM_CHOICES + choices[:, i]) * NUM_CHOICES + choices[:, i + 1]
        pair[rows, cell] = 1.0
    scale = np.asarray(table)[np.arange(NUM_LAYERS)[None, :], choices]  # (N, 5)
    x = np.hstack([np.ones((n, 1)), scale, unary, pair])
    sizes = [("intercept", 1), ("scale", NUM_LAYERS), ("unary", unary.shape[1]),
             ("pair", pair.shape[1])]
    penalty = np.concatenate([np.full(k, GROUP_PENALTY[g]) for g, k in sizes])
    if groups is not None:
        keep = np.concatenate([np.full(k, g in groups) for g, k in sizes])
        x[:, ~keep] = 0.0  # zero columns get zero coefficients under any positive penalty
    return x, penalty


def ridge_solve(x: np.ndarray, y: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Minimise ``|x b - y|^2 + sum(penalty * b^2)`` in closed form (all penalties > 0).

    Uses the dual (N x N) system when there are fewer rows than columns.
    """
    if np.any(penalty <= 0):
        raise ValueError("ridge_solve needs strictly positive penalties")
    n, p = x.shape
    if n < p:
        xd = x / penalty  # X D^-1, (N, P)
        return xd.T @ np.linalg.solve(xd @ x.T + np.eye(n), y)
    return np.linalg.solve(x.T @ x + np.diag(penalty), x.T @ y)


def fold_into_pairs(beta: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Fold every fitted term into a (4, 21, 21) pair table with identical predictions.

    The intercept is spread over the four pairs; layer l < 4's scale and unary terms go to
    the rows of pair l, layer 4's to the columns of pair 3.
    """
    table = np.asarray(table, dtype=np.float64)
    intercept, scales = beta[0], beta[1:1 + NUM_LAYERS]
    start = 1 + NUM_LAYERS
    unary = beta[start:start + NUM_LAYERS * NUM_CHOICES].reshape(NUM_LAYERS, NUM_CHOICES)
    pairs = beta[start + unary.size:].reshape(NUM_PAIRS, NUM_CHOICES, NUM_CHOICES).copy()
    per_layer = scales[:, None] * table + unary  # (5, 21)
    pairs += intercept / NUM_PAIRS
    pairs += per_layer[:NUM_PAIRS, :, None]
    pairs[-1] += per_layer[-1][None, :]
    return pairs


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def cv_mape(x: np.ndarray, y: np.ndarray, base: np.ndarray, penalty: np.ndarray,
            k: int = 5, seed: int = 0) -> float:
    """K-fold cross-validated MAPE of ``base + x @ beta`` against ``base + y`` (measured)."""
    errs = np.zeros(len(y))
    for test in _folds(len(y), min(k, len(y)), seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        beta = constrained_solve(x[train], y[train], penalty, _scale_bounds())
        errs[test] = np.abs(x[test] @ beta - y[test]) / (base[test] + y[test])
    return float(errs.mean())


def fit_interactions(table: np.ndarray, fixed_ms: float, choices: np.ndarray,
                     measured_ms: np.ndarray, alphas: Sequence[float] = ALPHAS,
                     seed: int = 0) -> InteractionFit:
    """Fit interaction terms to end-to-end timings by ridge least squares.

    Args:
        table: (5, 21) op entries in ms.
        fixed_ms: the LUT's fixed part (0 for a decoder-only table).
        choices: (N, 5) the fitting architectures (never the validation ones).
        measured_ms: (N,) their end-to-end latency.
        alphas: candidate overall ridge strengths; the one with the lowest k-fold MAPE wins.
        seed: seeds the cross-validation folds.

    Returns:
        The :class:`InteractionFit`: layer scales ``1 + s_l >= 0``, and a pair table shrunk if
        needed so that no architecture of the space drops below the floor
        (:func:`keep_positive`); the model stays positive everywhere.

    Raises:
        ValueError: with fewer than 5 architectures or mismatched shapes.
    """
    choices = np.asarray(choices, dtype=np.int64)
    measured = np.asarray(measured_ms, dtype=np.float64)
    if choices.ndim != 2 or choices.shape[1] != NUM_LAYERS or len(choices) != len(measured):
        raise ValueError(f"choices must be (N, 5) matching measured (N,), got {choices.shape} "
                         f"and {measured.shape}")
    if len(measured) < 5:
        raise ValueError(f"fit_interactions needs >= 5 architectures, got {len(measured)}")
    base = fixed_ms + op_sum(table, choices)
    y = measured - base
    best: tuple[str, float, float] | None = None  # (terms, alpha, cv)
    cv_by_terms: dict[str, float] = {}
    for name, groups in TERM_SETS:
        x, penalty = design_matrix(table, choices, groups)
        scores = [cv_mape(x, y, base, a * penalty, seed=seed) for a in alphas]
        i = int(np.argmin(scores))
        cv_by_terms[name] = float(scores[i])
        if best is None or scores[i] < (1.0 - RICHER_MUST_GAIN) * best[2]:
            best = (name, float(alphas[i]), float(scores[i]))
    assert best is not None
    terms, alpha, score = best
    groups = dict(TERM_SETS)[terms]
    x, penalty = design_matrix(table, choices, groups)
    beta = constrained_solve(x, y, alpha * penalty, _scale_bounds(),
                             _floor_violation(table, fixed_ms, groups))
    # the guarantee: half the floor, so a solution pinned at the floor is left as it is
    pairs, shrink = keep_positive(table, fixed_ms, fold_into_pairs(beta, table),
                                  FLOOR_FRACTION / 2)
    return InteractionFit(pairs=pairs, intercept=float(beta[0]), scales=beta[_SCALES].copy(),
                          alpha=alpha, cv_mape=score, n_archs=len(measured), terms=terms,
                          cv_by_terms=cv_by_terms, shrink=shrink,
                          min_ms=space_minimum(table, fixed_ms, pairs)[0])


def _scale_bounds() -> list[tuple[int, float]]:
    """Effective layer scales ``1 + s_l >= MIN_LAYER_SCALE`` as lower bounds on ``s_l``."""
    return [(j, MIN_LAYER_SCALE - 1.0) for j in range(_SCALES.start, _SCALES.stop)]


def _floor_violation(table: np.ndarray, fixed_ms: float, groups: tuple[str, ...]
                     ) -> Callable[[np.ndarray], tuple[np.ndarray, float] | None]:
    """The fastest architecture of the fitted model as a constraint, when below the floor.

    Returns a callback for :func:`constrained_solve`: the design row of that architecture
    and the target that puts it exactly at the floor.
    """
    floor = plain_floor(table, fixed_ms)

    def violation(beta: np.ndarray) -> tuple[np.ndarray, float] | None:
        low, best = space_minimum(table, fixed_ms, fold_into_pairs(beta, table))
        if low >= floor * (1.0 - 1e-6):
            return None
        arch = np.asarray([best])
        row = design_matrix(table, arch, groups)[0][0]
        return row, floor - (fixed_ms + float(op_sum(table, arch)[0]))

    return violation


def context_design(anchor: Sequence[int]) -> np.ndarray:
    """The one-layer-at-a-time architectures around ``anchor``: (5 * 20, 5) choice rows,
    layer by layer, choices in order, the anchor's own choice skipped."""
    rows = []
    for layer in range(NUM_LAYERS):
        for c in range(NUM_CHOICES):
            if c != anchor[layer]:
                row = list(anchor)
                row[layer] = c
                rows.append(row)
    return np.asarray(rows, dtype=np.int64)


def context_marginals(rows: np.ndarray, anchor: Sequence[int],
                      delta_ms: np.ndarray) -> np.ndarray:
    """Arrange the timings of :func:`context_design` rows as a (5, 21) marginal-cost table.

    Args:
        rows: (N, 5) architectures, each one layer away from ``anchor``.
        anchor: the anchor's five choices.
        delta_ms: (N,) each row's end-to-end time minus the anchor's.

    Returns:
        (5, 21) with ``delta`` at (changed layer, its choice) and 0 at the anchor's choices.
    """
    rows = np.asarray(rows, dtype=np.int64)
    changed = (rows != np.asarray(anchor)).argmax(axis=1)  # the layer each row changes
    marginal = np.zeros((NUM_LAYERS, NUM_CHOICES))
    marginal[changed, rows[np.arange(len(rows)), changed]] = delta_ms
    return marginal


def context_terms(table: np.ndarray, fixed_ms: float, anchor: Sequence[int], anchor_ms: float,
                  marginal_ms: np.ndarray,
                  floor_fraction: float | None = FLOOR_FRACTION) -> np.ndarray:
    """Pair table that makes the LUT reproduce in-graph marginal costs around an anchor.

    The model becomes ``anchor_ms + sum_l marginal[l, c_l]``: exact at the anchor and at every
    architecture one layer away from it, and additive in between.

    Args:
        table: (5, 21) stand-alone op entries in ms.
        fixed_ms: the LUT's fixed part.
        anchor: the anchor's five choices.
        anchor_ms: the anchor's end-to-end time.
        marginal_ms: (5, 21) end-to-end time change when layer l's choice becomes c (0 at the
            anchor's own choice), as measured with :func:`context_design`.
        floor_fraction: when the additive model would put some architecture below this
            fraction of the plain LUT's fastest (noisy marginals adding up), the marginals are
            scaled down just enough (:func:`linas.latency.constrained.largest_scale`): the
            anchor stays exact, its neighbours move toward it. None: no floor.

    Returns:
        (4, 21, 21) pair table (intercept and per-choice terms folded in).

    Raises:
        ValueError: on wrong shapes or a non-zero marginal at the anchor's own choice.
    """
    table = np.asarray(table, dtype=np.float64)
    marginal = np.asarray(marginal_ms, dtype=np.float64)
    anchor = [int(a) for a in anchor]
    layers = np.arange(NUM_LAYERS)
    if marginal.shape != (NUM_LAYERS, NUM_CHOICES) or len(anchor) != NUM_LAYERS:
        raise ValueError(f"marginal must be (5, 21) and anchor 5 choices, got {marginal.shape}"
                         f" and {len(anchor)}")
    if np.any(marginal[layers, anchor] != 0):
        raise ValueError("the marginal cost of the anchor's own choice must be 0")
    at_anchor = table[layers, anchor]  # (5,)

    def pairs_for(scale: float) -> np.ndarray:
        beta = np.zeros(1 + NUM_LAYERS + NUM_LAYERS * NUM_CHOICES
                        + NUM_PAIRS * NUM_CHOICES * NUM_CHOICES)
        beta[0] = anchor_ms - (fixed_ms + at_anchor.sum())
        unary = scale * marginal - (table - at_anchor[:, None])
        beta[1 + NUM_LAYERS:1 + NUM_LAYERS + unary.size] = unary.ravel()
        return fold_into_pairs(beta, table)

    if floor_fraction is None:
        return pairs_for(1.0)
    # at scale 0 every architecture is predicted at anchor_ms, so half of it is admissible
    floor = min(plain_floor(table, fixed_ms, floor_fraction), 0.5 * anchor_ms)
    return pairs_for(largest_scale(lambda t: space_minimum(table, fixed_ms, pairs_for(t))[0],
                                   floor))


MakePair = Callable[[int, int, int], Candidate]


def measure_pairs(make_pair: MakePair, runtime: Runtime, warmup: int, repeat: int,
                  rounds: int = 3, tick: Callable[[], None] | None = None) -> np.ndarray:
    """Time every adjacent pair of candidates back to back (one row of 21 at a time).

    Args:
        make_pair: ``(i, a, b) -> (module, input)`` running candidate (i, a) then (i+1, b).
        runtime: where to run (the LUT's runtime).
        warmup: untimed calls per pair.
        repeat: timed calls per pair.
        rounds: round-robin rounds within each row.
        tick: progress hook, once per pair.

    Returns:
        (4, 21, 21) mean pair latency in ms.
    """
    out = np.zeros((NUM_PAIRS, NUM_CHOICES, NUM_CHOICES))
    for i in range(NUM_PAIRS):
        for a in range(NUM_CHOICES):
            row = [make_pair(i, a, b) for b in range(NUM_CHOICES)]
            stats = time_in_runtime(runtime, row, warmup, repeat, rounds, tick)
            out[i, a] = [s.mean_ms for s in stats]
    return out

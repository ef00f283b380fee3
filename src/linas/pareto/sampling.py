"""Candidate samplers for Pareto search, by name: ``random``, ``logit``, ``stratified``.

Every sampler is ``sample(n, seed, ..., exclude=None) -> (n, 5)`` int64 choice indices of
``n`` distinct architectures, none of them in ``exclude`` (architecture ids), deterministic by
``seed``. Draws are made with replacement where that is natural and de-duplicated through
architecture ids, in rounds, until ``n`` distinct ones are found.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from linas._errors import ConfigError
from linas._registry import Registry
from linas.pareto.diversity import baseline_eval_subset, diverse_subset
from linas.space import NUM_CHOICES, NUM_LAYERS, choices_to_ids, ids_to_choices

# the selection of which candidates to evaluate lives in diversity.py; re-exported here
__all__ = [
    "SAMPLERS",
    "SPACE_SIZE",
    "baseline_eval_subset",
    "diverse_subset",
    "get_sampler",
    "mixed_candidates",
    "register_sampler",
    "sample",
    "sample_logit",
    "sample_random",
    "sample_stratified",
]

SPACE_SIZE = NUM_CHOICES**NUM_LAYERS  # 4,084,101 architectures
_MAX_ROUNDS = 64  # de-duplication rounds before giving up (only peaked logits get near it)

Sampler = Callable[..., np.ndarray]
LatencyTables = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]
SAMPLERS: Registry[Sampler] = Registry("sampler")


def register_sampler(name: str) -> Callable[[Sampler], Sampler]:
    """Decorator registering a sampler under ``name`` (``get_sampler`` finds it)."""
    return SAMPLERS.register(name)


def get_sampler(name: str) -> Sampler:
    """The sampler registered as ``name``.

    Raises:
        ConfigError: for an unknown name, listing the registered ones and the closest match.
    """
    return SAMPLERS.get(name)


def sample(name: str, n: int, seed: int, **kwargs: Any) -> np.ndarray:
    """Draw ``n`` distinct architectures, (n, 5) choices, with the sampler named ``name``."""
    return get_sampler(name)(n, seed, **kwargs)


def _fill_unique(
    n: int,
    rng: np.random.Generator,
    draw: Callable[[int], np.ndarray],
    exclude: np.ndarray | None,
    what: str,
) -> np.ndarray:
    """Collect ``n`` distinct ids not in ``exclude`` from rounds of ``draw(deficit)`` ids."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ConfigError(f"{what} sampler: n={n!r} must be a non-negative integer")
    seen = np.unique(np.asarray(exclude if exclude is not None else [], dtype=np.int64))
    if n + seen.shape[0] > SPACE_SIZE:
        raise ConfigError(
            f"{what} sampler: cannot draw {n} new architectures from "
            f"{SPACE_SIZE - seen.shape[0]} left; lower n"
        )
    chosen: list[np.ndarray] = []
    have = 0
    for _ in range(_MAX_ROUNDS):
        if have == n:
            break
        cand = np.asarray(draw(n - have), dtype=np.int64)
        _, first = np.unique(cand, return_index=True)
        cand = cand[np.sort(first)]  # distinct, in draw order
        cand = cand[~np.isin(cand, seen)][: n - have]
        chosen.append(cand)
        seen = np.union1d(seen, cand)
        have += cand.shape[0]
    if have < n:
        raise ConfigError(
            f"{what} sampler found only {have} distinct architectures of {n} in "
            f"{_MAX_ROUNDS} rounds; flatten the distribution (raise temperature)"
        )
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def _split_evenly(total: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` split into ``parts`` counts differing by at most one (extras at random)."""
    counts = np.full(parts, total // parts, dtype=np.int64)
    counts[rng.choice(parts, size=total % parts, replace=False)] += 1
    return counts


@register_sampler("random")
def sample_random(n: int, seed: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """``n`` distinct architectures uniform over the space.

    Args:
        n: how many.
        seed: random seed.
        exclude: architecture ids never to return.

    Returns:
        int64 choices, shape (n, 5).

    Raises:
        ConfigError: when ``n`` is negative or exceeds what is left of the space.
    """
    rng = np.random.default_rng(seed)
    ids = _fill_unique(
        n, rng, lambda m: rng.choice(SPACE_SIZE, size=m, replace=False), exclude, "random"
    )
    return ids_to_choices(ids)


def _softmax_rows(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Per-layer choice probabilities (5, 21) from logits (5, 21) at ``temperature``."""
    arr = np.asarray(logits, dtype=np.float64)
    if arr.shape != (NUM_LAYERS, NUM_CHOICES) or not np.all(np.isfinite(arr)):
        raise ConfigError(
            f"logits must be finite with shape ({NUM_LAYERS}, {NUM_CHOICES}), "
            f"got shape {arr.shape}; pass the architecture logits per layer"
        )
    if not temperature > 0:
        raise ConfigError(f"temperature {temperature!r} must be > 0; 1.0 samples the softmax")
    z = arr / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))  # shift for stability
    return z / z.sum(axis=1, keepdims=True)


@register_sampler("logit")
def sample_logit(
    n: int,
    seed: int,
    logits: np.ndarray,
    temperature: float = 1.0,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` distinct architectures, layer choices drawn from softmax(logits / temperature).

    Args:
        n: how many.
        seed: random seed.
        logits: architecture logits, shape (5, 21).
        temperature: > 0; higher flattens the distribution.
        exclude: architecture ids never to return.

    Returns:
        int64 choices, shape (n, 5).

    Raises:
        ConfigError: on bad logits or temperature, or when the distribution is too peaked to
            yield ``n`` distinct architectures.
    """
    probs = _softmax_rows(logits, temperature)
    rng = np.random.default_rng(seed)

    def draw(m: int) -> np.ndarray:
        m = m + m // 2 + 8  # oversample: duplicates are dropped, order is kept
        cols = [rng.choice(NUM_CHOICES, size=m, p=probs[i]) for i in range(NUM_LAYERS)]
        return choices_to_ids(np.stack(cols, axis=1))  # (m,)

    return ids_to_choices(_fill_unique(n, rng, draw, exclude, "logit"))


def _as_tables(latency_tables: LatencyTables) -> list[np.ndarray]:
    """Per-device exhaustive latency arrays, each (21**5,), checked."""
    if isinstance(latency_tables, Mapping):
        tables = [np.asarray(t) for t in latency_tables.values()]
    elif isinstance(latency_tables, np.ndarray) and latency_tables.ndim == 1:
        tables = [latency_tables]
    else:
        tables = [np.asarray(t) for t in latency_tables]
    if not tables:
        raise ConfigError("stratified sampler needs at least one device latency table")
    for d, t in enumerate(tables):
        if t.shape != (SPACE_SIZE,) or not np.all(np.isfinite(t)):
            raise ConfigError(
                f"latency table {d} has shape {t.shape} or non-finite values; pass "
                f"LUTLatencyModel(lut).exhaustive(), finite with shape ({SPACE_SIZE},)"
            )
    return tables


def _strata(table: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids arranged so that ``part[edges[b]:edges[b+1]]`` is latency quantile bin ``b``."""
    edges = np.linspace(0, SPACE_SIZE, bins + 1).round().astype(np.int64)
    # argpartition places each edge rank exactly: equal-count bins in O(N log bins), no sort
    part = np.argpartition(table, edges[1:-1]) if bins > 1 else np.arange(SPACE_SIZE)
    return part, edges


def _draw_strata(
    m: int, rng: np.random.Generator, strata: list[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """``m`` ids shared evenly among devices, then evenly among each device's bins."""
    out = []
    for (part, edges), m_dev in zip(strata, _split_evenly(m, len(strata), rng), strict=True):
        sizes = np.diff(edges)
        for b, m_bin in enumerate(_split_evenly(int(m_dev), sizes.shape[0], rng)):
            pos = rng.choice(int(sizes[b]), size=int(m_bin), replace=False) + edges[b]
            out.append(part[pos])
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


@register_sampler("stratified")
def sample_stratified(
    n: int,
    seed: int,
    latency_tables: LatencyTables,
    bins: int = 10,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """``n`` distinct architectures drawn evenly from latency quantile bins of each device.

    Each device's latency over the whole space is split into ``bins`` equal-count bins, so
    fast and slow regions are represented alike; ``n`` is shared evenly among devices, then
    among bins (remainders go to randomly chosen devices / bins).

    Args:
        n: how many.
        seed: random seed.
        latency_tables: one (21**5,) latency array per device (a 2-D array, a sequence or a
            name -> array mapping), e.g. ``LUTLatencyModel(lut).exhaustive()``.
        bins: quantile bins per device, >= 1.
        exclude: architecture ids never to return.

    Returns:
        int64 choices, shape (n, 5).

    Raises:
        ConfigError: on bad tables, bins or n.
    """
    if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
        raise ConfigError(f"stratified sampler: bins={bins!r} must be an integer >= 1")
    strata = [_strata(t, int(bins)) for t in _as_tables(latency_tables)]
    rng = np.random.default_rng(seed)
    ids = _fill_unique(n, rng, lambda m: _draw_strata(m, rng, strata), exclude, "stratified")
    return ids_to_choices(ids)


def _largest_remainder(n: int, shares: Sequence[float]) -> np.ndarray:
    """Integer counts summing to ``n`` in proportion to ``shares``."""
    w = np.asarray(shares, dtype=np.float64)
    if w.shape != (3,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(
            f"shares {tuple(shares)!r} must be 3 non-negative numbers "
            "(random, logit, stratified) with a positive sum"
        )
    raw = n * w / w.sum()
    counts = np.floor(raw).astype(np.int64)
    extra = np.argsort(-(raw - counts), kind="stable")[: n - int(counts.sum())]
    counts[extra] += 1
    return counts


def mixed_candidates(
    n: int,
    seed: int,
    logits: np.ndarray | None,
    latency_tables: LatencyTables,
    shares: tuple[float, float, float] = (0.4, 0.3, 0.3),
    temperature: float = 1.0,
    bins: int = 10,
) -> np.ndarray:
    """``n`` distinct candidates: random, logit-guided and latency-stratified, in that order.

    Args:
        n: how many in total.
        seed: random seed; each part gets its own child seed.
        logits: architecture logits (5, 21), or None for uniform logits.
        latency_tables: per-device (21**5,) latency arrays for the stratified part.
        shares: (random, logit, stratified) proportions; counts by largest remainder.
        temperature: softmax temperature of the logit part.
        bins: quantile bins per device of the stratified part.

    Returns:
        int64 choices, shape (n, 5): the random rows first, then logit, then stratified.

    Raises:
        ConfigError: on bad shares or any sampler's bad input.
    """
    counts = _largest_remainder(n, shares)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3)]
    logits_a = np.zeros((NUM_LAYERS, NUM_CHOICES)) if logits is None else logits
    parts: list[np.ndarray] = []
    taken = np.empty(0, dtype=np.int64)
    for name, count, child in zip(("random", "logit", "stratified"), counts, seeds, strict=True):
        kwargs: dict[str, Any] = {"exclude": taken}
        if name == "logit":
            kwargs.update(logits=logits_a, temperature=temperature)
        elif name == "stratified":
            kwargs.update(latency_tables=latency_tables, bins=bins)
        part = sample(name, int(count), child, **kwargs)
        parts.append(part)
        taken = np.concatenate([taken, choices_to_ids(part)])
    return np.concatenate(parts, axis=0)

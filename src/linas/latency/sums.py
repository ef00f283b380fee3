"""The one summation of the latency model ``fixed + sum_l table[l, c_l] + sum_i P_i[c_i, c_i+1]``.

Per architecture (:func:`arch_sums`), over the whole space (:func:`space_sums`) and its exact
minimum (:func:`space_minimum`, a min-plus pass along the layer chain, 5 x 21 x 21 work instead
of 21**5), which :func:`require_positive` checks. The first two add the terms in the same
order (five entries layer by layer, the fixed part, then the four pair terms), one float64
addition at a time, so that they agree bit for bit. Pure numpy.
"""

from __future__ import annotations

import numpy as np

from linas._errors import LUTError
from linas.space import NUM_CHOICES, NUM_LAYERS, Arch

NUM_PAIRS = NUM_LAYERS - 1


def arch_sums(table: np.ndarray, fixed: float, pairs: np.ndarray | None,
              choices: np.ndarray) -> np.ndarray:
    """Latency (N,) of architectures given as choice indices (N, 5).

    Args:
        table: (5, 21) op entries in ms.
        fixed: the fixed part in ms (0 for none).
        pairs: (4, 21, 21) adjacent-pair terms, or None.
        choices: (N, 5) choice indices.
    """
    table = np.asarray(table, dtype=np.float64)
    choices = np.asarray(choices, dtype=np.int64)
    out = np.zeros(len(choices))
    for layer in range(NUM_LAYERS):
        out = out + table[layer][choices[:, layer]]
    out = out + float(fixed)
    if pairs is not None:
        for i in range(NUM_PAIRS):
            out = out + pairs[i][choices[:, i], choices[:, i + 1]]
    return out


def space_sums(table: np.ndarray, fixed: float, pairs: np.ndarray | None) -> np.ndarray:
    """Latency of all 21**5 architectures, float64, indexed by architecture id.

    Broadcasts five (21,) rows and four (21, 21) pair terms into a 5-D grid whose C-order
    flattening matches :func:`linas.space.choices_to_ids`; equals :func:`arch_sums` bit for bit.
    """
    table = np.asarray(table, dtype=np.float64)
    grid = np.zeros((NUM_CHOICES,) * NUM_LAYERS)  # (21, 21, 21, 21, 21)
    for layer in range(NUM_LAYERS):
        shape = [1] * NUM_LAYERS
        shape[layer] = NUM_CHOICES
        grid += table[layer].reshape(shape)
    grid += float(fixed)
    if pairs is not None:
        for i in range(NUM_PAIRS):
            shape = [1] * NUM_LAYERS
            shape[i], shape[i + 1] = NUM_CHOICES, NUM_CHOICES
            grid += np.asarray(pairs[i], dtype=np.float64).reshape(shape)
    return grid.reshape(-1)


def space_minimum(table: np.ndarray, fixed: float,
                  pairs: np.ndarray | None) -> tuple[float, tuple[int, ...]]:
    """The fastest architecture of the space and its latency, exactly.

    Without pair terms every layer is chosen on its own; with them, a min-plus (Viterbi) pass
    along the chain layer 0 -> 4 finds the minimum. The latency returned is recomputed with
    :func:`arch_sums`, so it equals the model's prediction for that architecture bit for bit.

    Returns:
        ``(latency_ms, choices)`` with five choice indices.
    """
    table = np.asarray(table, dtype=np.float64)
    if pairs is None:
        best = tuple(int(c) for c in table.argmin(axis=1))
    else:
        cost = table[0].copy()  # (21,) best cost of layers 0..l ending in each choice
        back = []
        for layer in range(1, NUM_LAYERS):
            step = cost[:, None] + pairs[layer - 1] + table[layer][None, :]  # (21 prev, 21 next)
            back.append(step.argmin(axis=0))
            cost = step.min(axis=0)
        last = int(cost.argmin())
        path = [last]
        for idx in reversed(back):
            path.append(int(idx[path[-1]]))
        best = tuple(reversed(path))
    value = float(arch_sums(table, fixed, pairs, np.asarray([best]))[0])
    return value, best


def require_positive(table: np.ndarray, fixed_ms: float, pairs: np.ndarray | None,
                     where: str) -> tuple[float, tuple[int, ...]] | None:
    """Refuse a latency model ``fixed + ops + pairs`` whose fastest architecture is <= 0 ms.

    Args:
        table: (5, 21) op entries (positive).
        fixed_ms: the fixed part added (0 for none).
        pairs: (4, 21, 21) pair terms, or None (then the sum is positive by construction).
        where: names the source in the message, e.g. ``LUT path/to/file.json``.

    Returns:
        The exact ``(minimum ms, its choices)`` when ``pairs`` were checked, else None.

    Raises:
        LUTError: naming ``where``, the minimum, the architecture and the fix.
    """
    if pairs is None:
        return None
    low, best = space_minimum(table, fixed_ms, pairs)
    if not low > 0.0:
        raise LUTError(
            f"{where}: its interaction terms make the predicted latency {low:.4g} ms (<= 0) for "
            f"{Arch(best)}; the terms are not physical: re-measure with `linas lut measure "
            "--interactions fit|context` (which keeps every architecture positive) or delete "
            "the 'interactions' block")
    return low, best

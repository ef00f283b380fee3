"""The exhaustive (float64) latency of the whole space equals the model's predictions bit for
bit."""

from __future__ import annotations

import numpy as np

from linas.latency.model import LUTLatencyModel
from linas.space import ids_to_choices


def test_exact_latencies_equal_predict_with_fixed_part_and_pairs() -> None:
    rng = np.random.default_rng(0)
    model = LUTLatencyModel.__new__(LUTLatencyModel)  # no LUT file needed: set the tables
    model.table = rng.random((5, 21)) * 10
    model.fixed = 17.3
    model.pairs = rng.normal(size=(4, 21, 21)) * 0.1
    lat = model.exhaustive()
    assert lat.shape == (21**5,) and lat.dtype == np.float64
    ids = rng.choice(21**5, size=20_000, replace=False)
    np.testing.assert_array_equal(lat[ids], model.predict(ids_to_choices(ids)))
    assert np.argmin(lat) == np.argmin(model.predict(ids_to_choices(np.arange(21**5))))

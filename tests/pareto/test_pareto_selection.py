"""Budget-constrained selection."""

from __future__ import annotations

import numpy as np
import pytest

from linas._errors import ConfigError
from linas.pareto import budget_share, select_under_budget


def test_most_accurate_within_budget() -> None:
    lat = np.array([100.0, 150.0, 160.0, 170.0])
    acc = np.array([0.5, 0.6, 0.7, 0.9])
    assert select_under_budget(lat, acc, 160.0) == 2  # the budget is inclusive
    assert select_under_budget(lat, acc, 155.0) == 1
    assert select_under_budget(lat, acc, 1000.0) == 3


def test_ties_go_to_lower_latency_then_index() -> None:
    lat = np.array([150.0, 120.0, 120.0, 90.0])
    acc = np.array([0.8, 0.8, 0.8, 0.7])
    assert select_under_budget(lat, acc, 160.0) == 1


def test_none_meets_budget() -> None:
    assert select_under_budget(np.array([200.0, 300.0]), np.array([0.5, 0.6]), 160.0) is None
    assert select_under_budget(np.array([]), np.array([]), 160.0) is None


def test_budget_share() -> None:
    assert budget_share(np.array([100.0, 160.0, 161.0, 500.0]), 160.0) == 0.5
    assert budget_share(np.arange(10.0), -1.0) == 0.0
    with pytest.raises(ConfigError, match="empty"):
        budget_share(np.array([]), 160.0)
    with pytest.raises(ConfigError, match="NaN"):
        budget_share(np.array([1.0]), float("nan"))

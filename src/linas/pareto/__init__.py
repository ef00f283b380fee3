"""pareto."""

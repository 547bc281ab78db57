"""Baselines trained directly on raw data, for honest comparison with FourM transfer."""

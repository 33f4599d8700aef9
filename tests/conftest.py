"""Shared test helpers: tolerances derived from the sample size."""

import math

import pytest
import torch

# Probability that a correct sampler fails a 5-sigma check is ~6e-7; every test is seeded anyway.
Z = 5.0

UNIFORM_KURTOSIS = 9 / 5  # E[x⁴]/σ⁴ of U[-a, a]
NORMAL_KURTOSIS = 3.0


def var_tolerance(n: int, variance: float, kurtosis: float) -> float:
    """Z standard errors of the sample variance of n draws: sd(s²) ≈ σ²·sqrt((κ − 1)/n)."""
    return Z * variance * math.sqrt((kurtosis - 1) / n)


def mean_tolerance(n: int, variance: float) -> float:
    """Z standard errors of the sample mean of n draws."""
    return Z * math.sqrt(variance / n)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _seed_global_rng():
    """Every test starts from the same global RNG state, so torch's own layer init is reproducible."""
    torch.manual_seed(0)

"""signalprop.init's tensor initializers: parity with torch, distributions, errors."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from signalprop import init
from signalprop.init import Fans

from .conftest import NORMAL_KURTOSIS, UNIFORM_KURTOSIS, mean_tolerance, var_tolerance

SHAPES_2D = [(1, 1), (3, 5), (64, 32), (7, 300), (300, 7), (128, 128)]
GAINS = [1.0, 0.5, 5 / 3, math.sqrt(2.0), 3.7]


def _pair(ours, theirs, shape, dtype=torch.float32, seed=0):
    a = ours(torch.empty(shape, dtype=dtype), torch.Generator().manual_seed(seed))
    b = theirs(torch.empty(shape, dtype=dtype), torch.Generator().manual_seed(seed))
    return a, b


# ---------------------------------------------------------------- bit parity with torch.nn.init
PARITY = {
    "xavier_uniform": (
        lambda g: lambda t, gen: init.xavier_uniform_(t, g, generator=gen),
        lambda g: lambda t, gen: torch.nn.init.xavier_uniform_(t, g, generator=gen),
    ),
    "xavier_normal": (
        lambda g: lambda t, gen: init.xavier_normal_(t, g, generator=gen),
        lambda g: lambda t, gen: torch.nn.init.xavier_normal_(t, g, generator=gen),
    ),
    "kaiming_uniform": (
        lambda g: lambda t, gen: init.kaiming_uniform_(t, g, generator=gen),
        # torch's leaky_relu gain sqrt(2/(1+a²)) equals g for a = sqrt(2/g² − 1); pass the gain itself.
        lambda g: lambda t, gen: torch.nn.init.uniform_(t, -math.sqrt(3.0) * (g / math.sqrt(t.shape[1])),
                                                        math.sqrt(3.0) * (g / math.sqrt(t.shape[1])), generator=gen),
    ),
    "kaiming_normal": (
        lambda g: lambda t, gen: init.kaiming_normal_(t, g, generator=gen),
        lambda g: lambda t, gen: torch.nn.init.normal_(t, 0.0, g / math.sqrt(t.shape[1]), generator=gen),
    ),
    "orthogonal": (
        lambda g: lambda t, gen: init.orthogonal_(t, g, generator=gen),
        lambda g: lambda t, gen: torch.nn.init.orthogonal_(t, g, generator=gen),
    ),
}


@pytest.mark.parametrize("name", sorted(PARITY))
@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("gain", GAINS)
def test_bit_parity_with_torch(name, shape, gain):
    ours, theirs = PARITY[name]
    a, b = _pair(ours(gain), theirs(gain), shape)
    assert torch.equal(a, b)


@pytest.mark.parametrize("shape", SHAPES_2D)
def test_kaiming_parity_with_torch_activation_names(shape):
    for ours_kw, torch_kw in [
        ({}, {"nonlinearity": "relu"}),
        ({"activation": "relu"}, {"nonlinearity": "relu"}),
        ({"activation": "leaky_relu"}, {"a": 0.01}),
        ({"activation": torch.nn.LeakyReLU(0.2)}, {"a": 0.2}),
        ({"activation": "linear"}, {"nonlinearity": "linear"}),
        ({"mode": "fan_out"}, {"mode": "fan_out", "nonlinearity": "relu"}),
    ]:
        for fn, tfn in [(init.kaiming_uniform_, torch.nn.init.kaiming_uniform_),
                        (init.kaiming_normal_, torch.nn.init.kaiming_normal_)]:
            a, b = _pair(lambda t, g: fn(t, generator=g, **ours_kw), lambda t, g: tfn(t, generator=g, **torch_kw), shape)
            assert torch.equal(a, b), (fn.__name__, ours_kw)


def test_parity_in_float64_and_with_global_rng():
    for ours, theirs in [(init.xavier_uniform_, torch.nn.init.xavier_uniform_),
                         (init.xavier_normal_, torch.nn.init.xavier_normal_)]:
        a, b = _pair(lambda t, g: ours(t, 1.3, generator=g), lambda t, g: theirs(t, 1.3, generator=g),
                     (40, 70), torch.float64)
        assert torch.equal(a, b)
        torch.manual_seed(7)
        a = ours(torch.empty(20, 30))
        torch.manual_seed(7)
        b = theirs(torch.empty(20, 30))
        assert torch.equal(a, b)


def test_sqrt_of_squared_gain_is_the_gain():
    """The presets pass scale = gain²; torch's rounding needs sqrt(gain²) == gain exactly."""
    g = torch.Generator().manual_seed(0)
    gains = torch.exp(torch.empty(20000, dtype=torch.float64).uniform_(-20, 20, generator=g)).tolist()
    assert all(math.sqrt(x * x) == x for x in gains)


# ---------------------------------------------------------------- distributions
def test_xavier_uniform_bound_and_variance(gen):
    fan_in, fan_out = 400, 600
    w = init.xavier_uniform_(torch.empty(fan_out, fan_in), generator=gen)
    a = math.sqrt(6 / (fan_in + fan_out))  # the seed's bound
    assert w.abs().max() <= a
    assert w.abs().max() > 0.99 * a
    var = a * a / 3  # Var U[-a, a] = a²/3 = 2/(fan_in + fan_out)
    assert var == pytest.approx(2 / (fan_in + fan_out))
    n = w.numel()
    assert abs(w.double().var().item() - var) < var_tolerance(n, var, UNIFORM_KURTOSIS)
    assert abs(w.double().mean().item()) < mean_tolerance(n, var)


def test_xavier_normal_std_is_the_seeds(gen):
    fan_in, fan_out = 300, 500
    w = init.xavier_normal_(torch.empty(fan_out, fan_in), generator=gen).double()
    var = 2 / (fan_in + fan_out)
    assert abs(w.var().item() - var) < var_tolerance(w.numel(), var, NORMAL_KURTOSIS)
    assert stats.kstest(w.flatten().numpy(), stats.norm(scale=math.sqrt(var)).cdf).pvalue > 1e-3


TRUNC_KURTOSIS = float(stats.truncnorm(-2, 2).stats(moments="k")) + 3


@pytest.mark.parametrize(
    "fn, var_of, kurtosis",
    [
        (lambda t, g: init.kaiming_uniform_(t, generator=g), lambda fi, fo: 2 / fi, UNIFORM_KURTOSIS),
        (lambda t, g: init.kaiming_normal_(t, generator=g), lambda fi, fo: 2 / fi, NORMAL_KURTOSIS),
        (lambda t, g: init.kaiming_normal_(t, mode="fan_out", generator=g), lambda fi, fo: 2 / fo, NORMAL_KURTOSIS),
        (lambda t, g: init.lecun_uniform_(t, generator=g), lambda fi, fo: 1 / fi, UNIFORM_KURTOSIS),
        (lambda t, g: init.lecun_normal_(t, generator=g), lambda fi, fo: 1 / fi, NORMAL_KURTOSIS),
        (lambda t, g: init.lecun_normal_(t, 2.0, generator=g), lambda fi, fo: 4 / fi, NORMAL_KURTOSIS),
        (lambda t, g: init.normal_(t, generator=g), lambda fi, fo: 1e-4, NORMAL_KURTOSIS),
        (lambda t, g: init.variance_scaling_(t, 3.0, "fan_avg", "truncated_normal", generator=g),
         lambda fi, fo: 6 / (fi + fo), TRUNC_KURTOSIS),
    ],
)
def test_scheme_variances(fn, var_of, kurtosis, gen):
    fan_in, fan_out = 250, 160
    w = fn(torch.empty(fan_out, fan_in), gen).double()
    var = var_of(fan_in, fan_out)
    assert abs(w.var().item() - var) < var_tolerance(w.numel(), var, kurtosis)
    assert abs(w.mean().item()) < mean_tolerance(w.numel(), var)


@pytest.mark.parametrize("distribution", init.DISTRIBUTIONS)
@pytest.mark.parametrize("mode", init.MODES)
def test_variance_scaling_matches_scipy(distribution, mode, gen):
    fans = Fans(90, 210)
    n = {"fan_in": 90, "fan_out": 210, "fan_avg": 150}[mode]
    scale = 2.5
    std = math.sqrt(scale / n)
    w = init.variance_scaling_(torch.empty(300, 200, dtype=torch.float64), scale, mode, distribution,
                               fans=fans, generator=gen).flatten().numpy()
    if distribution == "uniform":
        ref = stats.uniform(loc=-math.sqrt(3) * std, scale=2 * math.sqrt(3) * std)
    elif distribution == "normal":
        ref = stats.norm(scale=std)
    else:
        sigma = std / init.TRUNCATED_NORMAL_STD
        ref = stats.truncnorm(-2, 2, scale=sigma)
        assert abs(w).max() <= 2 * sigma
    assert ref.std() == pytest.approx(std, rel=1e-12)
    assert stats.kstest(w, ref.cdf).pvalue > 1e-3


def test_truncated_normal_constant():
    assert stats.truncnorm(-2, 2).std() == pytest.approx(init.TRUNCATED_NORMAL_STD, rel=1e-15)


def test_orthogonal_is_orthogonal_with_gain(gen):
    for shape in [(64, 64), (32, 100), (100, 32), (16, 4, 3, 3)]:
        w = init.orthogonal_(torch.empty(shape, dtype=torch.float64), 1.5, generator=gen)
        m = w.reshape(shape[0], -1)
        small = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
        assert torch.allclose(small, 2.25 * torch.eye(small.shape[0], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_orthogonal_low_precision_works_where_torch_fails(dtype, gen):
    with pytest.raises(NotImplementedError):
        torch.nn.init.orthogonal_(torch.empty(8, 8, dtype=dtype))
    w = init.orthogonal_(torch.empty(64, 48, dtype=dtype), generator=gen)
    assert w.dtype == dtype
    eps = torch.finfo(dtype).eps
    gram = w.float().T @ w.float()
    assert torch.allclose(gram, torch.eye(48), atol=8 * eps)


# ---------------------------------------------------------------- table: every initializer × shape × dtype
INITIALIZERS = {
    "variance_scaling": lambda t, g: init.variance_scaling_(t, generator=g),
    "variance_scaling_uniform": lambda t, g: init.variance_scaling_(t, 2.0, "fan_out", "uniform", generator=g),
    "xavier_uniform": lambda t, g: init.xavier_uniform_(t, generator=g),
    "xavier_normal": lambda t, g: init.xavier_normal_(t, generator=g),
    "kaiming_uniform": lambda t, g: init.kaiming_uniform_(t, generator=g),
    "kaiming_normal": lambda t, g: init.kaiming_normal_(t, generator=g),
    "lecun_uniform": lambda t, g: init.lecun_uniform_(t, generator=g),
    "lecun_normal": lambda t, g: init.lecun_normal_(t, generator=g),
    "orthogonal": lambda t, g: init.orthogonal_(t, generator=g),
    "normal": lambda t, g: init.normal_(t, generator=g),
    "constant": lambda t, g: init.constant_(t, 0.5),
    "zeros": lambda t, g: init.zeros_(t),
}
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
SHAPES = [(5, 3), (16, 8, 3), (4, 2, 3, 3), (2, 3, 2, 2, 2)]


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_table_shape_dtype_finite_reproducible(name, shape, dtype):
    fn = INITIALIZERS[name]
    t = torch.empty(shape, dtype=dtype)
    out = fn(t, torch.Generator().manual_seed(3))
    assert out is t and out.shape == shape and out.dtype == dtype
    assert torch.isfinite(out).all()
    again = fn(torch.empty(shape, dtype=dtype), torch.Generator().manual_seed(3))
    assert torch.equal(out, again)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_meta_tensor_is_a_no_op(name):
    t = torch.empty(6, 4, device="meta")
    assert INITIALIZERS[name](t, None) is t


@pytest.mark.parametrize("name", sorted(set(INITIALIZERS) - {"constant", "zeros"}))
def test_generator_leaves_global_rng_alone(name):
    torch.manual_seed(11)
    before = torch.get_rng_state()
    INITIALIZERS[name](torch.empty(10, 6), torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), before)
    a = INITIALIZERS[name](torch.empty(10, 6), torch.Generator().manual_seed(1))
    b = INITIALIZERS[name](torch.empty(10, 6), torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)


def test_parameters_with_grad_are_filled_without_tracking():
    p = torch.nn.Parameter(torch.empty(4, 4))
    init.xavier_uniform_(p)
    assert p.grad_fn is None and p.requires_grad


# ---------------------------------------------------------------- errors
FAN_BASED = ["variance_scaling", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal",
             "lecun_uniform", "lecun_normal", "orthogonal"]


@pytest.mark.parametrize("name", FAN_BASED)
def test_fan_based_needs_two_dims(name):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        INITIALIZERS[name](torch.empty(5), None)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool])
def test_integer_and_bool_dtypes_are_refused(name, dtype):
    with pytest.raises(TypeError, match="floating-point"):
        INITIALIZERS[name](torch.zeros(4, 4, dtype=dtype), None)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_bad_gain_scale_std(bad):
    t = torch.zeros(3, 3)
    for call, param in [
        (lambda: init.xavier_uniform_(t, bad), "gain"),
        (lambda: init.kaiming_normal_(t, bad), "gain"),
        (lambda: init.orthogonal_(t, bad), "gain"),
        (lambda: init.variance_scaling_(t, bad), "scale"),
        (lambda: init.normal_(t, bad), "std"),
    ]:
        with pytest.raises(ValueError, match=param):
            call()
        assert torch.equal(t, torch.zeros(3, 3))


def test_unknown_names_list_the_allowed_values():
    t = torch.empty(3, 3)
    with pytest.raises(ValueError, match="allowed: fan_in, fan_out, fan_avg"):
        init.variance_scaling_(t, mode="fan_sum")
    with pytest.raises(ValueError, match="allowed: normal, truncated_normal, uniform"):
        init.variance_scaling_(t, distribution="cauchy")
    with pytest.raises(ValueError, match="allowed: identity, linear, relu, leaky_relu"):
        init.kaiming_uniform_(t, activation="sparkle")
    init.variance_scaling_(t, mode="FAN_AVG", distribution="Uniform")  # case-insensitive
    with pytest.raises(ValueError, match="either gain or activation"):
        init.kaiming_normal_(t, 2.0, activation="relu")


def test_zero_element_tensor_warns_and_is_unchanged():
    t = torch.empty(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.xavier_uniform_(t) is t
    with pytest.warns(UserWarning, match="zero-element"):
        init.orthogonal_(torch.empty(4, 0))


def test_bad_fans_argument():
    with pytest.raises(ValueError, match="fan_in"):
        init.variance_scaling_(torch.empty(3, 3), fans=(0, 3))
    with pytest.raises(TypeError, match="fans must be"):
        init.variance_scaling_(torch.empty(3, 3), fans="wide")
    w = init.variance_scaling_(torch.empty(2000), 1.0, "fan_in", "uniform", fans=(4, 4),
                               generator=torch.Generator().manual_seed(0))
    assert w.abs().max() <= math.sqrt(3 / 4)  # explicit fans make 1-D tensors legal


# ---------------------------------------------------------------- property test
@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    name=st.sampled_from(["xavier_uniform", "kaiming_uniform", "lecun_uniform", "variance_scaling_uniform"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_uniform_bounds_hold(shape, name, seed):
    t = INITIALIZERS[name](torch.empty(shape, dtype=torch.float64), torch.Generator().manual_seed(seed))
    f = init.fans(t)
    n_of = {
        "xavier_uniform": (1.0, (f.fan_in + f.fan_out) / 2),
        "kaiming_uniform": (2.0, f.fan_in),
        "lecun_uniform": (1.0, f.fan_in),
        "variance_scaling_uniform": (2.0, f.fan_out),
    }
    scale, n = n_of[name]
    assert t.abs().max().item() <= math.sqrt(3 * scale / n) * (1 + 1e-12)

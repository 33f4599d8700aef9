"""signalprop.activations: registry, Taylor expansions, the seed's linear regime, gains."""

import math

import pytest
import torch
from scipy import integrate
from torch import nn

from signalprop import activations as A
from signalprop import init, init_model
from signalprop.theory import expect

GRID = torch.linspace(-6, 6, 1001, dtype=torch.float64)


@pytest.mark.parametrize("name", A.NAMES)
def test_every_name_works_as_function_and_module(name):
    act = A.get(name.upper())
    y = act(GRID)
    assert y.shape == GRID.shape and torch.isfinite(y).all()
    module = act.module()
    assert isinstance(module, nn.Module)
    assert torch.equal(module(GRID), y)
    assert A.resolve(module).name == act.name  # modules round-trip with their parameters


def test_torch_modules_are_recognised_with_parameters():
    assert A.resolve(nn.LeakyReLU(0.2)).closed_form == 0.2
    assert A.resolve(nn.ReLU6()).kinks == (0.0, 6.0)
    assert A.resolve(nn.GELU(approximate="tanh")).name == "gelu_tanh"
    assert A.resolve(nn.ELU(0.5)).name == "elu(0.5)"
    assert A.resolve(nn.Hardtanh(-2, 3)).kinks == (-2.0, 3.0)
    assert A.get("leaky_relu:0.3").name == A.get("leaky_relu", 0.3).name == "leaky_relu(0.3)"
    assert A.get("hardtanh:-2:2").kinks == (-2.0, 2.0)


def test_scaled_sigmoid_is_two_tanh_half():
    assert torch.allclose(A.scaled_sigmoid(GRID), 4 * torch.sigmoid(GRID) - 2, atol=1e-15, rtol=0)
    assert torch.equal(A.ScaledSigmoid()(GRID), A.scaled_sigmoid(GRID))


def test_scaled_sigmoid_keeps_a_small_signal():
    # 4·sigmoid(x) − 2 cancels to exactly 0 in float32 once sigmoid(x) rounds to 1/2; 2·tanh(x/2) ≈ x
    tiny = torch.tensor([1e-20, -3e-9, 1e-30], dtype=torch.float32)
    assert torch.all(4 * torch.sigmoid(tiny) - 2 == 0)
    assert torch.allclose(A.scaled_sigmoid(tiny), tiny, rtol=1e-6, atol=0)


def test_callables_and_unknown_modules():
    act = A.resolve(lambda x: x * torch.sigmoid(2 * x))
    assert act.kinks == () and torch.equal(act(GRID), GRID * torch.sigmoid(2 * GRID))

    class Sine(nn.Module):
        def forward(self, x):
            return torch.sin(x)

    assert A.resolve(Sine()).name == "Sine"
    assert A.resolve(torch.abs, kinks=(0.0,)).kinks == (0.0,)


def test_registry_errors():
    with pytest.raises(ValueError, match="unknown activation 'swishy'; allowed: identity, linear, relu"):
        A.get("swishy")
    with pytest.raises(TypeError, match="activation must be a name"):
        A.resolve(3.0)
    with pytest.raises(ValueError, match="parameters after ':' must be numbers"):
        A.get("leaky_relu:x")
    with pytest.raises(TypeError, match="activation 'tanh'"):
        A.get("tanh", 3.0)


# ---------------------------------------------------------------- Taylor
@pytest.mark.parametrize(
    "name, expected",
    [
        ("sigmoid", (1 / 2, 1 / 4, 0, -1 / 48)),
        ("tanh", (0, 1, 0, -1 / 3)),
        ("scaled_sigmoid", (0, 1, 0, -1 / 12)),
        ("identity", (0, 1, 0, 0)),
        ("gelu", (0, 1 / 2, 1 / math.sqrt(2 * math.pi), 0)),
    ],
)
def test_taylor_reproduces_the_seed(name, expected):
    t = A.taylor(name)
    assert t.exists
    assert t.coefficients == pytest.approx(expected, abs=1e-10, rel=0)


def test_taylor_at_other_points_matches_closed_form():
    at = 0.7
    t = A.taylor("tanh", order=3, at=at)
    th = math.tanh(at)
    d1 = 1 - th**2
    d2 = -2 * th * d1
    d3 = -2 * d1 * d1 + 4 * th * th * d1
    assert t.coefficients == pytest.approx((th, d1, d2 / 2, d3 / 6), abs=1e-12)


@pytest.mark.parametrize(
    "act, at, left, right, smooth_to",
    [
        ("relu", 0.0, (0, 0), (0, 1), 0),
        ("leaky_relu:0.1", 0.0, (0, 0.1), (0, 1), 0),
        ("hardtanh", 1.0, (1, 1), (1, 0), 0),
        ("hardtanh", -1.0, (-1, 0), (-1, 1), 0),
        ("elu", 0.0, (0, 1), (0, 1), 1),
        ("selu", 0.0, (0, 1.0507009873554805 * 1.6732632423543772), (0, 1.0507009873554805), 0),
    ],
)
def test_taylor_at_a_kink_reports_one_sided_derivatives(act, at, left, right, smooth_to):
    t = A.taylor(act, order=3, at=at)
    assert not t.exists and t.coefficients is None
    assert t.left[:2] == pytest.approx(left, abs=1e-10)
    assert t.right[:2] == pytest.approx(right, abs=1e-10)
    assert t.smooth_to == smooth_to
    assert "no Taylor expansion" in str(t)


def test_kink_of_a_plain_callable_is_detected():
    t = A.taylor(torch.abs)
    assert not t.exists and t.left[1] == pytest.approx(-1) and t.right[1] == pytest.approx(1)
    assert A.taylor("relu", order=3, at=0.5).coefficients == pytest.approx((0.5, 1, 0, 0))


def test_softsign_third_derivative_jumps_at_zero():
    # x/(1+|x|) = x − x|x| + …: the x² coefficient is −sign(x), so no expansion beyond order 1
    t = A.taylor("softsign")
    assert t.smooth_to == 1 and t.left[2] == pytest.approx(1) and t.right[2] == pytest.approx(-1)


# ---------------------------------------------------------------- linear regime and normalize
def test_linear_regime_seed_table():
    sig = A.linear_regime("sigmoid")
    assert (sig.beta, sig.alpha, sig.cubic) == (0.5, 0.25, pytest.approx(-1 / 48, abs=1e-12))
    assert not sig.holds and sig.check == "✗"
    assert "β = 0.5 ≠ 0" in sig.verdict()
    for name in ("tanh", "scaled_sigmoid", "identity"):
        assert A.linear_regime(name).holds and A.linear_regime(name).check == "✓"
    relu = A.linear_regime("relu")
    assert relu.alpha is None and relu.holds_right and relu.check == "✓ (x ≥ 0)"
    assert A.linear_regime(lambda x: -torch.tanh(x)).holds  # α = −1 is allowed


def test_normalize_sigmoid_is_exactly_the_scaled_sigmoid():
    assert A.normalizing_affine("sigmoid") == (4.0, -2.0)
    fixed = A.normalize("sigmoid")
    assert torch.allclose(fixed(GRID), A.scaled_sigmoid(GRID), atol=1e-15, rtol=0)
    assert fixed.name == "4·sigmoid(x) - 2"
    assert A.linear_regime(fixed).holds
    assert A.normalizing_affine("tanh") == (1.0, 0.0)
    a, b = A.normalizing_affine("softplus")  # softplus(0) = ln 2, slope 1/2
    assert (a, b) == pytest.approx((2.0, -2 * math.log(2)))


def test_normalize_errors():
    with pytest.raises(ValueError, match="kink at 0"):
        A.normalize("relu")
    with pytest.raises(ValueError, match="act'\\(0\\) = 0"):
        A.normalize(torch.cos)


# ---------------------------------------------------------------- expectations against scipy
def _quad(fn, q, mean, kinks):
    s = math.sqrt(q)
    pts = sorted({(k - mean) / s for k in kinks} | {0.0})

    def g(z):
        x = torch.tensor([mean + s * z], dtype=torch.float64)
        return float(fn(x)[0]) * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    edges = [-math.inf, *pts, math.inf]
    return sum(integrate.quad(g, a, b, epsabs=1e-13, epsrel=1e-12, limit=400)[0] for a, b in zip(edges, edges[1:]))


@pytest.mark.parametrize("name", [n for n in A.NAMES if n not in ("linear", "swish")])
@pytest.mark.parametrize("q, mean", [(1.0, 0.0), (0.2, 0.0), (9.0, 0.0), (2.0, 0.7)])
def test_expect_matches_scipy(name, q, mean):
    act = A.get(name)
    for fn in (act.fn, lambda x: act.fn(x) ** 2):
        ours = expect(fn, q, mean, kinks=act.kinks)
        assert ours == pytest.approx(_quad(fn, q, mean, act.kinks), abs=1e-8, rel=1e-8)


def test_expect_closed_forms():
    assert expect("relu", 3.0) == pytest.approx(math.sqrt(3.0 / (2 * math.pi)), abs=1e-14)
    assert expect(lambda x: x**2, 2.5, 0.5) == pytest.approx(2.5 + 0.25, abs=1e-13)
    assert expect(lambda x: torch.cos(x), 1.0) == pytest.approx(math.exp(-0.5), abs=1e-14)
    assert expect("tanh", 0.0, 0.3) == pytest.approx(math.tanh(0.3))
    with pytest.raises(ValueError, match="q"):
        expect("tanh", -1.0)


def test_expect_errors_name_the_activation():
    with pytest.raises(ValueError, match="activation .*log.* returned NaN/Inf"):
        expect(torch.log)
    with pytest.raises(TypeError, match="activation .*mtanh.* failed on a float64 tensor"):
        def mtanh(x):
            return math.tanh(x)

        expect(mtanh)


# ---------------------------------------------------------------- gains
REFERENCE = {  # independent scipy quadrature (forward, centred, backward)
    "relu": (1.414214, 1.712859, 1.414214),
    "tanh": (1.592537, 1.592537, 1.467414),
    "sigmoid": (1.846229, 4.801313, 4.722646),
    "gelu": (1.533530, 1.700926, 1.481114),
    "silu": (1.676532, 1.787187, None),
    "selu": (1.000000, 1.000000, None),
    "elu": (1.245198, 1.270843, 1.223429),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_gains_match_reference_values(name):
    for criterion, ref in zip(("forward", "centred", "backward"), REFERENCE[name]):
        if ref is not None:
            assert A.gain(name, criterion) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 1.0])
def test_closed_forms_agree_with_quadrature(slope):
    act = A.get("leaky_relu", slope)
    quad_forward = 1 / math.sqrt(expect(lambda x: act.fn(x) ** 2, kinks=(0.0,)))
    assert A.gain(act) == pytest.approx(quad_forward, abs=1e-12)
    assert A.gain(act) == pytest.approx(math.sqrt(2 / (1 + slope**2)), abs=1e-15)
    mean = expect(act.fn, kinks=(0.0,))
    assert A.gain(act, "centred") == pytest.approx(1 / math.sqrt(quad_forward**-2 - mean**2), abs=1e-10)
    assert A.gain(act, "critical") == pytest.approx(A.gain(act))


def test_piecewise_linear_gains_are_torchs_exactly():
    assert A.gain("relu") == nn.init.calculate_gain("relu")
    assert A.gain("leaky_relu:0.2") == nn.init.calculate_gain("leaky_relu", 0.2)
    assert A.gain("identity") == nn.init.calculate_gain("linear")


def test_computed_tanh_gain_differs_from_torchs_table():
    assert nn.init.calculate_gain("tanh") == 5 / 3
    assert A.gain("tanh") == pytest.approx(1.592537, abs=1e-6)
    with pytest.raises(ValueError):
        nn.init.calculate_gain("gelu")
    assert A.gain("gelu") > 1


def test_gain_criterion_errors():
    with pytest.raises(ValueError, match="allowed: forward, centred, centered, backward, critical"):
        A.gain("tanh", "sideways")
    with pytest.raises(ValueError, match="sigma_b2 only applies"):
        A.gain("tanh", "forward", sigma_b2=0.1)
    with pytest.raises(ValueError, match="undefined"):
        A.gain(lambda x: torch.zeros_like(x))


def test_kaiming_and_init_model_take_any_activation():
    g = A.gain("gelu")
    w = init.kaiming_normal_(torch.empty(20000, 50), activation="gelu", generator=torch.Generator().manual_seed(0))
    # sd of a sample std of n normal draws is σ/sqrt(2n); 5 of them
    assert w.std().item() == pytest.approx(g / math.sqrt(50), rel=5 / math.sqrt(2 * w.numel()))
    model = nn.Sequential(nn.Linear(30, 30), nn.SiLU())
    report = init_model(model, "kaiming_uniform", activation=nn.SiLU())
    assert report["0.weight"].target_std == pytest.approx(A.gain("silu") / math.sqrt(30))
    report = init_model(model, "kaiming_uniform", activation=lambda x: x * torch.sigmoid(x))
    assert report["0.weight"].target_std == pytest.approx(A.gain("silu") / math.sqrt(30), rel=1e-12)

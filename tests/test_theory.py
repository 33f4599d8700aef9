"""signalprop.theory: mean-field maps against published values and against their own definitions."""

import math

import pytest
import torch

from signalprop import activations as A
from signalprop import theory as T


def _iterate_q(act, sw, sb, q=1.0, steps=5000):
    for _ in range(steps):
        q = T.length_map(act, q, sw, sb)
    return q


def test_tanh_published_values():
    # Schoenholz et al. (2017) setting, σ_b² = 0.05
    crit = T.critical_sigma_w2("tanh", 0.05)
    assert crit == pytest.approx(1.76095, abs=1e-5)
    assert T.chi1("tanh", T.fixed_point_q("tanh", crit, 0.05), crit) == pytest.approx(1.0, abs=1e-9)
    mf = T.analyse("tanh", 1.0, 0.05)
    assert mf.q_star == pytest.approx(0.19359, abs=1e-5)
    assert mf.chi1 == pytest.approx(0.75903, abs=1e-5)
    assert mf.xi_c == pytest.approx(3.63, abs=0.005)
    assert mf.phase == "ordered" and mf.c_star == 1.0


def test_other_critical_points():
    assert T.critical_sigma_w2("scaled_sigmoid", 0.05) == pytest.approx(1.45945, abs=1e-5)
    assert T.critical_sigma_w2("relu") == 2.0
    assert T.critical_sigma_w2("relu", 0.3) == 2.0
    for odd in ("tanh", "scaled_sigmoid", "softsign"):  # slope 1 at 0, σ_b² = 0
        assert T.critical_sigma_w2(odd, 0.0) == pytest.approx(1.0, abs=1e-6)
    assert A.gain("tanh", "critical", sigma_b2=0.05) == pytest.approx(math.sqrt(1.76095), abs=1e-5)


@pytest.mark.parametrize("act, sw, sb", [("tanh", 1.5, 0.05), ("sigmoid", 3.0, 0.1), ("gelu", 1.8, 0.02),
                                         ("scaled_sigmoid", 2.0, 0.0), ("relu", 1.5, 0.1)])
def test_fixed_point_equals_iterated_map(act, sw, sb):
    q_star = T.fixed_point_q(act, sw, sb)
    assert q_star == pytest.approx(_iterate_q(A.resolve(act), sw, sb), rel=1e-9)
    assert T.length_map(act, q_star, sw, sb) == pytest.approx(q_star, rel=1e-12)


def test_relu_closed_forms_and_unbounded():
    assert T.fixed_point_q("relu", 1.5, 0.1) == pytest.approx(0.1 / (1 - 0.75))
    assert T.fixed_point_q("relu", 2.0, 0.0, q0=3.0) == 3.0
    assert T.fixed_point_q("relu", 2.5, 0.0) == math.inf
    assert T.analyse("relu", 2.5).phase == "unbounded"


def test_chaotic_phase_correlation_fixed_point():
    sw, sb = 2.5, 0.05
    mf = T.analyse("tanh", sw, sb)
    assert mf.phase == "chaotic" and mf.chi1 > 1 and 0 < mf.c_star < 1
    c = 0.9
    for _ in range(300):
        c = T.correlation_map("tanh", c, mf.q_star, sw, sb)
    assert mf.c_star == pytest.approx(c, abs=1e-8)
    assert mf.chi_c < 1 and mf.xi_c == pytest.approx(-1 / math.log(mf.chi_c))
    assert T.correlation_map("tanh", 1.0, mf.q_star, sw, sb) == pytest.approx(1.0, abs=1e-12)


def test_relu_correlation_map_is_the_arccos_kernel():
    # Cho & Saul (2009): E[relu(u1) relu(u2)] = q/(2π)·(sin θ + (π − θ) cos θ), c = cos θ
    q, c = 1.7, 0.3
    theta = math.acos(c)
    expected = q / (2 * math.pi) * (math.sin(theta) + (math.pi - theta) * c)
    assert T.expect_pair(torch.relu, torch.relu, q, c, (0.0,), (0.0,)) == pytest.approx(expected, abs=1e-10)


def test_xi_q_against_finite_differences():
    # ξ_q governs q^l − q* ~ exp(−l/ξ_q): measure the contraction of the length map at q*
    sw, sb = 1.2, 0.1
    mf = T.analyse("tanh", sw, sb)
    eps = 1e-5
    slope = (T.length_map("tanh", mf.q_star + eps, sw, sb) - T.length_map("tanh", mf.q_star - eps, sw, sb)) / (2 * eps)
    assert mf.xi_q == pytest.approx(-1 / math.log(slope), rel=1e-6)
    # hardtanh has delta terms in φ'' at its corners; check them the same way
    mf = T.analyse("hardtanh", sw, sb)
    slope = (T.length_map("hardtanh", mf.q_star + eps, sw, sb)
             - T.length_map("hardtanh", mf.q_star - eps, sw, sb)) / (2 * eps)
    assert mf.xi_q == pytest.approx(-1 / math.log(slope), rel=1e-6)


def test_predict_follows_the_recursions():
    p = T.predict("tanh", 6, sigma_w2=1.3, sigma_b2=0.02, q0=0.8)
    assert p.q[0] == pytest.approx(1.3 * 0.8 + 0.02)
    for l in range(1, 6):
        assert p.q[l] == pytest.approx(T.length_map("tanh", p.q[l - 1], 1.3, 0.02), rel=1e-14)
    assert p.grad[-1] == 1.0
    for l in range(5):
        assert p.grad[l] == pytest.approx(p.grad[l + 1] * T.chi1("tanh", p.q[l], 1.3), rel=1e-12)
    assert p.post_mean[0] == pytest.approx(0.0, abs=1e-15)


def test_predict_linear_net_with_unequal_widths_and_xavier():
    widths = (100, 300, 50, 200, 80)
    p = T.predict("identity", 4, sigma_w2="xavier", widths=widths)
    gammas = [2 / (a + b) for a, b in zip(widths, widths[1:])]
    # forward: q^l = Π n_{s−1}·γ_s; backward: Var grad_{l} = Var grad_{l+1}·n_{l+1}·γ_{l+1}
    q, expected_q = 1.0, []
    for n_in, g in zip(widths, gammas):
        q *= n_in * g
        expected_q.append(q)
    assert p.q == pytest.approx(tuple(expected_q), rel=1e-13)
    grad, expected_grad = 1.0, [1.0]
    for l in range(2, -1, -1):
        grad *= widths[l + 2] * gammas[l + 1]
        expected_grad.insert(0, grad)
    assert p.grad == pytest.approx(tuple(expected_grad), rel=1e-13)
    # the seed: with n_{s−1} ≠ n_s neither condition holds exactly; Xavier splits the difference
    assert p.q[0] != 1.0 and p.grad[0] != 1.0


def test_predict_errors():
    with pytest.raises(ValueError, match="depth"):
        T.predict("tanh", 0)
    with pytest.raises(ValueError, match="widths"):
        T.predict("tanh", 3, widths=(4, 4))
    with pytest.raises(ValueError, match="3 values for 2 layers"):
        T.predict("tanh", 2, sigma_w2=(1, 1, 1))
    with pytest.raises(ValueError, match="'xavier'"):
        T.predict("tanh", 2, sigma_w2="he")


def test_prediction_table_and_json():
    p = T.predict("relu", 4, sigma_w2=2.0)
    assert p.q == pytest.approx((2.0, 2.0, 2.0, 2.0))
    assert "grad var (rel.)" in p.table()
    assert '"activation": "relu"' in p.to_json()

"""Every experiment in its --quick version, asserting on what it measured, not only that it ran."""

import json
import math

import pytest

from signalprop import experiments
from signalprop.cli import main
from signalprop.experiments.d2l import top_lyapunov

from .conftest import Z

NAMES = ("d2l", "init-vs-depth", "scaled-sigmoid", "symmetry", "glorot2010", "he2015", "trainability", "levers",
         "clipping")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Runs each experiment's quick version once per session, on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            document = experiments.run(name, quick=True, out=out, seed=0, progress=False)
            cache[name] = (document, out)
        return cache[name]

    return get


def test_registry_lists_every_experiment():
    assert tuple(e.name for e in experiments.experiments()) == NAMES
    with pytest.raises(ValueError, match="choose from d2l"):
        experiments.get("nope")


@pytest.mark.parametrize("name", NAMES)
def test_writes_results_table_and_figures(quick, name):
    document, out = quick(name)
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(document)) and on_disk["quick"] is True
    md = (out / "results.md").read_text()
    assert md.startswith("# ") and "| --- |" not in md and "|---|" in md
    assert document["figures"] and all((out / f).stat().st_size > 1000 for f in document["figures"])
    assert document["results"]["seconds"] < 60  # the quick version's budget is 30 s; 2× for a loaded machine


def test_d2l_sigmoid_gradient_and_matrix_products(quick):
    r = quick("d2l")[0]["results"]
    assert r["sigmoid_grad"]["at_0"] == 0.25
    closed = math.exp(-8) / (1 + math.exp(-8)) ** 2
    assert r["sigmoid_grad"]["at_8"] == pytest.approx(closed, rel=1e-12) == pytest.approx(3.35e-4, rel=1e-3)
    p = r["products"]
    # λ₁ for 4×4 N(0, 1): ½(ln 2 + ψ(2)), ψ(2) = 1 − γ
    assert top_lyapunov(4) == pytest.approx(0.5 * (math.log(2) + 1 - 0.5772156649015329), rel=1e-12)
    for kind in ("gaussian", "scaled"):
        assert abs(p[kind]["vector"]["mean"] - p[kind]["predicted_log10_vector"]) < Z * p[kind]["vector_mean_se"]
    assert 22 < p["gaussian"]["max_entry"]["median"] < 27 and p["scaled"]["max_entry"]["median"] < -4
    assert abs(p["orthogonal"]["vector"]["mean"]) < 1e-12  # an orthogonal product keeps every norm


def test_init_vs_depth_reproduces_the_seed(quick):
    r = quick("init-vs-depth")[0]["results"]
    runs = r["runs"]
    tanh_xavier = runs["tanh"]["xavier_normal"]
    assert 1e-2 < tanh_xavier["bwd_var"][0] / tanh_xavier["bwd_var"][-1] < 1e2
    assert runs["tanh"]["normal:0.01"]["fwd_var"][-2] < 1e-15  # N(0, 0.01) vanishes
    assert 0.1 < runs["relu"]["kaiming_normal"]["bwd_var"][0] / runs["relu"]["kaiming_normal"]["bwd_var"][-1] < 10
    assert runs["relu"]["xavier_normal"]["fwd_var"][-2] < 0.05 * runs["relu"]["kaiming_normal"]["fwd_var"][-2]
    assert min(runs["sigmoid"]["lsuv"]["fwd_var"][:-1]) > 0.9  # LSUV fits every layer whatever the activation
    # tanh under Xavier against the mean-field prediction from the drawn weights (width 64: finite-width)
    pred, meas = tanh_xavier["predicted_fwd_var"], tanh_xavier["fwd_var"]
    assert all(abs(m / p - 1) < 0.25 for m, p in zip(meas, pred))
    unequal = r["unequal_widths"]["runs"]
    # fan_in keeps the forward variance, fan_out the backward one; Xavier's compromise decays in both
    assert min(unequal["lecun_normal"]["fwd_var"]) > 0.7 and min(unequal["fan_out"]["bwd_var"]) > 0.7
    assert min(unequal["xavier_normal"]["fwd_var"]) < 0.3 and min(unequal["xavier_normal"]["bwd_var"]) < 0.3
    # linear net: q_l = Π_{k ≤ l} n_{k−1}·γ_k with Xavier's γ_k = 2/(n_{k−1} + n_k)
    widths, q, closed = r["unequal_widths"]["widths"], 1.0, []
    for n_in, n_out in zip(widths, widths[1:]):
        q *= 2 * n_in / (n_in + n_out)
        closed.append(q)
    assert unequal["xavier_normal"]["predicted_fwd_var"] == pytest.approx(closed, rel=1e-9)


def test_symmetry_constant_init_keeps_units_identical(quick):
    v = quick("symmetry")[0]["results"]["variants"]
    assert max(v["constant"]["spread_after"].values()) == 0.0  # exact copies after every SGD step
    assert max(v["constant + dropout"]["spread_after"].values()) > 0.0  # dropout's masks differ per unit
    assert max(v["Xavier uniform"]["spread_before"].values()) > 0.0
    constant, xavier = v["constant"]["history"], v["Xavier uniform"]["history"]
    assert xavier["test_error"][-1] < 20 < 60 < constant["test_error"][-1]
    assert constant["train_loss"][-1] > 1.5 > 0.5 > xavier["train_loss"][-1]


def test_scaled_sigmoid_fixes_the_mean_and_the_gradient(quick):
    a = quick("scaled-sigmoid")[0]["results"]["activations"]
    assert abs(a["sigmoid"]["activation_means"][0] - 0.5) < 0.05  # β = 1/2
    assert abs(a["scaled_sigmoid"]["activation_means"][0]) < 0.05  # β = 0
    assert a["sigmoid"]["grad_var_first_over_last"] < 1e-4 < 1e-2 < a["scaled_sigmoid"]["grad_var_first_over_last"]
    err = {k: v["history"]["test_error"][-1] for k, v in a.items()}
    assert err["scaled_sigmoid"] < 20 and err["tanh"] < 20 and err["sigmoid"] > 50


def test_glorot2010_jacobian_and_ordering(quick):
    r = quick("glorot2010")[0]["results"]
    digits = r["datasets"]["digits"]
    # the paper: mean singular value ≈ 0.5 with the standard init, ≈ 0.8 with the normalized one
    assert 0.4 < digits["Tanh"]["jacobian_mean_sv"] < 0.6 < 0.65 < digits["Tanh N"]["jacobian_mean_sv"] < 0.9
    assert digits["Tanh N"]["test_error"] < digits["Tanh"]["test_error"] < digits["Sigmoid"]["test_error"]
    assert digits["Softsign N"]["test_error"] < digits["Sigmoid"]["test_error"]
    shapes = r["datasets"]["Shapeset-3×2"]
    assert all(v["lr"] in r["lr_grid"] for v in shapes.values())
    spread = r["figures_6_7"]
    # standard init: the back-propagated gradient shrinks towards the input far more than normalized
    standard = spread["Tanh"]["gradient_std"][0] / spread["Tanh"]["gradient_std"][-1]
    normalized = spread["Tanh N"]["gradient_std"][0] / spread["Tanh N"]["gradient_std"][-1]
    assert standard < 0.5 * normalized


def test_he2015_xavier_first_layer_gradient_vanishes(quick):
    r = quick("he2015")[0]["results"]["depths"]
    for depth in (22, 30):
        d = r[str(depth)]
        ratio = d["xavier_normal"]["grad_ratio_to_he"]
        # 2^(−(L−1)/2) up to the output gradient's difference between the two nets (within 10×)
        assert 0.1 < ratio / 2 ** (-(depth - 1) / 2) < 10
        assert d["kaiming_normal"]["history"]["test_error"][-1] < d["xavier_normal"]["history"]["test_error"][-1]
        assert d["lsuv"]["history"]["test_error"][-1] < d["xavier_normal"]["history"]["test_error"][-1]


def test_trainability_peaks_near_the_critical_point(quick):
    r = quick("trainability")[0]["results"]
    assert r["critical_sigma_w2"] == pytest.approx(1.76095, abs=1e-4)
    acc = r["test_accuracy"]
    deep = max(r["depths"])
    assert acc[f"1.76@{deep}"] > 70 and acc[f"0.6@{deep}"] < 30 and acc[f"1.76@{deep}"] > acc[f"4.0@{deep}"] + 20
    xi = r["xi_c"]
    assert 6 * xi["0.6"] < deep < 6 * xi["1.76"]


def test_levers_each_measured_and_together_they_train(quick):
    v = quick("levers")[0]["results"]["variants"]
    base, together = v["baseline: sigmoid, N(0, 0.01)"], v["all together"]
    assert base["grad_var_first_over_last"] < 1e-30 and together["grad_var_first_over_last"] > 1e-2
    assert together["history"]["test_error"][-1] < 30 < 80 < base["history"]["test_error"][-1]
    # clipping cannot cure vanishing gradients: the clipped baseline is the baseline
    assert v["+ clipping (norm 1)"]["history"]["test_error"] == base["history"]["test_error"]


def test_clipping_keeps_the_exploding_run_finite(quick):
    runs = quick("clipping")[0]["results"]["runs"]
    for arch in ("plain", "residual"):
        assert runs[arch]["none"]["diverged_at"] is not None
        for clip in ("norm 1.0", "value 0.01", "AGC λ=0.01"):
            assert runs[arch][clip]["diverged_at"] is None and math.isfinite(runs[arch][clip]["train_loss"][-1])
            assert runs[arch][clip]["test_error"][-1] < 50


def test_same_seed_same_results_other_seed_differs(tmp_path):
    a = experiments.run("d2l", quick=True, out=tmp_path / "a", seed=3, progress=False)["results"]
    b = experiments.run("d2l", quick=True, out=tmp_path / "b", seed=3, progress=False)["results"]
    c = experiments.run("d2l", quick=True, out=tmp_path / "c", seed=4, progress=False)["results"]
    for r in (a, b, c):
        r.pop("seconds")
    assert a == b and a != c


def test_cli_list_run_and_errors(tmp_path, capsys):
    assert main(["experiment", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in NAMES)
    assert main(["experiment", "run", "d2l", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    assert "log10 of a product" in capsys.readouterr().out and (tmp_path / "results.json").is_file()
    assert main(["experiment", "run", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'nope'" in err
    assert main(["experiment", "run", "d2l", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err

"""The CLI, run in-process through main(argv)."""

import json

import pytest

from signalprop.cli import main


def test_init_report_table(capsys):
    assert main(["init-report", "--depth", "3", "--width", "16", "--activation", "relu", "--init", "he_normal"]) == 0
    out = capsys.readouterr().out
    assert "3 Linear layers of width 16, relu" in out
    assert "gain of relu" in out
    lines = [line for line in out.splitlines() if line.startswith(("0.", "2.", "4."))]
    assert [line.split()[0] for line in lines] == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert all("kaiming_normal" in line for line in lines if "weight" in line)


def test_init_report_json_is_reproducible(capsys):
    assert main(["init-report", "--depth", "2", "--width", "8", "--json", "--seed", "4"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["init-report", "--depth", "2", "--width", "8", "--json", "--seed", "4"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["params"][0]["scheme"] == "xavier_uniform"
    assert first["params"][0]["target_std"] == pytest.approx((2 / 16) ** 0.5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["init-report", "--init", "nope"], "unknown weight 'nope'"),
        (["init-report", "--depth", "0"], "depth must be an integer >= 1"),
        (["init-report", "--depth", "x"], "invalid int value"),
        (["init-report", "--activation", "swish2"], "unknown activation 'swish2'"),
        (["init-report", "--init", "constant"], "needs a value"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_errors_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("signalprop: error:") and message in lines[0]


def test_console_script_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "signalprop", "init-report", "--depth", "2", "--width", "4"],
                          capture_output=True, text=True, check=True)
    assert "0.weight" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "signalprop", "init-report", "--init", "bad"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_activations_table_and_json(capsys):
    assert main(["activations"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line.startswith(("-", "α", "activation"))}
    assert "✗" in rows["sigmoid"] and "0.25" in rows["sigmoid"] and "-0.0208333" in rows["sigmoid"]
    assert "✓" in rows["scaled_sigmoid"] and "-0.0833333" in rows["scaled_sigmoid"]
    assert "0|1" in rows["relu"] and "✓ (x ≥ 0)" in rows["relu"]
    assert rows["tanh"].split()[-1] == "1.66667"  # torch's calculate_gain beside ours
    assert main(["activations", "--json"]) == 0
    data = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert data["tanh"]["gain_forward"] == pytest.approx(1.592537, abs=1e-6)
    assert data["gelu"]["torch_calculate_gain"] is None


def test_gain_command(capsys):
    assert main(["gain", "GELU"]) == 0
    assert float(capsys.readouterr().out) == pytest.approx(1.533530, abs=1e-6)
    assert main(["gain", "tanh", "--criterion", "critical", "--sigma-b2", "0.05", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["gain"] == pytest.approx(1.76095**0.5, abs=1e-5)


def test_theory_command(tmp_path, capsys):
    png = tmp_path / "pred.png"
    assert main(["theory", "tanh", "--sigma-w2", "1", "--sigma-b2", "0.05", "--depth", "12", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "q* = 0.193593" in out and "χ₁ = 0.759032 (ordered)" in out and "ξ_c = 3.627" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["theory", "relu", "--sigma-w2", "2", "--depth", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["prediction"]["q"] == [2.0, 2.0, 2.0]
    assert data["mean_field"]["phase"] == "critical"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["gain", "nope"], "unknown activation 'nope'"),
        (["gain", "tanh", "--criterion", "up"], "invalid choice"),
        (["theory", "tanh", "--depth", "0"], "must be >= 1"),
        (["theory", "tanh", "--sigma-w2", "-1"], "sigma_w2 must be finite and >= 0"),
        (["theory", "tanh", "--sigma-w2", "1", "--plot", "/nonexistent/dir/x.png"], "cannot write"),
    ],
)
def test_analysis_command_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_probe_main_job(tmp_path, capsys):
    assert main(["probe", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    runs = [line[3:] for line in out.splitlines() if line.startswith("-- ")]
    assert runs == ["tanh, normal:0.01", "tanh, torch_default", "tanh, xavier_uniform", "tanh, xavier_normal",
                    "sigmoid, xavier_uniform", "scaled_sigmoid, xavier_uniform"]
    blocks = out.split("\n-- ")[1:]
    assert "vanishing gradients" in blocks[0] and "vanishing gradients" in blocks[1]
    assert "ok:" in blocks[2] and "ok:" in blocks[3]
    assert "non-zero mean" in blocks[4] and "ok:" in blocks[5]
    assert (tmp_path / "probe.png").read_bytes()[:4] == b"\x89PNG"


def test_probe_options_and_json(tmp_path, capsys):
    argv = ["probe", "--depth", "6", "--width", "16", "--activation", "relu", "--init", "he_normal",
            "--init", "xavier_uniform", "--batch", "32", "--out", str(tmp_path), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["label"] for d in data] == ["relu, he_normal", "relu, xavier_uniform"]
    assert len([r for r in data[0]["rows"] if r["role"] == "layer"]) == 6
    assert main(["probe", "--depth", "4", "--width", "8", "--residual", "--norm", "layer", "--init", "xavier_normal",
                 "--out", str(tmp_path)]) == 0
    assert "residual, layer norm" in capsys.readouterr().out


def test_probe_user_model(tmp_path, capsys):
    file = tmp_path / "net.py"
    file.write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))\n"
        "def broken():\n"
        "    return 3\n"
    )
    (tmp_path / "notes.txt").write_text("not python\n")
    assert main(["probe", "--model", f"{file}:make", "--input-shape", "3,8,8", "--batch", "4", "--out", str(tmp_path)]) == 0
    assert "Conv2d" in capsys.readouterr().out
    for argv, message in [
        (["probe", "--model", f"{file}:make"], "--model needs --input-shape"),
        (["probe", "--model", f"{file}:broken", "--input-shape", "3,8,8"], "returned int, not an nn.Module"),
        (["probe", "--model", f"{file}:nothing", "--input-shape", "3,8,8"], "has no callable 'nothing'"),
        (["probe", "--model", str(tmp_path / "missing.py") + ":make", "--input-shape", "3"], "no such file"),
        (["probe", "--model", f"{tmp_path / 'notes.txt'}:make", "--input-shape", "3"], "is not a Python file"),
        (["probe", "--model", f"{file}:make", "--input-shape", "5,8,8"], "forward or backward pass failed"),
        (["probe", "--model", f"{file}:make", "--input-shape", "3,x"], "comma-separated sizes"),
        (["probe", "--activation", "nope"], "unknown activation 'nope'"),
    ]:
        assert main(argv + ["--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err

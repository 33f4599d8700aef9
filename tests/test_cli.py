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

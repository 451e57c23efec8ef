import csv
import subprocess
import sys

import numpy as np
import pytest

from hh_jax._cli import main


def test_simulate_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["simulate", "--preset", "hh1952", "--current", "10", "--duration", "50", "--dt", "0.025",
                 "--n", "3", "--init", "brainpy", "--out", str(out)])
    assert code == 0
    data = np.load(out / "result.npz")
    assert set(data.files) == {"t", "V", "m", "h", "n"}
    assert data["V"].shape == (2001, 3)
    with open(out / "spikes.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["neuron", "time_ms"]
    assert len(rows) > 1 and {int(r[0]) for r in rows[1:]} == {0, 1, 2}
    assert (out / "voltage.png").stat().st_size > 10_000
    summary = capsys.readouterr().out
    assert "spikes: total" in summary and "firing rate" in summary
    assert (out / "summary.txt").read_text() == summary


def test_methods_and_rest_init(tmp_path):
    for method in ("rk4", "euler", "exp_euler"):
        assert main(["simulate", "--method", method, "--duration", "5", "--init", "equilibrium", "--no-plot",
                     "--out", str(tmp_path / method)]) == 0


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--dt", "0"], "--dt"),
        (["--dt", "-0.1"], "--dt"),
        (["--duration", "0"], "--duration"),
        (["--duration", "-5"], "--duration"),
        (["--n", "0"], "--n"),
        (["--n", "two"], "--n"),
        (["--current", "nan"], "--current"),
        (["--current", "inf"], "--current"),
        (["--preset", "hh1953"], "--preset"),
        (["--method", "rk45"], "--method"),
        (["--init", "random"], "--init"),
        (["--duration", "10", "--dt", "0.03"], "dt"),
        (["--record-every", "0"], "--record-every"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_2(tmp_path, capsys, args, culprit):
    try:
        code = main(["simulate", "--out", str(tmp_path), "--no-plot", *args])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert culprit in lines[0] and lines[0].startswith("hh-jax: error:")


def test_entry_point_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hh_jax", "simulate", "--dt", "-1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--dt" in proc.stderr


def test_simulate_keeps_every_spike_of_a_long_run(tmp_path, capsys):
    """More than `simulate`'s default 1000 rows per neuron: spikes.csv used to stop at 1000 and the
    summary blamed the missing ones on non-finite times ("the current or dt is too large")."""
    out = tmp_path / "long"
    assert main(["simulate", "--duration", "16000", "--dt", "0.05", "--record-every", "200", "--n", "2",
                 "--no-plot", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    total = int(summary.split("spikes: total ")[1].split(",")[0])
    assert total > 2 * 1000  # ~70 Hz over 16 s
    rows = (out / "spikes.csv").read_text().splitlines()[1:]
    assert len(rows) == total and "WARNING" not in summary
    times = np.array([float(r.split(",")[1]) for r in rows if r.startswith("0,")])
    assert np.all(np.diff(times) > 0) and times[-1] > 15_900


def test_spike_buffer_overflow_is_named_as_such(tmp_path):
    """A result with more spikes than rows says so, not "no finite time"."""
    import argparse

    import hh_jax
    from hh_jax._cli import _write_simulate

    result = hh_jax.simulate(hh_jax.HHParams(), hh_jax.Constant(10.0), duration=50.0, dt=0.05, max_spikes=2)
    args = argparse.Namespace(preset="brainpy", current=10.0, duration=50.0, dt=0.05, method="exp_euler",
                              n=1, init="steady", no_plot=True, out=str(tmp_path))
    summary = _write_simulate(str(tmp_path), args, result)
    assert "1 neuron(s) fired more than 2 times" in summary and "no finite time" not in summary
    assert len((tmp_path / "spikes.csv").read_text().splitlines()) == 1 + 2

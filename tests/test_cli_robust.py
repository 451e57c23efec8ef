"""Every ``hh-jax`` command line refuses a bad or out-of-range value the same way: exit status 2,
exactly one line on stderr naming the option, nothing computed and nothing written.

The option types and ranges live in one place (`hh_jax._cli_args`); these cases come from
issue 12: huge integers, huge currents, a tiny ``--cycle-step``, ``--rtol 1e-300``, ``--dt``
outside the documented accuracy range, populations that cannot fit in memory, negative numbers
in scientific notation, and spike times that are NaN in a diverged run.
"""

import subprocess
import sys

import numpy as np
import pytest

from hh_jax._cli import build_parser, main

HUGE = "9" * 30


def _recording(tmp_path):
    path = tmp_path / "rec.csv"
    path.write_text("time_ms,voltage_mV\n" + "".join(f"{0.1 * k:.1f},{-65 + 0.01 * k}\n" for k in range(101)))
    return str(path)


CASES = [
    # simulate
    (["simulate", "--seed", HUGE, "--init", "brainpy"], "--seed"),
    (["simulate", "--seed", "1e3"], "--seed"),
    (["simulate", "--record-every", HUGE], "--record-every"),
    (["simulate", "--record-every", "1000", "--duration", "1"], "--record-every"),
    (["simulate", "--n", HUGE], "--n"),
    (["simulate", "--n", "10000000"], "--n"),  # ~6 TB of traces: refused with the estimate
    (["simulate", "--current", "1e300"], "--current"),
    (["simulate", "--current", "-1e300"], "--current"),
    (["simulate", "--current", "-inf"], "--current"),
    (["simulate", "--method", "tsit5", "--rtol", "1e-300"], "--rtol"),
    (["simulate", "--method", "tsit5", "--rtol", "2"], "--rtol"),
    (["simulate", "--dt", "100"], "--dt"),
    (["simulate", "--dt", "1e-12", "--record-every", "1000000000"], "--dt"),
    (["simulate", "--dt", "1e-9"], "--dt"),  # 2e11 samples: the memory estimate names --dt
    # fi
    (["fi", "--i-max", "1e300"], "--i-max"),
    (["fi", "--i-min", "-1e300"], "--i-min"),
    (["fi", "--dt", "100"], "--dt"),
    (["fi", "--num", HUGE], "--num"),
    (["fi", "--transient", "1e12"], "--transient"),
    # bifurcation
    (["bifurcation", "--i-max", "1e300"], "--i-max"),
    (["bifurcation", "--cycle-step", "1e-12"], "--cycle-step"),
    (["bifurcation", "--num", "1"], "--num"),
    # fit (the recording spans 0-10 ms)
    (["fit", "--protocol", "10@500-600"], "--protocol"),
    (["fit", "--protocol", "-1e5"], "--protocol"),
    (["fit", "--protocol", "10", "--dt", "100"], "--dt"),
    (["fit", "--protocol", "10", "--seed", HUGE], "--seed"),
    (["fit", "--protocol", "10", "--starts", HUGE], "--starts"),
    (["fit", "--protocol", "10", "--steps", "0"], "--steps"),
]


@pytest.mark.parametrize("argv, option", CASES, ids=[" ".join(c[0])[:60] for c in CASES])
def test_bad_option_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, argv, option):
    out = tmp_path / "out"
    extra = ["--data", _recording(tmp_path), "--no-progress"] if argv[0] == "fit" else ["--no-plot"]
    try:
        code = main([*argv, *extra, "--out", str(out)])
    except SystemExit as e:  # argparse
        code = e.code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith("hh-jax: error:"), captured.err
    assert option in lines[0], lines[0]
    assert captured.out == ""
    assert not out.exists()


def test_negative_scientific_numbers_are_values_not_options(tmp_path, capsys):
    p = build_parser()
    assert p.parse_args(["simulate", "--current", "-1e3"]).current == -1000.0
    assert p.parse_args(["simulate", "--current", "-1.5E+2"]).current == -150.0
    assert p.parse_args(["fi", "--i-min", "-1e1", "--i-max", "-.5e1"]).i_min == -10.0
    assert p.parse_args(["fit", "--data", "x.csv", "--protocol", "-10@0-100"]).protocol == "-10@0-100"
    # and the whole command runs with it
    out = tmp_path / "neg"
    assert main(["simulate", "--current", "-1e3", "--duration", "1", "--no-plot", "--out", str(out)]) == 0
    assert "current=-1000.0" in (out / "summary.txt").read_text()


def test_unknown_option_still_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["simulate", "-x"])
    assert e.value.code == 2 and "-x" in capsys.readouterr().err


def test_dt_above_an_explicit_steppers_stable_range_warns_with_the_number(tmp_path, capsys):
    assert main(["simulate", "--method", "rk4", "--dt", "0.08", "--duration", "0.8", "--no-plot",
                 "--out", str(tmp_path / "w")]) in (0, 1)
    err = capsys.readouterr().err
    assert "hh-jax: warning: --dt 0.08 ms is above the stable range of rk4" in err


def test_spike_with_nan_time_in_a_diverged_run_gives_a_summary_not_an_index_error(tmp_path, capsys, float32):
    """RK4 at dt = 0.1 ms under 5000 uA/cm^2 (float32, the CLI's default precision) counts a
    crossing whose located time is NaN; the summary used to index the empty spike table
    (IndexError after result.npz and spikes.csv were written)."""
    out = tmp_path / "div"
    code = main(["simulate", "--method", "rk4", "--dt", "0.1", "--current", "5000", "--duration", "0.5",
                 "--no-plot", "--out", str(out)])
    summary = capsys.readouterr().out
    assert code == 1  # the state became NaN/Inf
    assert "no finite time" in summary and "diverges" in summary
    assert (out / "summary.txt").read_text() == summary
    assert (out / "spikes.csv").read_text() == "neuron,time_ms\n"


def test_ranges_are_defined_once():
    from hh_jax import _cli_args

    assert _cli_args.DT_MAX == 0.1 and _cli_args.DT_STABLE["rk4"] < _cli_args.DT_MAX
    with pytest.raises(_cli_args.CLIError, match=r"--rtol 1e-07 is below what float32 can resolve"):
        _cli_args.check_rtol(1e-7, "float32")
    _cli_args.check_rtol(1e-7, "float64")  # 4 eps of float64 = 8.9e-16
    _cli_args.check_rtol(1e-6, "float32")  # the CLI's default tolerance passes in float32


def test_default_tolerance_of_an_adaptive_method_runs_in_float32(tmp_path, float32):
    import numpy as np

    assert main(["simulate", "--method", "tsit5", "--duration", "1", "--no-plot", "--out", str(tmp_path / "a")]) == 0
    assert np.load(tmp_path / "a" / "result.npz")["V"].dtype == np.float32


def test_tolerance_beyond_float32_runs_in_float64(tmp_path, float32):
    """README's ``--rtol 1e-8 --atol 1e-8`` is below float32's resolution: the run is float64,
    and --rtol 1e-300 (below float64's) is refused naming --rtol."""
    import numpy as np

    out = tmp_path / "t"
    assert main(["simulate", "--method", "tsit5", "--rtol", "1e-8", "--atol", "1e-8", "--duration", "5",
                 "--no-plot", "--out", str(out)]) == 0
    assert np.load(out / "result.npz")["V"].dtype == np.float64


def test_entry_point_negative_current_and_bad_seed(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "hh_jax", "simulate", "--seed", HUGE, "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "--seed" in proc.stderr, proc.stderr


def test_memory_estimate_checks_the_accelerator_or_host_memory(monkeypatch):
    """The CLI's estimate uses the library's one measure of available memory."""
    from hh_jax import _cli_args, _simulate_checks

    monkeypatch.setattr(_simulate_checks, "available_memory", lambda: (10**9, "gpu memory"))
    with pytest.raises(_cli_args.CLIError, match=r"x needs about 2 GB but 1 GB of gpu memory is available; y"):
        _cli_args.check_memory(2e9, what="x", fix="y")
    _cli_args.check_memory(5e8, what="x", fix="y")
    monkeypatch.setattr(_simulate_checks, "available_memory", lambda: (None, None))  # unknown: no refusal
    _cli_args.check_memory(1e30, what="x", fix="y")


def test_fit_refuses_what_cannot_fit_before_fitting(tmp_path, monkeypatch, capsys):
    """Gradients keep every step of every start: 10 000 starts at dt 0.001 ms asked XLA for 42 GB."""
    import hh_jax.fit

    from hh_jax import _simulate_checks
    from hh_jax._cli import main

    t = np.arange(0.0, 50.0, 0.1)
    data = tmp_path / "rec.csv"
    data.write_text("time_ms,voltage_mV\n" + "".join(f"{x:.1f},-65.0\n" for x in t))
    monkeypatch.setattr(_simulate_checks, "available_memory", lambda: (8 * 2**30, "host memory"))
    monkeypatch.setattr(hh_jax.fit, "optimize", lambda *a, **k: pytest.fail("fitted although it cannot fit"))
    assert main(["fit", "--data", str(data), "--protocol", "10", "--starts", "10000", "--dt", "0.001",
                 "--no-progress", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lower --starts or raise --dt" in err and "GB" in err, err

"""Structural tests of hh_jax.plot: what is drawn equals the data, labels carry units."""

import sys

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hh_jax  # noqa: E402
import hh_jax.plot  # noqa: E402

ALL = ("V", "m", "h", "n", "INa", "IK", "IL", "gNa", "gK", "gL")


@pytest.fixture(scope="module")
def result():
    p = hh_jax.HHParams(gNa=jnp.array([120.0, 100.0, 140.0]))
    I = hh_jax.Constant(jnp.array([10.0, 0.0, 15.0]))
    return hh_jax.simulate(p, I, duration=40.0, dt=0.05, record=ALL, record_every=2)


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_matplotlib_is_imported_lazily():
    import subprocess

    code = "import hh_jax, hh_jax.plot, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_voltage_lines_equal_traces(result):
    _, ax = plt.subplots()
    out = hh_jax.plot.voltage(result, ax=ax, neurons=[2, 0], linewidth=0.7, threshold=20.0)
    assert out is ax
    lines = ax.get_lines()
    np.testing.assert_array_equal(lines[0].get_xdata(), np.asarray(result.t))
    np.testing.assert_array_equal(lines[0].get_ydata(), np.asarray(result.V)[:, 2])
    np.testing.assert_array_equal(lines[1].get_ydata(), np.asarray(result.V)[:, 0])
    assert lines[0].get_linewidth() == 0.7
    assert lines[2].get_ydata()[0] == 20.0  # threshold line
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel() == "V (mV)"


@pytest.mark.parametrize(
    "fn, names, unit",
    [
        (hh_jax.plot.gates, ("m", "h", "n"), "(1)"),
        (hh_jax.plot.current_traces, ("INa", "IK", "IL"), "(µA/cm²)"),
        (hh_jax.plot.conductance_traces, ("gNa", "gK", "gL"), "(mS/cm²)"),
    ],
)
def test_named_traces(result, fn, names, unit):
    _, ax = plt.subplots()
    assert fn(result, ax=ax, neuron=2, linestyle=":") is ax
    lines = ax.get_lines()
    assert [l.get_label() for l in lines] == list(names)
    for line, name in zip(lines, names):
        np.testing.assert_array_equal(line.get_xdata(), np.asarray(result.t))
        np.testing.assert_allclose(line.get_ydata(), np.asarray(getattr(result, name))[:, 2])
        assert line.get_linestyle() == ":"
    assert ax.get_xlabel() == "time (ms)" and ax.get_ylabel().endswith(unit)


def test_new_axes_when_none(result):
    ax = hh_jax.plot.current_traces(result)
    assert isinstance(ax, matplotlib.axes.Axes) and len(ax.get_lines()) == 3


def test_missing_trace_is_named():
    r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=5.0, dt=0.05, record=("V",))
    with pytest.raises(ValueError, match="'INa' was not recorded"):
        hh_jax.plot.current_traces(r)
    with pytest.raises(ValueError, match="neurons: index 3"):
        hh_jax.plot.voltage(r, neurons=[3])


def test_stacked_offsets(result):
    _, ax = plt.subplots()
    assert hh_jax.plot.stacked(result, ax=ax, neurons=[0, 2], offset=130.0, color="k") is ax
    a, b = ax.get_lines()
    np.testing.assert_allclose(a.get_ydata(), np.asarray(result.V)[:, 0])
    np.testing.assert_allclose(b.get_ydata(), np.asarray(result.V)[:, 2] + 130.0)
    assert a.get_color() == "k" and len(ax.get_yticks()) == 0
    assert "mV" in ax.get_ylabel()


def test_raster_positions_equal_spike_times(result):
    _, ax = plt.subplots()
    assert hh_jax.plot.raster(result, ax=ax, color="tab:blue") is ax
    times = np.asarray(result.spike_times)
    counts = np.asarray(result.spike_count)
    assert counts[1] == 0 and counts[0] > 0 and counts[2] > 0
    collections = ax.collections
    assert len(collections) == 3
    for i, coll in enumerate(collections):
        assert coll.get_lineoffset() == i
        np.testing.assert_allclose(np.sort(coll.get_positions()), np.sort(times[: counts[i], i]))
        np.testing.assert_allclose(np.ravel(coll.get_color())[:3], matplotlib.colors.to_rgb("tab:blue"))
    assert ax.get_xlabel() == "time (ms)"


def test_rate_histogram_counts(result):
    _, ax = plt.subplots()
    assert hh_jax.plot.rate_histogram(result, ax=ax, bins=[0.0, 1.0, 1000.0], color="r") is ax
    heights = [patch.get_height() for patch in ax.patches]
    counts = np.asarray(result.spike_count)
    assert heights == [np.sum(counts == 0), np.sum(counts > 0)]
    assert ax.get_xlabel() == "firing rate (Hz)"

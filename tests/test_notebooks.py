"""Notebooks 01-04 run headlessly as shipped (05-07: test_notebooks_analysis.py); the seeds' content holds.

The notebooks are executed with nbclient exactly as committed (no parameters injected): a
notebook too slow for this test is too slow for a reader. The seed checks below recompute, with
the public API, the numbers the notebooks show, against independent references where one exists.
"""

import re

import jax
import jax.numpy as jnp
import nbformat
import numpy as np
import pytest

import hh_jax

from helpers import reference_spikes
from notebook_runner import NOTEBOOKS, execute, notebooks

# Notebooks 05-07 execute in tests/test_notebooks_analysis.py (the other xdist worker).
INTRO = notebooks("01_", "02_", "03_", "04_")


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    for prefix in ("01_", "02_", "03_", "04_"):
        assert any(n.startswith(prefix) for n in names), names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    first, second = nb.cells[0], nb.cells[1]
    assert first.cell_type == "markdown" and first.source.startswith("# "), "must open with a title"
    assert len(first.source.splitlines()) >= 2, "title must be followed by a sentence"
    assert second.cell_type == "code" and re.search(r"^[A-Z][A-Z0-9_]* = ", second.source, re.M), (
        "the first code cell must set the sizes (UPPER_CASE names)"
    )
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    private = re.search(r"\bhh_jax(?:\.[A-Za-z]\w*)*\._(?!_)", code)
    assert not private, f"private hh_jax name: {private and private.group(0)}"
    executed = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in executed), "notebooks are committed executed"


@pytest.mark.parametrize("path", INTRO, ids=[p.stem for p in INTRO])
def test_notebook_executes(path, monkeypatch):
    execute(path, monkeypatch)


# --- the seeds' qualitative content, through the public API -------------------------------------


def test_seed003_about_six_spikes_per_neuron_in_100ms():
    """Seed 003: 10 neurons, uniform random current in [1, 10] redrawn every 0.01 ms -> ~6 spikes."""
    key = jax.random.key(3)
    currents = jax.random.uniform(key, (10_000, 10), minval=1.0, maxval=10.0)
    r = hh_jax.simulate(hh_jax.HHParams(), hh_jax.Sampled(currents, dt=0.01), duration=100.0, dt=0.01)
    counts = np.asarray(r.spike_count)
    assert np.all((counts >= 5) & (counts <= 7)) and abs(counts.mean() - 6.0) <= 0.5, counts
    # The counts agree with threshold crossings read off the recorded traces.
    V = np.asarray(r.V)
    crossings = np.sum((V[:-1] < 20.0) & (V[1:] >= 20.0), axis=0)
    np.testing.assert_array_equal(crossings, counts)
    # Only the mean matters at this resampling rate: a constant 5.5 gives the same count.
    const = hh_jax.simulate(hh_jax.HHParams(), 5.5, duration=100.0, dt=0.01, record=())
    assert abs(int(const.spike_count) - counts.mean()) <= 1


def _course_run(current):
    y0 = hh_jax.HHState(V=jnp.asarray(-70.0), m=jnp.asarray(0.05), h=jnp.asarray(0.54), n=jnp.asarray(0.34))
    return hh_jax.simulate(hh_jax.HHParams.hh1952(), current, duration=100.0, dt=0.01, y0=y0)


def test_seed004_fixed_point_at_zero_current():
    r = _course_run(0.0)
    rest = hh_jax.equilibrium(hh_jax.HHParams.hh1952())
    assert int(r.spike_count) == 0
    assert abs(float(r.final_state.V) - float(rest.V)) < 0.01
    assert abs(float(rest.V) + 64.996) < 0.001


def test_seed004_voltage_shape_at_ten():
    """Seed 004, I = 10: repetitive spikes; peak, after-hyperpolarisation and period."""
    r = _course_run(10.0)
    t, V = np.asarray(r.t), np.asarray(r.V)
    spikes = np.asarray(r.spike_times)[: int(r.spike_count)]
    assert int(r.spike_count) == 7
    assert 42.0 < spikes[3] < 56.0  # the course zooms on [42, 56] ms to show one spike
    ref = reference_spikes("hh1952", 10.0, 100.0)  # SciPy DOP853, from rest
    assert abs(np.diff(spikes)[-1] - np.diff(ref)[-1]) < 0.01  # same limit cycle period
    late = t > spikes[1]
    assert 25.0 < V[late].max() < 40.0  # spike peak (absolute mV), below ENa = 50
    assert -77.0 < V[late].min() < -72.0  # after-hyperpolarisation, above EK = -77
    assert V[late].min() < float(hh_jax.equilibrium(hh_jax.HHParams.hh1952()).V) - 5.0


def test_seed002_each_pulse_fires_one_spike():
    """Seed 002 without noise: every 5 ms x 5 uA/cm^2 pulse elicits one spike within its pulse window."""
    times = ([500.0, 550.0, 1000.0, 1030.0, 1060.0, 1100.0, 1200.0], [600.0, 900.0, 950.0, 1500.0])
    stim = hh_jax.Stack([hh_jax.PulseTrain(ts, widths=5.0, amplitudes=5.0) for ts in times])
    y0 = hh_jax.brainpy_initial_state(jax.random.key(0), 2)
    r = hh_jax.simulate(hh_jax.HHParams(), stim, duration=2000.0, dt=0.025, y0=y0, record=())
    table = r.spike_table()
    for neuron, onsets in enumerate(times):
        fired = table[(table[:, 0] == neuron) & (table[:, 1] > 10.0), 1]  # skip the initial kick
        assert fired.size == len(onsets), (neuron, fired)
        assert np.all((fired > np.asarray(onsets)) & (fired < np.asarray(onsets) + 10.0))


def test_seed001_rk4_fails_at_coarse_step_where_exp_euler_does_not():
    p = hh_jax.HHParams()
    rk4 = hh_jax.simulate(p, 10.0, duration=100.0, dt=0.1, stepper=hh_jax.RK4(), record=(), throw=False)
    ee = hh_jax.simulate(p, 10.0, duration=100.0, dt=0.1, record=())
    ref = reference_spikes("brainpy", 10.0, 100.0)
    assert not bool(rk4.finite)
    assert bool(ee.finite) and int(ee.spike_count) == ref.size

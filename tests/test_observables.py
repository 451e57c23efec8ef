"""Item 6 of issue 13: every recordable observable comes from one table (`hh_jax.OBSERVABLES`).

Each name of the table is recordable through `simulate` (fused kernel and `lax.scan` loop, same
values), is a `SimulationResult` field, survives `save_result`/`load_result`, and is plotted with
the table's unit; an unknown name raises a `ValueError` naming `record`.
"""

import dataclasses

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hh_jax  # noqa: E402
import hh_jax.plot  # noqa: E402
from hh_jax._fused import kernel_path  # noqa: E402
from hh_jax._observables import OBSERVABLES, state_names  # noqa: E402

NAMES = tuple(OBSERVABLES)
P = hh_jax.HHParams(gNa=jnp.array([120.0, 100.0]))
STIM = hh_jax.Step(jnp.array([10.0, 15.0]), onset=2.0)
BACKENDS = {
    "scan": hh_jax.ScanLoop(),
    "kernel": pytest.param(
        hh_jax.FusedCPU(),
        marks=pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel"),
    ),
}


@pytest.fixture(scope="module")
def runs():
    kw = dict(duration=10.0, dt=0.01, record=NAMES, record_every=5)
    out = {"scan": hh_jax.simulate(P, STIM, backend=hh_jax.ScanLoop(), **kw)}
    if kernel_path() is not None:
        out["kernel"] = hh_jax.simulate(P, STIM, backend=hh_jax.FusedCPU(), **kw)
    return out


def test_table_drives_the_public_lists():
    assert hh_jax.RECORDABLE == NAMES
    fields = [f.name for f in dataclasses.fields(hh_jax.SimulationResult)]
    assert [f for f in fields if f in OBSERVABLES] == list(NAMES)
    for name, o in OBSERVABLES.items():
        assert o.unit and o.label and set(o.needs) <= set("Vmhn"), name
    assert state_names(("INa",)) == "Vmh" and state_names(("gL", "I")) == ""


@pytest.mark.parametrize("backend", ["scan", "kernel"])
def test_every_name_is_recorded_and_computed_by_its_row(runs, backend):
    if backend not in runs:
        pytest.skip("no C++ compiler: no fused kernel")
    r = runs[backend]
    ys = hh_jax.HHState(V=r.V, m=r.m, h=r.h, n=r.n)
    I = jax.vmap(STIM)(r.t)
    for name, o in OBSERVABLES.items():
        trace = r.trace(name)
        assert trace.shape == (r.t.shape[0], 2), name
        expected = np.broadcast_to(o.compute(P, ys, I if o.uses_current else None), trace.shape)
        np.testing.assert_allclose(np.asarray(trace), expected, rtol=1e-12, atol=1e-12, err_msg=name)
    if "kernel" in runs and backend == "kernel":
        for name in NAMES:
            np.testing.assert_allclose(runs["kernel"].trace(name), runs["scan"].trace(name),
                                       rtol=1e-9, atol=1e-9, err_msg=name)


@pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")
@pytest.mark.parametrize("name", NAMES)
def test_each_name_alone_through_the_kernel(runs, name):
    # the kernel keeps only the state variables the table says `name` needs
    kw = dict(duration=10.0, dt=0.01, record=(name,), record_every=5)
    k = hh_jax.simulate(P, STIM, backend=hh_jax.FusedCPU(), **kw)
    assert all(getattr(k, other) is None for other in NAMES if other != name)
    np.testing.assert_allclose(k.trace(name), runs["scan"].trace(name), rtol=1e-9, atol=1e-9)


def test_every_name_survives_save_and_load(runs, tmp_path):
    r = runs["scan"]
    back = hh_jax.load_result(hh_jax.save_result(tmp_path / "r.npz", r))
    for name in NAMES:
        np.testing.assert_array_equal(back.trace(name), r.trace(name), err_msg=name)


@pytest.mark.parametrize("name", NAMES)
def test_every_name_is_plotted_with_its_unit(runs, name):
    r = runs["scan"]
    _, ax = plt.subplots()
    assert hh_jax.plot.traces(r, (name,), ax=ax, neuron=1) is ax
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), np.asarray(r.trace(name))[:, 1])
    assert ax.get_ylabel().endswith(f"({OBSERVABLES[name].unit})")
    plt.close("all")


def test_plot_traces_rejects_unknown_names_and_mixed_units(runs):
    with pytest.raises(ValueError, match="names"):
        hh_jax.plot.traces(runs["scan"], ("Vx",))
    with pytest.raises(ValueError, match="units"):
        hh_jax.plot.traces(runs["scan"], ("V", "INa"))
    plt.close("all")


@pytest.mark.parametrize("kw", [dict(backend=hh_jax.ScanLoop()), dict(backend=hh_jax.FusedCPU()),
                                dict(stepper=hh_jax.RK4())])
def test_unknown_name_raises_naming_record(kw):
    with pytest.raises(ValueError, match="record"):
        hh_jax.simulate(P, STIM, duration=1.0, dt=0.01, record=("V", "ICa"), **kw)

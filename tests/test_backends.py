"""Backends as objects (issue 13, item 3): the automatic choice, overriding it, each backend's
refusal, the same results on every backend, one compilation of the shared jitted core, and the
removed keywords."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax  # noqa: E402
from hh_jax import HHParams  # noqa: E402
from hh_jax._backends import AbstractBackend, Loop, choose  # noqa: E402
from hh_jax._fused import kernel_path  # noqa: E402
from hh_jax._prepare import prepare  # noqa: E402

needs_kernel = pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")
KW = dict(duration=20.0, dt=0.01, record=("V",), record_every=10, max_spikes=4)


def _prepared(stimulus=10.0, params=None, **kw):
    args = dict(duration=20.0, dt=0.01, y0=None, record=("V",), record_every=1, max_spikes=None,
                t0=0.0, throw=True) | kw
    return prepare(HHParams() if params is None else params, stimulus, **args)


@needs_kernel
def test_automatic_choice_for_each_case(monkeypatch):
    from hh_jax import _fused

    assert choose(hh_jax.ExpEuler(), _prepared()) == hh_jax.FusedCPU()
    assert choose(hh_jax.ExpEuler(staggered=False), _prepared()) == hh_jax.FusedCPU()
    assert choose(hh_jax.RK4(), _prepared()) == hh_jax.ScanLoop()
    assert choose(diffrax.Tsit5(), _prepared()) == hh_jax.DiffraxAdapter(diffrax.Tsit5())
    # a stimulus the kernel cannot tabulate: the scan loop
    monkeypatch.setattr(_fused, "MAX_TABLE", 0)
    assert choose(hh_jax.ExpEuler(), _prepared(hh_jax.Step(10.0, onset=1.0))) == hh_jax.ScanLoop()


def test_the_choice_without_the_kernel_is_the_scan(monkeypatch):
    from hh_jax import _fused

    monkeypatch.setattr(_fused, "_library", lambda: (None, "no C++ compiler (test)"))
    assert choose(hh_jax.ExpEuler(), _prepared()) == hh_jax.ScanLoop()
    with pytest.raises(ValueError, match=r"backend FusedCPU cannot run this simulation: no C\+\+ compiler \(test\)"):
        hh_jax.simulate(HHParams(), 10.0, **KW, backend=hh_jax.FusedCPU())


def test_refusals_name_the_backend_and_the_reason():
    p = HHParams()
    cases = [
        (dict(stepper=hh_jax.RK4(), backend=hh_jax.FusedCPU()), r"backend FusedCPU .*it runs ExpEuler only, got stepper=RK4\(\)"),
        (dict(stepper=diffrax.Tsit5(), backend=hh_jax.ScanLoop()), r"backend ScanLoop .*fixed-step stepper.*stepper=Tsit5\(\)"),
        (dict(stepper=hh_jax.ExpEuler(), backend=hh_jax.DiffraxAdapter(diffrax.Tsit5())),
         r"backend DiffraxAdapter .*its own solver Tsit5\(\); stepper=ExpEuler\(.*\) contradicts it"),
        (dict(stepper=diffrax.Dopri5(), backend=hh_jax.DiffraxAdapter(diffrax.Tsit5())), r"stepper=Dopri5\(\) contradicts it"),
    ]
    for kw, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            hh_jax.simulate(p, 10.0, **KW, **kw)
    with pytest.raises(TypeError, match="backend must be an AbstractBackend"):
        hh_jax.simulate(p, 10.0, **KW, backend=hh_jax.ExpEuler())


@pytest.mark.parametrize("old", [dict(unroll=2), dict(checkpoint=True), dict(population=hh_jax.PerNeuronODE()), dict(max_steps=10),
                                 dict(adjoint=diffrax.BacksolveAdjoint()),
                                 dict(stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6))],
                         ids=lambda d: next(iter(d)))
def test_removed_keywords_raise_type_error(old):
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{next(iter(old))}'"):
        hh_jax.simulate(HHParams(), 10.0, **KW, **old)


def test_exp_euler_has_no_backend_field():
    with pytest.raises(TypeError):
        hh_jax.ExpEuler(**{"fused": True})  # the old spelling
    assert not hasattr(hh_jax.ExpEuler(), "fused")


def test_the_same_results_on_every_backend():
    p = HHParams(gNa=jnp.array([120.0, 100.0]))
    scan = hh_jax.simulate(p, 10.0, **KW, backend=hh_jax.ScanLoop())
    assert np.all(np.asarray(scan.spike_count) >= 1)
    # the scan loop's options change how it runs, not what it computes
    other = hh_jax.simulate(p, 10.0, **KW, backend=hh_jax.ScanLoop(unroll=3, checkpoint=True))
    np.testing.assert_allclose(other.V, scan.V, rtol=0, atol=1e-12)
    np.testing.assert_allclose(other.spike_times, scan.spike_times, rtol=0, atol=1e-12)
    if kernel_path() is not None:
        fused = hh_jax.simulate(p, 10.0, **KW, backend=hh_jax.FusedCPU())
        auto = hh_jax.simulate(p, 10.0, **KW)
        np.testing.assert_array_equal(fused.V, auto.V)
        np.testing.assert_allclose(fused.V, scan.V, rtol=0, atol=1e-9)
        np.testing.assert_allclose(fused.spike_times, scan.spike_times, rtol=0, atol=1e-9)
    # Diffrax: another scheme, so to the scan's accuracy; the shorthand is the default adapter
    pid = diffrax.PIDController(rtol=1e-8, atol=1e-8)
    dfx = hh_jax.simulate(p, 10.0, **KW, backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=pid))
    np.testing.assert_array_equal(dfx.spike_count, scan.spike_count)
    np.testing.assert_allclose(dfx.spike_times, scan.spike_times, rtol=0, atol=0.02)
    short = dict(KW, duration=2.0)
    a = hh_jax.simulate(p, 10.0, **short, stepper=diffrax.Tsit5())
    b = hh_jax.simulate(p, 10.0, **short, backend=hh_jax.DiffraxAdapter(diffrax.Tsit5()))
    c = hh_jax.simulate(p, 10.0, **short, stepper=diffrax.Tsit5(), backend=hh_jax.DiffraxAdapter(diffrax.Tsit5()))
    np.testing.assert_array_equal(a.V, b.V)
    np.testing.assert_array_equal(a.V, c.V)


class _Log:
    """A mutable record, hashed by identity (a static field of a backend)."""

    def __init__(self):
        self.calls = []


class _Counting(AbstractBackend):
    """A backend of one's own: the scan loop, counting how often the core traces it."""

    inner: hh_jax.ScanLoop
    log: _Log = eqx.field(static=True)

    def unavailable_reason(self, stepper, prepared):
        return self.inner.unavailable_reason(stepper, prepared)

    def run(self, params, stimulus, y0, stepper, problem) -> Loop:
        self.log.calls.append(problem.n_steps)
        return self.inner.run(params, stimulus, y0, stepper, problem)


def test_the_shared_core_compiles_once_for_new_t0_dt_and_params():
    log = _Log()
    backend = _Counting(hh_jax.ScanLoop(), log)
    runs = [(HHParams(), 0.0, 1.0, 0.01), (HHParams(gNa=110.0), 5.0, 2.0, 0.02), (HHParams(gK=30.0), -3.0, 0.5, 0.005)]
    out = [hh_jax.simulate(p, 10.0, duration=d, dt=dt, t0=t0, record=("V",), backend=backend)
           for p, t0, d, dt in runs]
    assert log.calls == [100], log.calls  # one trace: t0, dt and parameter values are runtime values
    ref = hh_jax.simulate(HHParams(gNa=110.0), 10.0, duration=2.0, dt=0.02, t0=5.0, backend=hh_jax.ScanLoop())
    np.testing.assert_array_equal(out[1].V, ref.V)
    assert out[1].dt == 0.02 and out[1].duration == 2.0


def test_pallas_gpu_through_simulate_equals_the_scan_loop_and_its_gradients():
    """`PallasGPU` (here in the Pallas interpreter) behind `simulate`: same traces, spikes and
    final state as `ScanLoop` (f64, 1e-9), and `jax.grad` through it is the scan loop's."""
    p = HHParams(gNa=jnp.array([120.0, 110.0, 125.0]))
    stim = hh_jax.Step(10.0, onset=2.0)
    kw = dict(duration=15.0, dt=0.025, record=("V", "m"), record_every=4, max_spikes=3)
    a = hh_jax.simulate(p, stim, **kw, backend=hh_jax.PallasGPU(interpret=True))
    b = hh_jax.simulate(p, stim, **kw, backend=hh_jax.ScanLoop())
    np.testing.assert_array_equal(a.spike_count, b.spike_count)
    assert int(a.spike_count.sum()) >= 3
    for name in ("V", "m", "spike_times"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(a.final_state.V, b.final_state.V, rtol=0, atol=1e-9)

    def loss(gK, backend):
        r = hh_jax.simulate(HHParams(gK=gK), stim, **kw, backend=backend)
        return jnp.sum(r.V**2) + jnp.sum(jnp.where(jnp.isfinite(r.spike_times), r.spike_times, 0.0))

    g_pallas = jax.grad(loss)(36.0, hh_jax.PallasGPU(interpret=True))
    g_scan = jax.grad(loss)(36.0, hh_jax.ScanLoop())
    np.testing.assert_allclose(g_pallas, g_scan, rtol=1e-10)


def test_pallas_gpu_refuses_without_a_gpu_and_the_choice_falls_back():
    """On a CPU, forcing `PallasGPU()` says why; the automatic choice never picks it there."""
    if jax.default_backend() == "gpu":
        pytest.skip("on a GPU the kernel runs")
    with pytest.raises(ValueError, match=r"backend PallasGPU cannot run this simulation: it runs on a GPU only \(default backend: cpu\)"):
        hh_jax.simulate(HHParams(), 10.0, **KW, backend=hh_jax.PallasGPU())
    with pytest.raises(ValueError, match=r"backend PallasGPU .*it runs ExpEuler only, got stepper=RK4\(\)"):
        hh_jax.simulate(HHParams(), 10.0, **KW, stepper=hh_jax.RK4(), backend=hh_jax.PallasGPU(interpret=True))
    assert not isinstance(choose(hh_jax.ExpEuler(), _prepared()), hh_jax.PallasGPU)
    with pytest.raises(ValueError, match=r"PallasGPU\.block must be a power of 2 \(neurons per program\), got 96"):
        hh_jax.PallasGPU(block=96)

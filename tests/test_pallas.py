"""The Pallas GPU kernel (`hh_jax/_pallas.py`) without a GPU.

- Interpret mode (the kernel body run by the Pallas interpreter on the CPU) equals the `lax.scan`
  loop on the case matrix of the fused CPU kernel's tests: stimuli constant, per-neuron
  constant, population-wide and per-neuron tabulated; record subsets and `record_every` (with a
  remainder); `max_spikes` 0 and small with overflow (counts stay exact); `t0` ≠ 0; both spike
  interpolations; heterogeneous parameters; staggered and simultaneous; a 2-D population; a
  population that is not a multiple of the block; `vmap`. float64 to 1e-9, float32 spike times
  to 1e-3 ms.
- The kernel lowers for CUDA on this CPU machine (`jax.export` with ``platforms=["cuda"]``),
  float32 and float64, for each record/stimulus case: most lowering errors show here.
- The scan loop lowered for CUDA holds no host callback.

Sizes are reduced (≤ 10 neurons, ≤ 1000 steps): the interpreter runs the kernel's loop as XLA
CPU code.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams
from hh_jax import _pallas
from hh_jax._prepare import default_y0
from hh_jax._spikes import refine
from hh_jax._stimulus import as_stimulus

TRITON = jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")


# --- The one place that knows the private scan loop's calling convention ----------------------
def _config(shape, dtype, *, n_steps, dt, t0=0.0, states="V", every=1, S=4, interp=hh_jax.HermiteSpikes()):
    from hh_jax._prepare import Problem

    return Problem(
        n_steps=n_steps, dt=jnp.asarray(dt, dtype), t0=jnp.asarray(t0, dtype), record=tuple(states),
        record_every=every, max_spikes=S, shape=shape, dtype=jnp.dtype(dtype), spike_interpolation=interp)


def _scan_arrays(params, stimulus, y0, config, staggered):
    """(final, counts, crossings, traces) of the `lax.scan` loop (the reference)."""
    return hh_jax.ScanLoop().arrays(params, stimulus, y0, hh_jax.ExpEuler(staggered=staggered), config)[:4]


def _inputs(params, stimulus, shape, dtype):
    from hh_jax._simulate_checks import stimulus_in_dtype

    stimulus = stimulus if isinstance(stimulus, hh_jax.AbstractStimulus) else as_stimulus(stimulus)
    y0 = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, shape).astype(dtype), default_y0(shape, dtype))
    params = jax.tree_util.tree_map(lambda x: x.astype(dtype), params)
    return params, stimulus_in_dtype(stimulus, dtype), y0
# -------------------------------------------------------------------------------------------------


def _both(params, stimulus, shape, dtype=jnp.float64, *, staggered=True, block=None, interpret=True, **kw):
    config = _config(shape, dtype, **kw)
    params, stimulus, y0 = _inputs(params, stimulus, shape, dtype)
    states = "".join(config.record)
    pallas = jax.jit(lambda p, y: _pallas.pallas_arrays(
        p, stimulus, y, config=config, staggered=staggered, states=states, interpret=interpret, block=block))
    scan = jax.jit(lambda p, y: _scan_arrays(p, stimulus, y, config, staggered))
    return pallas(params, y0), scan(params, y0), params, config


def _times(out, params, config):
    V_th = jnp.broadcast_to(params.V_th, config.shape).reshape(-1)
    return np.asarray(refine(out[2], t0=config.t0, dt=config.dt, V_th=V_th,
                             interpolation=config.spike_interpolation))


def _assert_equal(a, b, params, config, *, tol=1e-9):
    final_a, count_a, cross_a, traces_a = a
    final_b, count_b, cross_b, traces_b = b
    np.testing.assert_array_equal(np.asarray(count_a), np.asarray(count_b))  # exact, overflow too
    assert count_a.shape == config.shape and count_a.dtype == jnp.int32
    np.testing.assert_array_equal(np.asarray(cross_a.step), np.asarray(cross_b.step))
    assert cross_a.bracket.shape == cross_b.bracket.shape
    close = lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)
    close(cross_a.bracket, cross_b.bracket)
    close(_times(a, params, config), _times(b, params, config))
    for v in "Vmhn":
        close(getattr(final_a, v), getattr(final_b, v))
    assert sorted(traces_a) == sorted(traces_b)
    for v in traces_a:
        assert traces_a[v].shape == traces_b[v].shape, v
        close(traces_a[v], traces_b[v])


CASES = {
    # name: (params, stimulus, population shape, options)
    "per-neuron constant, S=2 overflows, t0, V every 3, two blocks (padded)": (
        HHParams(), jnp.linspace(0.0, 20.0, 7), (7,),
        dict(n_steps=500, dt=0.05, t0=3.0, states="V", every=3, S=2, block=4)),
    "per-neuron sine, linear, simultaneous, heterogeneous, remainder": (
        HHParams(gK=jnp.linspace(30.0, 40.0, 6), C=jnp.linspace(0.8, 1.2, 6), temperature=10.0),
        hh_jax.Sine(amplitude=jnp.linspace(2.0, 12.0, 6), frequency=50.0, offset=8.0), (6,),
        dict(n_steps=403, dt=0.05, t0=-2.0, states="Vn", every=5, S=3, interp=hh_jax.LinearSpikes(), staggered=False)),
    "2-D population, population-wide step, counts only": (
        HHParams(gNa=jnp.array([[100.0], [130.0]]), gL=jnp.array([0.2, 0.3, 0.4])),
        hh_jax.Step(12.0, onset=5.0, offset=25.0), (2, 3), dict(n_steps=400, dt=0.05, states="hn", every=7, S=0)),
    "white noise per neuron, every state every step": (
        HHParams(), hh_jax.WhiteNoise(jax.random.key(3), sigma=2.0, dt=0.05, shape=(3,), mean=9.0), (3,),
        dict(n_steps=300, dt=0.05, states="Vmhn", every=1, S=3)),
}


gpu = pytest.mark.skipif(jax.default_backend() != "gpu",
                         reason="needs a GPU (benchmarks/gpu_check.sh runs these tests there)")


def _case(name, *, interpret, tol):
    params, stim, shape, kw = CASES[name]
    kw = dict(kw)
    staggered, block = kw.pop("staggered", True), kw.pop("block", None)
    a, b, params, config = _both(params, stim, shape, staggered=staggered, block=block, interpret=interpret, **kw)
    if config.max_spikes:
        assert int(np.sum(np.asarray(a[1]))) > 0
    _assert_equal(a, b, params, config, tol=tol)
    return a, config


@pytest.mark.parametrize("name", list(CASES))
def test_interpret_equals_the_scan_loop(name):
    a, config = _case(name, interpret=True, tol=1e-9)
    if name.startswith("per-neuron constant"):  # the buffer overflowed: counts kept counting
        assert np.max(np.asarray(a[1])) > config.max_spikes


def test_interpret_float32_spike_times_agree_to_a_microsecond(float32):
    _float32_case(interpret=True)


def _float32_case(*, interpret):
    a, b, params, config = _both(HHParams(), jnp.linspace(6.0, 14.0, 4), (4,), jnp.float32, interpret=interpret,
                                 n_steps=1000, dt=0.02, states="V", every=10, S=6)
    assert a[3]["V"].dtype == jnp.float32 and a[2].bracket.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(a[1]), np.asarray(b[1]))
    np.testing.assert_allclose(_times(a, params, config), _times(b, params, config), rtol=0, atol=1e-3)
    # mV: a spike's upstroke (~100 mV/ms) turns a time shift of 1e-4 ms into 1e-2 mV
    np.testing.assert_allclose(np.asarray(a[3]["V"]), np.asarray(b[3]["V"]), rtol=0, atol=1e-2 if interpret else 1.0)


def test_interpret_under_vmap_equals_the_scan_loop():
    _vmap_case(interpret=True, tol=1e-9)


def _vmap_case(*, interpret, tol):
    shape, dtype = (), jnp.float64  # one neuron per call: a block of 1
    config = _config(shape, dtype, n_steps=300, dt=0.05, states="V", every=2, S=3)
    stim = hh_jax.Step(10.0, onset=1.0)
    gNa = jnp.array([90.0, 120.0, 150.0])

    def run(g, pallas):
        params, stimulus, y0 = _inputs(HHParams(gNa=g), stim, shape, dtype)
        if pallas:
            return _pallas.pallas_arrays(params, stimulus, y0, config=config, staggered=True, states="V",
                                         interpret=interpret)
        return _scan_arrays(params, stimulus, y0, config, True)

    batched = jax.jit(jax.vmap(lambda g: run(g, True)))(gNa)
    reference = jax.jit(jax.vmap(lambda g: run(g, False)))(gNa)
    np.testing.assert_array_equal(np.asarray(batched[1]), np.asarray(reference[1]))
    np.testing.assert_array_equal(np.asarray(batched[2].step), np.asarray(reference[2].step))
    np.testing.assert_allclose(np.asarray(batched[3]["V"]), np.asarray(reference[3]["V"]), rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(batched[2].bracket), np.asarray(reference[2].bracket), rtol=tol, atol=tol)
    assert batched[3]["V"].shape == (3, 151) and batched[1].shape == (3,)
    assert int(np.sum(np.asarray(batched[1]))) > 0


# --- On a GPU (Triton): the same matrix; exp/expm1 are libdevice's there, XLA's in the scan --------
GPU_TOL = 1e-8


@gpu
@pytest.mark.parametrize("name", list(CASES))
def test_gpu_kernel_equals_the_scan_loop(name):
    _case(name, interpret=False, tol=GPU_TOL)


@gpu
def test_gpu_kernel_float32_spike_times(float32):
    _float32_case(interpret=False)


@gpu
def test_gpu_kernel_under_vmap():
    _vmap_case(interpret=False, tol=GPU_TOL)


@gpu
def test_gpu_kernel_many_blocks_padded():
    # 128-neuron programs, the last one padded; every neuron its own current
    N = 3 * 128 + 5
    a, b, params, config = _both(HHParams(), jnp.linspace(0.0, 30.0, N), (N,), n_steps=2000, dt=0.025,
                                 states="V", every=50, S=4)
    assert _pallas.pallas_unavailable_reason(hh_jax.Constant(1.0), config, jnp.float64) is None
    _assert_equal(a, b, params, config, tol=GPU_TOL)


def test_unavailable_reasons(monkeypatch):
    config = _config((10**5,), jnp.float32, n_steps=10**4, dt=0.01)
    constant = hh_jax.Constant(jnp.ones(10**5))
    if jax.default_backend() != "gpu":
        assert "GPU only" in _pallas.pallas_unavailable_reason(constant, config, jnp.float32, interpret=False)
    assert _pallas.pallas_unavailable_reason(constant, config, jnp.float32, interpret=True) is None
    assert "float16" in _pallas.pallas_unavailable_reason(constant, config, jnp.float16, interpret=True)
    noise = hh_jax.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.01, shape=(10**5,))
    monkeypatch.setattr(_pallas, "MAX_TABLE", 10**8)
    assert "exceeds 100000000" in _pallas.pallas_unavailable_reason(noise, config, jnp.float32, interpret=True)
    big = _config((10**7,), jnp.float32, n_steps=1000, dt=0.01, S=100)
    assert "32-bit" in _pallas.pallas_unavailable_reason(hh_jax.Constant(1.0), big, jnp.float32, interpret=True)
    empty = _config((0,), jnp.float64, n_steps=5, dt=0.01, states="Vn", S=2)
    params, stimulus = HHParams(), as_stimulus(1.0)
    y0 = hh_jax.HHState(*(jnp.zeros((0,)) for _ in range(4)))
    final, count, crossings, traces = _pallas.pallas_arrays(params, stimulus, y0, config=empty, staggered=True,
                                                            states="Vn", interpret=True)
    assert final.V.shape == count.shape == (0,) and traces["n"].shape == (6, 0)
    assert crossings.step.shape == (2, 0) and crossings.bracket.shape == (2, 0, 4)
    with pytest.raises(ValueError, match="block must be a power of 2"):
        _both(HHParams(), 1.0, (3,), n_steps=2, dt=0.01, block=3)


# --- CUDA lowering on this CPU-only machine ---------------------------------------------------
LOWERING_CASES = {
    "constant, counts only": (10.0, (300,), dict(states="", S=0)),
    "population table, V every 5, hermite": (hh_jax.Step(10.0, onset=1.0), (300,), dict(states="V", every=5, S=3)),
    "per-neuron table, Vmhn, hermite": (hh_jax.Sine(amplitude=jnp.linspace(1.0, 5.0, 300), frequency=40.0),
                                         (300,), dict(states="Vmhn", every=3, S=2)),
    "per-neuron constant, linear": (jnp.linspace(0.0, 20.0, 300), (300,), dict(states="Vh", S=2, interp=hh_jax.LinearSpikes())),
}


def _export_for_cuda(f, *args):
    return jax.export.export(jax.jit(f), platforms=["cuda"], disabled_checks=[TRITON])(*args).mlir_module()


@pytest.mark.parametrize("name", list(LOWERING_CASES))
def test_the_kernel_lowers_for_cuda(name, precision):
    dtype = jnp.dtype(precision)
    stim, shape, kw = LOWERING_CASES[name]
    config = _config(shape, dtype, n_steps=64, dt=0.01, **kw)
    params, stimulus, y0 = _inputs(HHParams(gK=jnp.linspace(30.0, 40.0, 300)), stim, shape, dtype)
    text = _export_for_cuda(lambda p, y: _pallas.pallas_arrays(
        p, stimulus, y, config=config, staggered=True, states=kw["states"]), params, y0)
    # one Triton kernel (the time loop inside it), its float type that of the run
    assert text.count("stablehlo.custom_call @__gpu$xla.gpu.triton") == 1
    assert "x" + ("f32" if dtype == jnp.float32 else "f64") + ">" in text.split("__gpu$xla.gpu.triton")[1][-20000:]


def test_the_kernel_lowers_for_cuda_under_vmap():
    dtype, shape = jnp.float64, (256,)
    config = _config(shape, dtype, n_steps=16, dt=0.01, states="V", S=2)

    def run(g):
        params, stimulus, y0 = _inputs(HHParams(gNa=g), hh_jax.Step(10.0, onset=0.05), shape, dtype)
        return _pallas.pallas_arrays(params, stimulus, y0, config=config, staggered=True, states="V")

    text = _export_for_cuda(jax.vmap(run), jnp.array([100.0, 120.0]))
    assert text.count("stablehlo.custom_call @__gpu$xla.gpu.triton") == 1


# Host round trips: a callback to Python (a custom call), host transfers, infeed/outfeed.
_HOST_OPS = {"stablehlo.custom_call", "stablehlo.send", "stablehlo.recv", "stablehlo.infeed", "stablehlo.outfeed"}


def _scan_for_cuda(S, platform="cuda"):
    """The StableHLO text of the scan loop lowered for `platform`."""
    # 100 neurons: above _backends._RECORD_ALWAYS, where the CPU skips steps without a crossing
    dtype, shape = jnp.float64, (100,)
    config = _config(shape, dtype, n_steps=20, dt=0.01, states="V", every=5, S=S)
    params, stimulus, y0 = _inputs(HHParams(), hh_jax.Step(10.0, onset=0.05), shape, dtype)
    return jax.export.export(jax.jit(lambda p, y: _scan_arrays(p, stimulus, y, config, True)),
                             platforms=[platform])(params, y0).mlir_module()


def _ops(text):
    return set(re.findall(r"stablehlo\.[a-z_]+", text))


def _data_dependent_cases(text):
    """The `stablehlo.case` ops whose branch index is not a constant. `lax.platform_dependent`
    selects its branch with a case on a constant (the platform's index; XLA folds it away), so
    a case on a constant, or on the result of such a case, is static."""
    static = set(re.findall(r"(%[\w#]+) = stablehlo\.constant", text))
    dynamic = []
    for result, index in re.findall(r'(%[\w#]+)(?::\d+)? = "stablehlo\.case"\((%[\w#]+)\)', text):
        if index in static:
            static.add(result)
        else:
            dynamic.append(index)
    return dynamic


def test_the_scan_loop_lowered_for_cuda_has_no_host_round_trip():
    ops = _ops(_scan_for_cuda(S=3))
    assert not ops & _HOST_OPS
    assert "stablehlo.while" in ops


def test_the_scan_loop_lowered_for_cuda_has_no_conditional_per_step():
    """A `lax.cond` lowers to `stablehlo.case`, whose branch index XLA:GPU's ConditionalThunk
    copies to the host at every step: on a GPU the crossing record is written unconditionally
    (`lax.platform_dependent`); the CPU keeps the cond, which skips the serial scatter."""
    assert _data_dependent_cases(_scan_for_cuda(S=3)) == []
    assert len(_data_dependent_cases(_scan_for_cuda(S=3, platform="cpu"))) == 1


@gpu
def test_gpu_simulate_chooses_the_pallas_kernel_and_its_gradients_are_the_scan_loops():
    """On a GPU `simulate` runs `ExpEuler` in `PallasGPU` by default; results equal `ScanLoop`'s
    (f64, the GPU's libdevice exp: GPU_TOL), and `jax.grad` through it is the scan loop's."""
    from hh_jax._backends import choose
    from hh_jax._prepare import prepare

    p = HHParams(gNa=jnp.linspace(100.0, 140.0, 300))
    kw = dict(duration=50.0, dt=0.025, record=("V",), record_every=10, max_spikes=8)
    prepared = prepare(p, 10.0, y0=None, t0=0.0, throw=True, **kw)
    assert isinstance(choose(hh_jax.ExpEuler(), prepared), hh_jax.PallasGPU)
    a = hh_jax.simulate(p, 10.0, **kw)
    b = hh_jax.simulate(p, 10.0, **kw, backend=hh_jax.ScanLoop())
    np.testing.assert_array_equal(np.asarray(a.spike_count), np.asarray(b.spike_count))
    np.testing.assert_allclose(np.asarray(a.V), np.asarray(b.V), rtol=0, atol=GPU_TOL)

    def loss(gK, backend):
        return jnp.sum(hh_jax.simulate(HHParams(gK=gK), 10.0, **kw, backend=backend).V ** 2)

    np.testing.assert_allclose(jax.grad(loss)(36.0, hh_jax.PallasGPU()), jax.grad(loss)(36.0, hh_jax.ScanLoop()),
                               rtol=1e-9)

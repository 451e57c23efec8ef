"""The fused kernel's discrete adjoint (`FusedCPU(derivative=FusedAdjoint())`, reverse mode).

- The generated C++ vector–Jacobian products (``hh_adjoint.h``, from `hh_jax._codegen`) equal
  `jax.vjp` of `_model`'s step and dV/dt on a grid of states, through the kernel's C test entry
  points (``hh_jax_step_vjp_*``, ``hh_jax_dvdt_vjp_*``), in both dtypes.
- Differential fuzz: `jax.grad` through the adjoint equals `jax.grad` through the `lax.scan`
  loop (float64, 1e-9 relative) over random parameters (scalar and per neuron), stimuli
  (constant, population-wide and per-neuron waveforms), records and decimation, spike-time
  losses (Hermite and linear brackets), y0, t0, temperature and the final state.
- Central differences; `jax.jvp`/`jax.jacfwd` still match the scan; `vmap` of the gradient;
  no recompilation for new values; the gradient's memory grows like √T, not T.
"""

import ctypes

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import FusedAdjoint, FusedCPU, HHParams, ScanLoop
from hh_jax import _codegen
from hh_jax._kernel_build import library

_LIB, _REASON = library()
pytestmark = pytest.mark.skipif(_LIB is None, reason=f"no fused kernel: {_REASON}")
_SUFFIX = {np.float64: "f64", np.float32: "f32"}
ADJ = FusedCPU(derivative=FusedAdjoint())
ADJ_K7 = FusedCPU(derivative=FusedAdjoint(checkpoint_every=7))
SCAN = ScanLoop()


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _states(n, dtype, seed=0):
    """A grid of (V, m, h, n, parameters, I, dt): V over [-200, 200] mV and the singular -40, -55 mV."""
    rng = np.random.default_rng(seed)
    V = np.concatenate([[-40.0, -55.0, -40.0 + 1e-7, -55.0 - 1e-6, 200.0, -200.0, 800.0, -800.0],
                        rng.uniform(-120.0, 60.0, n - 8)])
    gates = rng.uniform(0.0, 1.0, (3, n))
    par = np.stack([rng.uniform(60, 180, n), rng.uniform(10, 50, n), rng.uniform(0.1, 0.5, n),
                    rng.uniform(40, 60, n), rng.uniform(-90, -70, n), rng.uniform(-60, -50, n),
                    rng.uniform(0.5, 2.0, n), rng.uniform(0.5, 3.0, n)])
    I = rng.uniform(-10, 30, n)
    dt = rng.choice([0.01, 0.025, 0.1], n)
    return np.concatenate([V[None], gates, par, I[None], dt[None]]).astype(dtype)


@pytest.mark.parametrize("staggered", [True, False])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-4)])
def test_generated_step_vjp_is_jax_vjp(staggered, dtype, rtol):
    n = 64
    x = _states(n, dtype)
    ct = np.random.default_rng(1).normal(size=(4, n)).astype(dtype)
    inp = np.ascontiguousarray(np.concatenate([x, ct]))
    out = np.empty((len(_codegen.STEP_INPUTS), n), dtype)
    fn = getattr(_LIB, f"hh_jax_step_vjp_{_SUFFIX[dtype]}")
    fn.restype = None
    fn(_ptr(inp), ctypes.c_int64(n), ctypes.c_int64(staggered), _ptr(out))
    want = np.stack(jax.jit(jax.vmap(_codegen.step_vjp(staggered)))(*jnp.asarray(inp.astype(np.float64))))
    assert np.all(np.isfinite(out))
    scale = np.abs(want).max(axis=1, keepdims=True) + 1e-300
    np.testing.assert_allclose(out / scale, want / scale, rtol=0, atol=rtol)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_generated_dvdt_vjp_is_jax_vjp(dtype, rtol):
    n = 64
    x = _states(n, dtype)
    keep = [*range(11), 12]  # no phi, no dt
    ct = np.random.default_rng(2).normal(size=(1, n)).astype(dtype)
    inp = np.ascontiguousarray(np.concatenate([x[keep], ct]))
    out = np.empty((len(_codegen.DVDT_INPUTS), n), dtype)
    fn = getattr(_LIB, f"hh_jax_dvdt_vjp_{_SUFFIX[dtype]}")
    fn.restype = None
    fn(_ptr(inp), ctypes.c_int64(n), _ptr(out))
    want = np.stack(jax.jit(jax.vmap(_codegen.dvdt_vjp))(*jnp.asarray(inp.astype(np.float64))))
    scale = np.abs(want).max(axis=1, keepdims=True) + 1e-300
    np.testing.assert_allclose(out / scale, want / scale, rtol=0, atol=rtol)


@pytest.mark.parametrize("staggered", [True, False])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_generated_step_forward_half_is_the_model_step(staggered, dtype, rtol):
    """The adjoint recomputes each segment with the forward half of the split VJP: its next
    state is `_model.exp_euler_step`'s (the VJP test above composes it with the backward half)."""
    n = 64
    inp = np.ascontiguousarray(_states(n, dtype))
    out = np.empty((4, n), dtype)
    fn = getattr(_LIB, f"hh_jax_step_fwd_{_SUFFIX[dtype]}")
    fn.restype = None
    fn(_ptr(inp), ctypes.c_int64(n), ctypes.c_int64(staggered), _ptr(out))
    want = np.stack(jax.jit(jax.vmap(_codegen._step(staggered)))(*jnp.asarray(inp.astype(np.float64))))
    scale = np.abs(want).max(axis=1, keepdims=True)
    np.testing.assert_allclose(out / scale, want / scale, rtol=0, atol=rtol)


def test_split_backward_divides_nothing_and_reads_the_stored_exponentials():
    """The backward half recomputes no exponential and no reciprocal: those are the residuals."""
    header = _codegen.adjoint_header()
    for scheme in ("staggered", "simultaneous"):
        start = header.index(f"void step_bwd_{scheme}(")
        body = header[start:header.index("\n}", start)]
        assert "vexp" not in body and "T(1) /" not in body and "sqrt" not in body
        assert "r[0 * rs]" in body


def test_polynomial_derivative_is_the_derived_polynomial():
    """`_model._horner`'s custom JVP: first and second derivatives of the series equal the
    derivatives of the closed forms they stand for (exprel near 0, the Bernoulli function)."""
    from hh_jax import _model

    with jax.enable_x64(True):
        z = jnp.asarray([-0.49, -1e-9, 0.0, 1e-9, 0.3, 0.49])
        exact = lambda z: jnp.where(z == 0, 1.0, jnp.expm1(z) / jnp.where(z == 0, 1.0, z))
        for f, ref in ((_model.exprel, exact),):
            d1 = jax.vmap(jax.grad(f))(z)
            d2 = jax.vmap(jax.grad(jax.grad(f)))(z)
            # closed forms: exprel' = (z e^z − e^z + 1)/z², → 1/2 at 0; exprel'' → 1/3 at 0
            far = jnp.abs(z) > 1e-3
            zs = jnp.where(far, z, 1.0)
            d1_ref = jnp.where(far, (zs * jnp.exp(zs) - jnp.expm1(zs)) / zs**2, 0.5 + z / 3)
            d2_ref = jnp.where(far, (jnp.exp(zs) * (zs**2 - 2 * zs + 2) - 2) / zs**3, 1 / 3 + z / 4)
            np.testing.assert_allclose(d1, d1_ref, rtol=1e-12)
            np.testing.assert_allclose(d2, d2_ref, rtol=1e-9)
        u = jnp.asarray([-0.49, -1e-9, 0.0, 0.25, 0.49])
        b1 = jax.vmap(jax.grad(_model.bernoulli))(u)
        far = jnp.abs(u) > 1e-3  # B(u) = u/(e^u - 1): B' = (e^u - 1 - u e^u)/(e^u - 1)^2
        us = jnp.where(far, u, 1.0)
        b1_ref = jnp.where(far, (jnp.expm1(us) - us * jnp.exp(us)) / jnp.expm1(us) ** 2,
                           -0.5 + u / 6 - u**3 / 180)
        np.testing.assert_allclose(b1, b1_ref, rtol=1e-9, atol=1e-12)


def test_unknown_primitive_is_refused_at_build_time():
    with pytest.raises(NotImplementedError, match="'sin'"):
        _codegen.cpp_function("f", lambda x: (jnp.sin(x),), ("x",), ("y",))


# --- the whole loop: fused adjoint vs the scan's gradient ------------------------------------
def _rel_close(a, b, rtol):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(np.abs(y).max(), 1e-30)
        np.testing.assert_allclose(x / scale, y / scale, rtol=0, atol=rtol)


def _case(seed):
    """A random simulation and a loss touching every differentiable output."""
    rng = np.random.default_rng(seed)
    N = int(rng.choice([1, 3, 9, 130]))
    per_neuron = bool(rng.integers(2))
    g = lambda lo, hi: jnp.asarray(rng.uniform(lo, hi, N) if per_neuron else rng.uniform(lo, hi))
    params = HHParams(gNa=g(90, 150), gK=g(25, 45), gL=g(0.2, 0.4), ENa=g(45, 55), EK=g(-80, -72),
                      EL=g(-56, -52), C=g(0.8, 1.3), temperature=float(rng.uniform(4.0, 12.0)))
    kind = ["const", "pop-step", "neuron-sine", "neuron-const"][seed % 4]
    amp = rng.uniform(8.0, 20.0)
    if kind == "const":
        stim = hh_jax.Constant(amp)
    elif kind == "pop-step":
        stim = hh_jax.Step(amp, onset=2.0, offset=16.0)
    elif kind == "neuron-sine":
        stim = hh_jax.Sine(jnp.asarray(rng.uniform(2, 6, N)), frequency=80.0, offset=amp)
    else:
        stim = hh_jax.Constant(jnp.asarray(rng.uniform(8, 20, N)))
    options = dict(
        duration=float(rng.choice([7.5, 20.0])), dt=float(rng.choice([0.01, 0.025])),
        record=[(), ("V",), ("V", "m"), ("n", "IK", "I"), ("V", "gNa", "INa")][int(rng.integers(5))],
        record_every=int(rng.choice([1, 3, 7])), max_spikes=int(rng.choice([1, 4])),
        spike_interpolation=[hh_jax.HermiteSpikes(), hh_jax.LinearSpikes()][int(rng.integers(2))],
        t0=float(rng.choice([0.0, 1.5])),
    )
    w = {name: jnp.asarray(rng.normal(size=1)) for name in ("trace", "spike", "final")}
    return N, params, stim, options, w


def _loss(params, stim, y0, backend, options, w):
    r = hh_jax.simulate(params, stim, y0=y0, backend=backend, **options)
    total = w["final"] * (r.final_state.V.sum() * 1e-2 + r.final_state.n.sum())
    for name in options["record"]:
        total = total + w["trace"] * jnp.sum(jnp.sin(0.01 * getattr(r, name)))
    t = r.spike_times
    total = total + w["spike"] * jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0))
    return total.sum()


@pytest.mark.parametrize("seed", range(6))
def test_fuzz_fused_adjoint_equals_scan_gradient(seed):
    N, params, stim, options, w = _case(seed)
    y0 = hh_jax.HHState(V=jnp.full(N, -64.0), m=jnp.full(N, 0.06), h=jnp.full(N, 0.58), n=jnp.full(N, 0.32))
    grad = lambda backend: eqx.filter_jit(eqx.filter_grad(
        lambda d: _loss(d[0], d[1], d[2], backend, options, w)))((params, stim, y0))
    want = grad(SCAN)
    for backend in (ADJ, ADJ_K7) if seed % 3 == 0 else (ADJ,):
        _rel_close(grad(backend), want, 1e-9)


def test_default_fused_backend_uses_the_adjoint_in_reverse_mode():
    """`jax.grad` through the default backend on the CPU calls the adjoint kernel (and never
    transposes the scan loop); `jax.jvp` evaluates the tangent primitive (the scan's tangents)."""
    loss = lambda g: hh_jax.simulate(HHParams(gNa=g), 10.0, duration=5.0, dt=0.025).V.sum()
    text = str(jax.make_jaxpr(jax.grad(loss))(120.0))
    assert "hh_jax_expeuler_vjp" in text and "length=200" not in text  # no scan over the 200 steps
    text = str(jax.make_jaxpr(lambda g: jax.jvp(loss, (g,), (1.0,)))(120.0))
    assert "hh_jax_fused_tangent" in text  # evaluated by the scan's JVP


def _sim(g, I, backend, **kw):
    p = eqx.tree_at(lambda p: (p.gNa, p.gK, p.gL), HHParams(), (g[0], g[1], g[2]))
    return hh_jax.simulate(p, I, duration=12.0, dt=0.025, backend=backend, record=("V", "n"),
                           record_every=4, **kw)


G = jnp.asarray([120.0, 36.0, 0.3])
I2 = jnp.asarray([7.0, 12.0])


def test_forward_mode_still_matches_the_scan():
    f = lambda backend: (lambda g: _sim(g, I2, backend).V[-1])
    t = jnp.asarray([1.0, -0.5, 0.01])
    (_, jv_adj), (_, jv_scan) = (jax.jvp(f(b), (G,), (t,)) for b in (ADJ, SCAN))
    _rel_close(jv_adj, jv_scan, 1e-9)
    jac = jax.jacfwd(f(SCAN))(G)
    _rel_close(jax.jacfwd(f(ADJ))(G), jac, 1e-9)
    _rel_close(jax.jacrev(f(ADJ))(G), jac, 1e-9)  # reverse (the adjoint) = forward
    # second order (the tangent primitive's JVP): forward over reverse
    h = lambda backend: jax.jacfwd(jax.grad(lambda g: _sim(g, I2, backend).V.sum()))(G)
    _rel_close(h(ADJ), h(SCAN), 1e-7)


def test_vmap_of_the_adjoint_gradient():
    loss = lambda g, I, backend: jnp.sum(_sim(g, I, backend).V ** 2)
    Is = jnp.asarray([[6.0, 9.0], [11.0, 14.0], [0.0, 20.0]])
    got = jax.vmap(jax.grad(loss), in_axes=(None, 0, None))(G, Is, ADJ)
    want = jnp.stack([jax.grad(loss)(G, I, SCAN) for I in Is])
    _rel_close(got, want, 1e-9)


def test_adjoint_gradient_compiles_once_for_new_values():
    from compile_count import count_compiles

    grad = eqx.filter_jit(jax.grad(lambda g, I: jnp.sum(_sim(g, I, ADJ).V ** 2)))
    jax.block_until_ready(grad(G, I2))
    G2, I3 = jax.block_until_ready((G * 1.1, I2 + 1.0))  # (eager: compiled outside the guard)
    with count_compiles() as n:
        jax.block_until_ready([grad(G2, I2), grad(G, I3)])
    assert n[0] == 0


def _grad_memory(n_steps, backend):
    """Bytes XLA plans for the gradient of a spike-time and final-state loss (no records)."""
    def loss(g):
        p = eqx.tree_at(lambda p: (p.gNa, p.gK, p.gL), HHParams(), (g[0], g[1], g[2]))
        r = hh_jax.simulate(p, jnp.linspace(6.0, 14.0, 64), duration=n_steps * 0.025, dt=0.025,
                            backend=backend, record=(), max_spikes=2)
        t = r.spike_times
        return jnp.sum(jnp.where(jnp.isfinite(t), t, 0.0)) + r.final_state.V.sum()

    m = jax.jit(jax.grad(loss)).lower(G).compile().memory_analysis()
    return m.temp_size_in_bytes + m.output_size_in_bytes


def test_adjoint_memory_grows_like_sqrt_T():
    """10× the steps: the adjoint's memory (its √T checkpoints) grows ~√10 = 3.2×; the
    un-checkpointed scan's (a carry per step) ~10×, which shows the measure can tell."""
    adj = _grad_memory(20000, ADJ) / _grad_memory(2000, ADJ)
    scan = _grad_memory(20000, SCAN) / _grad_memory(2000, SCAN)
    assert adj < 4.0, adj
    assert scan > 8.0, scan


@pytest.mark.parametrize("stim", [hh_jax.Step(12.0, onset=2.0), hh_jax.Step(jnp.asarray([5.0, 10.0, 20.0]), onset=1.0)])
def test_vmapped_starts_run_as_one_population(stim):
    """A fit's starts (`vmap` over parameters, one stimulus): the kernel and its adjoint fold the
    batch into one population; value and gradient per start (also w.r.t. the stimulus, a
    population-wide table's cotangent summed per start) equal the scan's, nested vmap too."""
    def loss(g, stim, backend):
        p = eqx.tree_at(lambda p: (p.gNa, p.gK), HHParams(), (g[0], g[1]))
        r = hh_jax.simulate(p, stim, duration=10.0, dt=0.025, backend=backend, record_every=2)
        return jnp.sum(r.V ** 2) * 1e-4 + jnp.sum(jnp.where(jnp.isfinite(r.spike_times), r.spike_times, 0.0))

    gs = jnp.stack([jnp.linspace(100.0, 140.0, 4), jnp.linspace(30.0, 40.0, 4)], axis=1)
    vg = lambda backend: jax.vmap(
        lambda g: eqx.filter_value_and_grad(lambda d: loss(d[0], d[1], backend))((g, stim)))(gs)
    _rel_close(vg(ADJ), vg(SCAN), 1e-9)
    if stim.amplitude.ndim:  # nested vmap (once: compilations are the cost here)
        outer = lambda backend: jax.vmap(jax.vmap(jax.grad(lambda g: loss(g, stim, backend))))(
            gs[:4].reshape(2, 2, 2))
        _rel_close(outer(ADJ), outer(SCAN), 1e-9)

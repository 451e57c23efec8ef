"""Spike refinement after the loop (`_spikes.refine`): the loops (the `lax.scan` loop and the fused
kernel) record each crossing's step and bracket; one function locates them all.

References independent of the implementation: `hermite_crossing` / `linear_crossing` applied
directly to synthetic brackets, the other backend (kernel vs scan), and a Diffrax Tsit5 run at
tight tolerance for the accuracy of the located times.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import _spikes
from hh_jax._spikes import Crossings, hermite_crossing, linear_crossing, refine

KERNEL = hh_jax.FusedCPU()
SCAN = hh_jax.ScanLoop()


def _brackets(S, N, seed=0):
    """Random rising brackets of a threshold crossing at V_th = 0 (V0 < 0 <= V1, slopes > 0)."""
    rng = np.random.default_rng(seed)
    V0 = -rng.uniform(0.1, 5.0, (S, N))
    V1 = rng.uniform(0.0, 5.0, (S, N))
    d0, d1 = rng.uniform(1.0, 200.0, (2, S, N))
    step = rng.integers(0, 10_000, (S, N)).astype(np.int32)
    step[-1, ::2] = -1  # empty rows
    return step, V0, V1, d0, d1


@pytest.fixture(params=["one block", "blocks of rows"])
def blocks(request, monkeypatch):
    """`refine` on the whole record at once, and in blocks of one row (skipping empty blocks)."""
    if request.param == "blocks of rows":
        monkeypatch.setattr(_spikes, "_BLOCK", 1)


@pytest.mark.parametrize("interpolation", [hh_jax.HermiteSpikes(), hh_jax.LinearSpikes()], ids=repr)
def test_refine_reproduces_the_crossing_functions_on_synthetic_brackets(interpolation, blocks):
    step, V0, V1, d0, d1 = _brackets(4, 50)
    step[-1] = -1  # an empty block
    t0, dt = 12.5, 0.025
    ends = (V0, V1, d0, d1)[: interpolation.bracket_size]
    rec = Crossings(jnp.asarray(step), jnp.stack([jnp.asarray(e) for e in ends], axis=-1))
    got = np.asarray(refine(rec, t0=jnp.asarray(t0), dt=jnp.asarray(dt), V_th=0.0, interpolation=interpolation))
    t_k = t0 + step.astype(np.float64) * dt
    if isinstance(interpolation, hh_jax.HermiteSpikes):
        want = np.asarray(hermite_crossing(t_k, dt, V0, V1, d0, d1, 0.0))
    else:
        want = np.asarray(linear_crossing(t_k, dt, V0, V1, 0.0))
    full = step >= 0
    assert np.all(np.isinf(got[~full]))
    np.testing.assert_allclose(got[full], want[full], rtol=1e-15, atol=0)  # to rounding
    # inside the step it belongs to
    assert np.all((got[full] >= t_k[full] - 1e-12) & (got[full] <= t_k[full] + dt + 1e-12))


def test_refine_gradients_are_the_implicit_function_derivative(blocks):
    # dt*/dV1 = -(∂p/∂V1)/(dp/dt) at the root: per crossing, against central differences, on
    # brackets whose end slopes make the cubic monotone (Fritsch–Carlson); zero (not NaN) in empty rows.
    step, V0, V1, _, _ = _brackets(3, 8, seed=1)
    step[-1] = -1  # an empty block
    step = np.minimum(step, 1)  # small times: a central difference without rounding noise
    dt = 0.05
    rng = np.random.default_rng(2)
    d0, d1 = (V1 - V0) / dt * rng.uniform(0.3, 1.5, (2,) + V0.shape)  # a monotone cubic
    b = jnp.stack([jnp.asarray(x) for x in (V0, V1, d0, d1)], axis=-1)

    def times(V1):
        return refine(Crossings(jnp.asarray(step), b.at[..., 1].set(V1)), t0=jnp.asarray(0.0),
                      dt=jnp.asarray(dt), V_th=0.0, interpolation=hh_jax.HermiteSpikes())

    full = step >= 0
    finite = lambda V1: jnp.where(full, times(V1), 0.0)
    total = lambda V1: jnp.sum(finite(V1))
    g = np.asarray(jax.grad(total)(b[..., 1]))
    assert np.all(np.isfinite(g)) and np.all(g[step < 0] == 0)
    eps = 1e-6
    fd = (np.asarray(finite(b[..., 1] + eps)) - np.asarray(finite(b[..., 1] - eps))) / (2 * eps)
    np.testing.assert_allclose(g[full], fd[full], rtol=1e-6, atol=1e-9)


def test_refine_rejects_a_record_of_the_other_interpolation():
    rec = Crossings(jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="needs 4 bracket values"):
        refine(rec, t0=0.0, dt=0.1, V_th=0.0, interpolation=hh_jax.HermiteSpikes())
    with pytest.raises(TypeError, match=r"interpolation must be hh_jax\.HermiteSpikes\(\) or hh_jax\.LinearSpikes\(\)"):
        refine(rec, t0=0.0, dt=0.1, V_th=0.0, interpolation="linear")


@pytest.mark.parametrize("interpolation", [hh_jax.HermiteSpikes(), hh_jax.LinearSpikes()], ids=repr)
def test_kernel_and_scan_records_give_the_same_times_with_volleys_and_overflow(interpolation):
    # 120 neurons: half asynchronous (a few crossings per step), half a synchronous volley (60
    # crossings in one step); two slots only (overflow); t0 != 0; record_every 7.
    N = 60
    p = hh_jax.HHParams(gNa=jnp.concatenate([jnp.linspace(100.0, 140.0, N), 120.0 + 1e-7 * jnp.arange(N, dtype=float)]))
    I = jnp.concatenate([jnp.linspace(6.0, 40.0, N), jnp.full(N, 10.0)])
    kw = dict(duration=40.0, dt=0.025, t0=3.3, record=("V",), record_every=7, max_spikes=2,
              spike_interpolation=interpolation)
    a = hh_jax.simulate(p, I, backend=KERNEL, **kw)
    b = hh_jax.simulate(p, I, backend=SCAN, **kw)
    np.testing.assert_array_equal(np.asarray(a.spike_count), np.asarray(b.spike_count))
    assert bool(np.any(a.spike_overflow)) and bool(np.all(a.spike_count[N:] >= 2))
    ta, tb = np.asarray(a.spike_times), np.asarray(b.spike_times)
    assert np.array_equal(np.isfinite(ta), np.isfinite(tb))
    fin = np.isfinite(ta)
    assert np.all(ta[fin] > 3.3) and np.all(ta[fin] < 43.3)
    np.testing.assert_allclose(ta[fin], tb[fin], rtol=0, atol=1e-9)


def test_hermite_times_match_a_tight_diffrax_reference():
    # ExpRK4 (4th order) at dt = 0.01: the located times are limited by the scheme, not by the
    # interpolation, with Hermite (~dt⁴); the chord (~dt²) is visibly worse. Reference: Tsit5,
    # rtol 1e-10, spikes on its dense output.
    p = hh_jax.HHParams()
    I = jnp.array([8.0, 20.0])
    kw = dict(duration=30.0, dt=0.01, record=(), max_spikes=4)
    ref = hh_jax.simulate(p, I, backend=hh_jax.DiffraxAdapter(
        diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10)), **kw)
    fin = np.isfinite(np.asarray(ref.spike_times))
    assert fin.sum() >= 4
    err = {}
    for interp, choice in (("hermite", hh_jax.HermiteSpikes()), ("linear", hh_jax.LinearSpikes())):
        r = hh_jax.simulate(p, I, stepper=hh_jax.ExpRK4(), spike_interpolation=choice, **kw)
        assert np.array_equal(np.isfinite(r.spike_times), fin)
        err[interp] = float(np.max(np.abs(np.asarray(r.spike_times)[fin] - np.asarray(ref.spike_times)[fin])))
    assert err["hermite"] < 1e-5, err
    assert err["linear"] > 10 * err["hermite"], err


def test_kernel_spike_time_gradient_through_the_record_matches_central_differences(monkeypatch):
    # the kernel's record, the scan's derivatives (custom JVP), refined outside, in blocks of
    # one row (lax.map of lax.cond): the IFT derivative to 1e-5 (the bracketed Newton converges:
    # no residual bisection error)
    monkeypatch.setattr(_spikes, "_BLOCK", 1)
    def first(gNa):
        r = hh_jax.simulate(hh_jax.HHParams(gNa=gNa), 10.0, duration=20.0, dt=0.025, record=(),
                            max_spikes=2, backend=KERNEL)
        return r.spike_times[1]

    g = float(jax.grad(first)(jnp.asarray(120.0)))
    h = 1e-4
    fd = (float(first(jnp.asarray(120.0 + h))) - float(first(jnp.asarray(120.0 - h)))) / (2 * h)
    assert abs(g - fd) <= 1e-5 * abs(fd), (g, fd)

"""The fused kernel's arithmetic, unit-tested against the one Python description (`hh_jax._model`)
on a voltage grid, through the kernel's plain C test entry points (``hh_jax_rates_f32/f64``,
``hh_jax_step_f32/f64``) called with ctypes: the six rates and one exponential-Euler step (both
schemes), in the branch-free vector code and the branchy scalar code.
"""

import ctypes

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hh_jax import HHParams, _model
from hh_jax._kernel_build import library

_LIB, _REASON = library()
pytestmark = pytest.mark.skipif(_LIB is None, reason=f"no fused kernel: {_REASON}")

_SINGULAR = [-40.0, -55.0]
_GRID = np.concatenate([
    [s + d for s in _SINGULAR for d in (0.0, 1e-7, -1e-7, 1e-3, -1e-3)],
    [-35.0, -65.0, 0.0, 200.0, -200.0, 760.0, -760.0, 800.0, -800.0, -840.0, 1000.0, -1000.0,
     2000.0, -2000.0],
    np.linspace(-150.0, 100.0, 251) + 0.0123,
    np.random.default_rng(13).uniform(-300.0, 300.0, 200),
])
_CT = {np.float64: ctypes.c_double, np.float32: ctypes.c_float}
_SUFFIX = {np.float64: "f64", np.float32: "f32"}


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def _kernel_rates(V, phi, branchy):
    dt = V.dtype.type
    out = np.empty((6, V.size), V.dtype)
    fn = getattr(_LIB, f"hh_jax_rates_{_SUFFIX[dt]}")
    fn.restype = None
    fn(_ptr(V), _ptr(phi), ctypes.c_int64(V.size), ctypes.c_int64(branchy), _ptr(out))
    return out


def _kernel_step(y, par, I, dt, staggered, branchy):
    t = y.dtype.type
    y = np.ascontiguousarray(y.copy())
    fn = getattr(_LIB, f"hh_jax_step_{_SUFFIX[t]}")
    fn.restype = None
    fn(_ptr(y), _ptr(par), _ptr(I), _CT[t](dt), ctypes.c_int64(y.shape[1]), ctypes.c_int64(staggered),
       ctypes.c_int64(branchy))
    return y


def _ulp_diff(a, b):
    """Difference in units of the last place of the larger magnitude (0 where both are equal)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = np.spacing(np.maximum(np.abs(a), np.abs(b)).astype(a.dtype))
    return np.where(a == b, 0.0, np.abs(a.astype(float) - b.astype(float)) / scale)


def test_the_layout_is_the_description():
    _LIB.hh_jax_n_par.restype = ctypes.c_int64
    assert _LIB.hh_jax_n_par() == len(_model.KERNEL_PARAMS)


@pytest.mark.parametrize("branchy", [0, 1])
@pytest.mark.parametrize("dtype, max_ulp", [(np.float64, 4), (np.float32, 4)])
def test_rates_match_python(dtype, max_ulp, branchy):
    V = _GRID.astype(dtype)
    phi = np.full_like(V, 1.0)
    got = _kernel_rates(V, phi, branchy)
    want = np.stack([np.asarray(r) for r in jax.jit(_model.gate_rates)(jnp.asarray(V))])
    assert want.dtype == dtype
    assert np.all(np.isfinite(got))
    ulp = _ulp_diff(got, want)
    worst = np.unravel_index(np.argmax(ulp), ulp.shape)
    assert ulp.max() <= max_ulp, (_model.RATE_NAMES[worst[0]], V[worst[1]], got[worst], want[worst])
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rate_factor_multiplies_every_rate(dtype):
    V = _GRID.astype(dtype)
    phi = np.full_like(V, 2.5)
    got = _kernel_rates(V, phi, 0)
    one = _kernel_rates(V, np.ones_like(V), 0)
    np.testing.assert_array_equal(got, (one * dtype(2.5)).astype(dtype))


@pytest.mark.parametrize("branchy", [0, 1])
@pytest.mark.parametrize("staggered", [True, False])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_one_step_matches_python(dtype, staggered, branchy):
    rng = np.random.default_rng(1)
    V = _GRID.astype(dtype)
    n = V.size
    gates = rng.uniform(0.0, 1.0, (3, n)).astype(dtype)
    y = np.concatenate([V[None], gates]).astype(dtype)
    I = rng.uniform(-20.0, 40.0, n).astype(dtype)
    dt = 0.01
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), HHParams())
    rows = [np.broadcast_to(np.asarray(r, dtype), (n,)) for r in _model.kernel_param_rows(p)]
    par = np.ascontiguousarray(np.stack(rows)).astype(dtype)
    step = jax.jit(lambda y, I: _model.exp_euler_step(p, *y, I, jnp.asarray(dt, dtype), staggered))
    want = np.stack([np.asarray(x) for x in step(tuple(jnp.asarray(r) for r in y), jnp.asarray(I))])
    got = _kernel_step(y, par, I, dt, staggered, branchy)
    assert want.dtype == dtype and np.all(np.isfinite(got))
    if dtype == np.float64:
        # V is a difference of nearly equal terms where the step is small: relative to its change
        for k in range(4):
            scale = np.maximum(np.abs(want[k] - y[k]), np.abs(want[k]))
            assert np.all(np.abs(got[k] - want[k]) <= 1e-13 * scale + 1e-300), k
    else:
        # a few ulp of the operands: |V| for V; 1 for the gates (x∞ + (x − x∞)·e^{−dt·k} cancels
        # terms up to 1 where the result is small)
        for k in range(4):
            scale = np.maximum(np.abs(y[k]), np.abs(want[k])) if k == 0 else np.ones_like(y[k])
            ulps = np.abs(got[k] - want[k]) / np.spacing(scale.astype(np.float32))
            assert ulps.max() <= 4, ("Vmhn"[k], V[np.argmax(ulps)], ulps.max())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scalar_and_vector_code_are_bit_identical(dtype):
    """The branchy scalar code (a few neurons) and the branch-free vector code give the same bits,
    so a neuron's result does not depend on the population size."""
    V = _GRID.astype(dtype)
    phi = np.full_like(V, 1.7)
    np.testing.assert_array_equal(_kernel_rates(V, phi, 0), _kernel_rates(V, phi, 1))
    n = V.size
    rng = np.random.default_rng(2)
    y = np.concatenate([V[None], rng.uniform(0.0, 1.0, (3, n))]).astype(dtype)
    p = HHParams()
    par = np.ascontiguousarray(np.stack([np.broadcast_to(np.asarray(r, dtype), (n,))
                                         for r in _model.kernel_param_rows(p)])).astype(dtype)
    I = rng.uniform(-20.0, 40.0, n).astype(dtype)
    for staggered in (0, 1):
        np.testing.assert_array_equal(_kernel_step(y, par, I, 0.01, staggered, 0),
                                      _kernel_step(y, par, I, 0.01, staggered, 1))


def test_no_model_number_is_typed_in_the_kernel_source():
    # Every number in the .cc outside comments is an implementation constant of the exponential
    # (Cody-Waite reduction, IEEE exponent bias and range), a block size, or 0/1/2: the model's
    # constants and series coefficients come from the generated header (hh_model.h).
    import pathlib
    import re

    src = (pathlib.Path(_model.__file__).parent / "_kernel" / "hh_expeuler.cc").read_text()
    code = re.sub(r"//[^\n]*", "", src)
    numbers = set(re.findall(r"(?<![\w.])(\d+\.?\d*(?:e[-+]?\d+)?)f?(?![\w.])", code))
    allowed = {
        "0", "1", "2", "3", "4", "5", "6", "7", "8",  # indices (six rates, seven step arguments), the vector-width threshold
        "12582912.0", "1.44269504088896341", "0.693145751953125", "1.428606765330187045e-06",
        "6755399441055744.0", "1.4426950408889634074", "6.93147180369123816490e-01",
        "1.90821492927058770002e-10", "0.34",  # the exponential's reduction (not the model)
        "87.0", "88.0", "708.0", "709.0", "126", "127", "1022", "1023", "23", "52", "64",
        "128", "16", "100000",  # float ranges, exponent bias/shift, alignment, blocks, threads
    }
    model_like = sorted(numbers - allowed)
    assert not model_like, f"numbers typed in the kernel source: {model_like}"
    # and the model's own constants do not appear anywhere in it
    for value in ("40", "65", "55", "35", "18", "80", "0.07", "0.125", "0.1", "1.5", "0.3125"):
        assert value not in numbers, value

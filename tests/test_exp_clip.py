"""One bound on the rate exponents, in one place (`hh_jax._rates.EXP_CLIP`), for the fused kernel
and the `lax.scan` loop.

The kernel clipped its exponentials at the floating-point range (±708 in float64) while the
Python rates clip u = −(V+40)/10 at ±80: outside V ∈ [−840, 760] mV the two computed different
rates (relative differences up to 1 in m and n, 3e-7 in V after one step). Now the kernel gets
the bound from Python (now through its generated header, `hh_jax._model`) and clips exactly as
`gate_rates` does.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams, _model, _rates
from hh_jax._fused import kernel_path

pytestmark = pytest.mark.skipif(kernel_path() is None, reason="no C++ compiler: no fused kernel")

# beyond the clip on both sides, at its edges (u = ±80: V = −840, 760 mV), and inside it
V0 = jnp.array([-2000.0, -1000.0, -900.0, -840.0, -800.0, -100.0, 0.0, 760.0, 800.0, 1000.0, 2000.0])


def _one_step(staggered, fused, dt, dtype=jnp.float64):
    n = V0.shape[0]
    y0 = hh_jax.HHState(V=V0.astype(dtype), m=jnp.full(n, 0.3, dtype), h=jnp.full(n, 0.5, dtype),
                        n=jnp.full(n, 0.4, dtype))
    p = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), HHParams())
    return hh_jax.simulate(p, jnp.asarray(0.0, dtype), duration=dt, dt=dt, y0=y0, record=(), throw=False,
                           stepper=hh_jax.ExpEuler(staggered=staggered),
                           backend=hh_jax.FusedCPU() if fused else hh_jax.ScanLoop()).final_state


@pytest.mark.parametrize("staggered", [True, False])
@pytest.mark.parametrize("dt", [0.01, 0.001])
def test_kernel_equals_scan_at_extreme_voltages(staggered, dt):
    f, s = _one_step(staggered, True, dt), _one_step(staggered, False, dt)
    for v in "Vmhn":
        a, b = np.asarray(getattr(f, v)), np.asarray(getattr(s, v))
        assert np.all(np.isfinite(a)), v
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=v)


def test_kernel_equals_scan_at_extreme_voltages_float32(float32):
    f, s = _one_step(True, True, 0.01, jnp.float32), _one_step(True, False, 0.01, jnp.float32)
    for v in "Vmhn":
        a, b = np.asarray(getattr(f, v)), np.asarray(getattr(s, v))
        assert np.all(np.isfinite(a)), v
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-30, err_msg=v)


def test_the_kernel_gets_the_bound_from_python():
    """The bound reaches the kernel through its generated header (hh_jax._model.cpp_header), not
    an FFI attribute any more (renamed deliberately: issue 13, item 1)."""
    header = _model.cpp_header()
    found = re.findall(r"EXP_CLIP = ([-+0-9.e]+);", header)
    assert found == [repr(_rates.EXP_CLIP)] and _rates.EXP_CLIP == _model.EXP_CLIP
    run = lambda a: hh_jax.simulate(HHParams(), a, duration=0.1, dt=0.01, backend=hh_jax.FusedCPU()).V
    assert "exp_clip" not in jax.jit(run).lower(jnp.asarray(1.0)).as_text()

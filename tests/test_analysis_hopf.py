"""Continuation and Hopf points against a SciPy reference; d I_Hopf / d gK vs FD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import analysis_reference as R
import helpers as H
import hh_jax
import hh_jax.analysis as A


@pytest.mark.parametrize("preset", ["hh1952", "brainpy"])
def test_hopf_points_match_reference(preset):
    p = hh_jax.HHParams.from_preset(preset)
    hopf = np.asarray(A.hopf_points(p))
    ref = R.hopf_points(H.PRESETS[preset])
    assert hopf.shape == ref.shape == (2,)
    np.testing.assert_allclose(hopf, ref, atol=1e-6)
    # the complex pair is on the imaginary axis there, and the branch changes stability
    for I in hopf:
        y = hh_jax.equilibrium(p, I, V0=-60.0)
        w = A.eigenvalues(p, y, I)
        assert abs(float(A.leading_pair_real_part(w))) < 1e-9
    if preset == "hh1952":
        np.testing.assert_allclose(hopf, [9.775, 154.52], atol=1e-2)  # the numbers


def test_equilibrium_branch_stability_changes_at_hopf():
    p = hh_jax.HHParams.hh1952()
    I = np.linspace(0.0, 200.0, 81)
    b = A.equilibrium_branch(p, I)
    ref_V = np.array([R.equilibrium(H.PRESETS["hh1952"], x)[0] for x in I[::10]])
    np.testing.assert_allclose(b.state.V[::10], ref_V, atol=1e-9)
    stable = np.asarray(b.stable)
    np.testing.assert_array_equal(stable, (I < 9.775) | (I > 154.523))
    names = {A.CLASSES[k] for k in np.asarray(b.kind)}
    assert names == {"stable focus", "unstable focus"}


def test_hopf_gradient_wrt_gK_matches_fd():
    p = hh_jax.HHParams.hh1952()
    # one compilation: the FD values are the primal of the same jitted value_and_grad
    value_and_grad = jax.jit(jax.value_and_grad(lambda gK: A.hopf_current(p.replace(gK=gK), 9.8)))
    g = float(value_and_grad(jnp.asarray(36.0))[1])
    fd = H.central_fd(lambda gK: float(value_and_grad(jnp.asarray(gK))[0]), 36.0, 1e-3)
    assert abs(g - fd) <= 1e-4 * abs(fd), (g, fd)
    assert abs(g) > 0.1


def test_bad_hopf_window():
    with pytest.raises(ValueError, match="I_min"):
        A.hopf_points(hh_jax.HHParams.hh1952(), I_min=10.0, I_max=0.0)
    with pytest.raises(ValueError, match="currents"):
        A.equilibrium_branch(hh_jax.HHParams.hh1952(), np.zeros((2, 2)))

"""Equilibria and linear stability against a SciPy/NumPy reference; IFT gradients vs FD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import analysis_reference as R
import helpers as H
import hh_jax
import hh_jax.analysis as A

PRESETS = ["hh1952", "brainpy"]


@pytest.mark.parametrize("preset", PRESETS)
def test_rest_and_eigenvalues_match_reference(preset):
    p = hh_jax.HHParams.from_preset(preset)
    ref_y = R.equilibrium(H.PRESETS[preset], 0.0)
    y = hh_jax.equilibrium(p)
    np.testing.assert_allclose(A.to_vector(y), ref_y, rtol=0, atol=1e-9)
    J = A.jacobian(p, y, 0.0)
    np.testing.assert_allclose(J, R.fd_jacobian(H.PRESETS[preset], 0.0, ref_y), rtol=1e-6, atol=1e-8)
    s = A.stability(p, y, 0.0)
    np.testing.assert_allclose(s.eigenvalues, R.eigenvalues(H.PRESETS[preset], 0.0), atol=1e-7)
    # eigenpairs: J v = λ v
    Jn, vn, wn = np.asarray(J), np.asarray(s.eigenvectors), np.asarray(s.eigenvalues)
    np.testing.assert_allclose(Jn @ vn, vn * wn[None], atol=1e-10)
    np.testing.assert_allclose(A.eigenvalues(p, y, 0.0), s.eigenvalues, atol=1e-12)
    assert s.name == "stable focus" and bool(s.stable)


def test_issue_numbers_hh1952():
    p = hh_jax.HHParams.hh1952()
    y = hh_jax.equilibrium(p)
    assert abs(float(y.V) - (-64.996)) < 1e-3
    w = np.asarray(A.stability(p, y).eigenvalues)
    expected = np.array([-0.1207, -0.2026 + 0.3832j, -0.2026 - 0.3832j, -4.675])
    w_sorted = w[np.lexsort((-w.imag, w.real))][::-1]
    exp_sorted = expected[np.lexsort((-expected.imag, expected.real))][::-1]
    np.testing.assert_allclose(w_sorted, exp_sorted, atol=1e-3)


def test_classify_cases():
    c = lambda *w: A.CLASSES[int(A.classify(jnp.array(w, dtype=jnp.complex128)))]
    assert c(-1.0, -2.0, -3.0, -4.0) == "stable node"
    assert c(-1 + 1j, -1 - 1j, -3.0, -4.0) == "stable focus"
    assert c(1.0, 2.0, 3.0, 4.0) == "unstable node"
    assert c(0.1 + 1j, 0.1 - 1j, -3.0, -4.0) == "unstable focus"
    assert c(1 + 1j, 1 - 1j, 3.0, 4.0) == "unstable focus"
    assert c(1.0, -2.0, -3.0, -4.0) == "saddle"


@pytest.mark.parametrize("preset", PRESETS)
def test_equilibria_over_currents(preset):
    p = hh_jax.HHParams.from_preset(preset)
    ref = H.PRESETS[preset]
    for I in (0.0, 50.0):
        eqs = A.equilibria(p, I)
        assert eqs.V.shape == (1,)  # the I-V relation is monotone for both presets
        np.testing.assert_allclose(eqs.V[0], R.equilibrium(ref, I)[0], atol=1e-9)
        # residual of the full vector field is ~0
        f = A.to_vector(hh_jax.vector_field(0.0, jax.tree_util.tree_map(lambda x: x[0], eqs), (p, I)))
        assert float(jnp.max(jnp.abs(f))) < 1e-10
    np.testing.assert_allclose(A.equilibrium_current(p, R.equilibrium(ref, 3.0)[0]), 3.0, atol=1e-9)


def test_equilibria_finds_three_on_a_folded_iv_curve():
    # a large sodium conductance folds the steady-state I-V curve: three equilibria at I = -0.5
    p = hh_jax.HHParams.brainpy(gNa=400.0)
    V = np.asarray(A.equilibria(p, -0.5).V)
    ref = dict(H.PRESETS["brainpy"], gNa=400.0)
    grid = np.linspace(-120, 60, 20001)
    g = np.array([R.steady_current(ref, v) for v in grid]) + 0.5
    n_ref = int(np.sum(np.sign(g[:-1]) != np.sign(g[1:])))
    assert len(V) == n_ref == 3
    for v in V:
        assert abs(R.steady_current(ref, v) + 0.5) < 1e-8
    kinds = [A.stability(p, y, -0.5).name for y in [jax.tree_util.tree_map(lambda x: x[i], A.equilibria(p, -0.5)) for i in range(3)]]
    assert kinds[1] == "saddle"  # the middle branch of a fold is a saddle


@pytest.mark.parametrize("preset", PRESETS)
def test_rest_gradient_wrt_gL_matches_fd(preset):
    p = hh_jax.HHParams.from_preset(preset)
    f = lambda gL: hh_jax.equilibrium(p.replace(gL=gL), 0.0).V
    gL0 = float(p.gL)
    g = float(jax.grad(f)(jnp.asarray(gL0)))
    h = 1e-5 * gL0
    fd = H.central_fd(lambda x: R.equilibrium(dict(H.PRESETS[preset], gL=x), 0.0)[0], gL0, h)
    assert abs(g - fd) <= 1e-4 * abs(fd)
    assert abs(g) > 1.0  # not trivially zero


def test_bad_inputs_name_the_argument():
    p = hh_jax.HHParams.hh1952()
    with pytest.raises(ValueError, match="population shape"):
        A.jacobian(hh_jax.HHParams(gK=jnp.ones(3)), hh_jax.equilibrium(p))
    with pytest.raises(TypeError, match="params"):
        A.stability("hh1952", hh_jax.equilibrium(p))
    with pytest.raises(ValueError, match="V_min"):
        A.equilibria(p, 0.0, V_min=10.0, V_max=-10.0)
    with pytest.raises(ValueError, match="num"):
        A.equilibria(p, 0.0, num=1)
    with pytest.raises(ValueError, match="I must be finite"):
        A.equilibria(p, float("nan"))

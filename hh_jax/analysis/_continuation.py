"""Continuation of the equilibrium in the injected current; Hopf points by root finding."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Complex

from .._custom_types import Array, Float, ScalarLike
from .._initial_state import resting_state
from .._params import HHParams
from .._validate import as_float_array, as_int
from .._vector_field import HHState
from ._jacobian import _check_single, eigenvalues, leading_pair_real_part, stability


class EquilibriumBranch(eqx.Module):
    """The equilibrium as a function of the injected current.

    **Fields:**

    - `I`: currents, µA/cm², ``[k]``.
    - `state`: the equilibrium `HHState`, each variable ``[k]`` (mV, 1).
    - `eigenvalues`: ``[k, 4]`` complex, 1/ms, decreasing real part.
    - `kind`: ``[k]`` int, index into :data:`hh_jax.analysis.CLASSES`.
    """

    I: Float[Array, " k"]
    state: HHState
    eigenvalues: Complex[Array, "k 4"]
    kind: Array

    @property
    def stable(self) -> Array:
        """``[k]`` bool: every eigenvalue has a negative real part."""
        return jnp.all(jnp.real(self.eigenvalues) < 0, axis=-1)

    @property
    def pair_real_part(self) -> Array:
        """``[k]``: real part of the leading complex pair, 1/ms (−inf where all are real)."""
        return jax.vmap(leading_pair_real_part)(self.eigenvalues)


def _as_currents(currents, dtype) -> Array:
    I = as_float_array("currents (uA/cm^2)", currents, dtype=dtype)
    if I.ndim != 1 or I.shape[0] < 1:
        raise ValueError(f"currents must be a non-empty 1-D array (uA/cm^2), got shape {I.shape}.")
    if not isinstance(I, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(I))):
        raise ValueError("currents must be finite (uA/cm^2).")
    return I


@eqx.filter_jit
def _branch(params, I, V0):
    def body(V_prev, I_k):
        y = resting_state(params, I_k, V0=V_prev)
        s = stability(params, y, I_k)
        return y.V, (y, s.eigenvalues, s.kind)

    _, (ys, w, kind) = jax.lax.scan(body, V0, I)
    return EquilibriumBranch(I=I, state=ys, eigenvalues=w, kind=kind)


def equilibrium_branch(params: HHParams, currents, *, V0: ScalarLike = -65.0) -> EquilibriumBranch:
    """Continue the equilibrium over a sequence of currents, warm-starting each Newton solve.

    Each equilibrium is found by :func:`hh_jax.resting_state` started from the previous one
    (`V0` for the first), then linearised (:func:`stability`). For the HH presets the
    equilibrium is unique at every current, so this is the whole branch; where the I–V curve
    folds, use :func:`equilibria` or :func:`steady_state_current`.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `currents`: 1-D array of holding currents, µA/cm², in continuation order.
    - `V0`: guess for the first equilibrium, mV. Default −65.0.

    **Returns:** an `EquilibriumBranch`.

    **Example:** ``equilibrium_branch(HHParams.hh1952(), jnp.linspace(0, 200, 201)).stable``.
    """
    _check_single(params)
    I = _as_currents(currents, params.dtype)
    return _branch(params, I, jnp.asarray(V0, params.dtype))


def _pair_real_part(I, args):
    params, V0 = args
    y = resting_state(params, I, V0=V0)
    return leading_pair_real_part(eigenvalues(params, y, I))


def hopf_current(
    params: HHParams,
    I0: ScalarLike,
    *,
    V0: ScalarLike = -65.0,
    rtol: float | None = None,
    atol: float | None = None,
    max_steps: int = 50,
) -> Array:
    """Refine a Hopf point: the current where the equilibrium's complex pair crosses Re λ = 0.

    Solves ``Re λ(I) = 0`` by Newton's method (Optimistix); ``dRe λ/dI`` comes from autodiff
    through the equilibrium (itself an implicit function) and the eigenvalues. The result is
    differentiable with respect to `params` by the implicit function theorem (Optimistix
    `ImplicitAdjoint`), e.g. ``d I_Hopf / d gK``.

    **Arguments:**

    - `params`: `HHParams` of one neuron.
    - `I0`: initial guess, µA/cm² (e.g. from :func:`hopf_points` or a branch).
    - `V0`: guess of the equilibrium potential near the Hopf point, mV. Default −65.0.
    - `rtol`, `atol`: Newton tolerances on I. Default 1e-12 in float64, 1e-5 in float32
      (enable JAX's float64 mode for accurate analysis).
    - `max_steps`: Newton iterations. Default 50.

    **Returns:** the Hopf current, µA/cm² (scalar).

    **Example:** ``hopf_current(HHParams.hh1952(), 10.0)`` ≈ 9.7754.
    """
    _check_single(params)
    I0 = as_float_array("I0 (uA/cm^2)", I0).astype(params.dtype)
    default = 1e-12 if params.dtype == jnp.float64 else 1e-5
    rtol = default if rtol is None else rtol
    atol = default if atol is None else atol
    V0 = jax.lax.stop_gradient(jnp.asarray(V0, params.dtype))
    sol = optx.root_find(
        _pair_real_part,
        optx.Newton(rtol=rtol, atol=atol),
        I0,
        args=(params, V0),
        max_steps=max_steps,
        throw=True,
    )
    return sol.value


def hopf_points(
    params: HHParams,
    *,
    I_min: float = 0.0,
    I_max: float = 250.0,
    num: int = 126,
    V0: float = -65.0,
) -> Array:
    """All Hopf points of the equilibrium branch in a current window, refined by Newton.

    Continues the equilibrium over `num` currents in ``[I_min, I_max]``, finds the intervals
    where the real part of the leading complex pair changes sign, and refines each with
    :func:`hopf_current`. Not jit-compatible (their number is data-dependent).

    **Arguments:** `params` (one neuron); `I_min`, `I_max`: µA/cm², default 0 and 250;
    `num`: grid points (≥ 2), default 126; `V0`: guess of the first equilibrium, mV.

    **Returns:** a 1-D array of Hopf currents (µA/cm²), increasing.

    **Example:** ``hopf_points(HHParams.hh1952())`` → ``[9.7754, 154.5224]``.
    """
    _check_single(params)
    if not (np.isfinite(I_min) and np.isfinite(I_max) and I_min < I_max):
        raise ValueError(f"I_min < I_max must be finite (uA/cm^2), got {I_min}, {I_max}.")
    num = as_int("num", num, minimum=2)
    branch = equilibrium_branch(params, np.linspace(I_min, I_max, num), V0=V0)
    r = np.asarray(branch.pair_real_part)
    Vs = np.asarray(branch.state.V)
    Is = np.asarray(branch.I)
    found = []
    for k in np.nonzero(np.isfinite(r[:-1]) & np.isfinite(r[1:]) & (np.sign(r[:-1]) != np.sign(r[1:])))[0]:
        guess = Is[k] - r[k] * (Is[k + 1] - Is[k]) / (r[k + 1] - r[k])
        Vg = Vs[k] + (guess - Is[k]) * (Vs[k + 1] - Vs[k]) / (Is[k + 1] - Is[k])
        found.append(hopf_current(params, guess, V0=Vg))
    if not found:
        return jnp.zeros((0,), params.dtype)
    return jnp.stack(found)

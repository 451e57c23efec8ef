"""Linear stability: the Jacobian of the vector field, its eigen-decomposition, a classification."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxtyping import Complex

from .._custom_types import Array, Float, ScalarLike
from .._params import HHParams
from .._validate import as_float_array
from .._vector_field import HHState, vector_field

STATE_ORDER = ("V", "m", "h", "n")
"""Order of the state variables in Jacobians, eigenvectors and shooting vectors."""

CLASSES = ("stable node", "stable focus", "unstable node", "unstable focus", "saddle")
"""Names of the equilibrium classes, indexed by :attr:`Stability.kind`."""


def _check_single(params: HHParams) -> None:
    if not isinstance(params, HHParams):
        raise TypeError(f"params must be an HHParams, got {type(params).__name__}.")
    if params.pop_shape != ():
        raise ValueError(
            f"params must describe one neuron (scalar fields), got population shape "
            f"{params.pop_shape}; use jax.vmap for several."
        )


def _check_eigenvalues(where: str, w, tol) -> Array:
    """`w` as a non-empty 1-D array and `tol` as a number >= 0, else errors naming them."""
    if isinstance(w, (str, bytes)) or w is None:
        raise TypeError(f"{where}: eigenvalues must be a 1-D array of numbers, got {w!r}.")
    w = jnp.asarray(w)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"{where}: eigenvalues must be a non-empty 1-D array [k], got shape {w.shape}.")
    if isinstance(tol, (int, float)) and not (tol >= 0 and tol < float("inf")):
        raise ValueError(f"{where}: tol must be a finite number >= 0 (1/ms), got {tol!r}.")
    return w


def to_vector(y: HHState) -> Float[Array, "4"]:
    """Stack a single neuron's state into the vector ``[V, m, h, n]`` (mV, 1, 1, 1)."""
    if not isinstance(y, HHState):
        raise TypeError(f"y must be an HHState, got {type(y).__name__}.")
    return jnp.stack([jnp.asarray(y.V), jnp.asarray(y.m), jnp.asarray(y.h), jnp.asarray(y.n)])


def from_vector(x: Float[Array, "4"]) -> HHState:
    """The inverse of :func:`to_vector`."""
    x = as_float_array("from_vector: x", x)
    if x.shape != (4,):
        raise ValueError(f"from_vector: x must have shape (4,) ([V, m, h, n]), got {x.shape}.")
    return HHState(V=x[0], m=x[1], h=x[2], n=x[3])


def _field(x, params, I):
    return to_vector(vector_field(0.0, from_vector(x), (params, I)))


def jacobian(params: HHParams, y: HHState, I: ScalarLike = 0.0) -> Float[Array, "4 4"]:
    """The Jacobian ``∂f/∂y`` of the HH vector field at a state, by forward-mode autodiff.

    **Arguments:**

    - `params`: `HHParams` of one neuron (scalar fields).
    - `y`: `HHState` of one neuron (scalars).
    - `I`: injected current density, µA/cm², scalar. Default 0.0.

    **Returns:** a ``[4, 4]`` array in the order ``V, m, h, n`` (row = derivative of that
    variable; units 1/ms, mV/ms per unit gate and 1/(mV·ms) in the gate rows' V column).

    **Example:** ``jacobian(HHParams.hh1952(), hh_jax.equilibrium(HHParams.hh1952()))``.
    """
    _check_single(params)
    x = to_vector(y)
    I = as_float_array("I (uA/cm^2)", I).astype(x.dtype)
    return jax.jacfwd(_field)(x, params, I)


class Stability(eqx.Module):
    """Eigen-decomposition of the Jacobian at an equilibrium and its classification.

    **Fields:**

    - `eigenvalues`: ``[4]`` complex, 1/ms, sorted by decreasing real part.
    - `eigenvectors`: ``[4, 4]`` complex, column ``k`` belongs to ``eigenvalues[k]`` (order
      ``V, m, h, n`` along rows; unit 2-norm).
    - `kind`: int index into :data:`CLASSES`.
    """

    eigenvalues: Complex[Array, "4"]
    eigenvectors: Complex[Array, "4 4"]
    kind: Array

    @property
    def name(self) -> str:
        """The class as a word: ``"stable focus"`` etc. (needs a concrete `kind`)."""
        return CLASSES[int(self.kind)]

    @property
    def stable(self) -> Array:
        """True if every eigenvalue has a negative real part."""
        return jnp.all(jnp.real(self.eigenvalues) < 0)


def classify(eigenvalues: Complex[Array, "4"], *, tol: float = 1e-12) -> Array:
    """Classify an equilibrium from its eigenvalues (jit-compatible).

    Stable: every real part < 0 — a *focus* if some eigenvalues form a complex pair (damped
    oscillations, as at the HH rest), else a *node*. Unstable node/focus: the unstable eigenvalues are all the
    eigenvalues, or exactly one complex pair (a saddle-focus whose unstable manifold is the 2-D
    centre-unstable plane, as in HH between its Hopf points; called *unstable focus*).
    Saddle: otherwise (real unstable directions beside stable ones).

    **Arguments:** `eigenvalues`: ``[k]`` complex; `tol`: threshold below which an imaginary
    part counts as zero (1/ms). Default 1e-12.

    **Returns:** an int array, an index into :data:`CLASSES`.

    **Example:** ``CLASSES[int(classify(stability(p, y).eigenvalues))]``.
    """
    eigenvalues = _check_eigenvalues("classify", eigenvalues, tol)
    re, im = jnp.real(eigenvalues), jnp.abs(jnp.imag(eigenvalues))
    complex_ = im > tol
    unstable = re > 0
    n_u = jnp.sum(unstable)
    all_unstable_complex = jnp.all(jnp.where(unstable, complex_, True))
    stable_kind = jnp.where(jnp.any(complex_), 1, 0)
    unstable_kind = jnp.where(jnp.any(unstable & complex_), 3, 2)
    pair_only = (n_u == 2) & all_unstable_complex
    kind = jnp.where(
        n_u == 0,
        stable_kind,
        jnp.where((n_u == re.shape[0]) | pair_only, unstable_kind, 4),
    )
    return kind


def stability(params: HHParams, y: HHState, I: ScalarLike = 0.0) -> Stability:
    """Eigenvalues, eigenvectors and class of the Jacobian at a state (normally an equilibrium).

    Uses `jnp.linalg.eig` (a CPU kernel; eigenvalues are differentiable).

    **Arguments:** `params` (one neuron), `y` (`HHState`), `I` (µA/cm², default 0.0).

    **Returns:** a `Stability`.

    **Example:**

    ```python
    p = hh_jax.HHParams.hh1952()
    s = hh_jax.analysis.stability(p, hh_jax.equilibrium(p))
    s.eigenvalues  # -0.1207, -0.2026 ± 0.3832j, -4.675 (1/ms); s.name == "stable focus"
    ```
    """
    _check_single(params)
    x = to_vector(y)
    return _stability(params, x, as_float_array("I (uA/cm^2)", I).astype(x.dtype))


@eqx.filter_jit
def _stability(params: HHParams, x: Float[Array, "4"], I: Array) -> Stability:
    """:func:`stability` at the state vector `x`, as one compiled program (not op by op)."""
    w, v = jnp.linalg.eig(jax.jacfwd(_field)(x, params, I))
    order = jnp.argsort(-jnp.real(w))
    w, v = w[order], v[:, order]
    return Stability(eigenvalues=w, eigenvectors=v, kind=classify(w))


def eigenvalues(params: HHParams, y: HHState, I: ScalarLike = 0.0) -> Complex[Array, "4"]:
    """Eigenvalues (1/ms) of the Jacobian at a state, sorted by decreasing real part.

    Differentiable with respect to `params`, `y` and `I` (unlike the eigenvectors).

    **Example:** ``eigenvalues(p, hh_jax.equilibrium(p))[0]`` ≈ −0.1207 for hh1952.
    """
    w = jnp.linalg.eigvals(jacobian(params, y, I))
    return w[jnp.argsort(-jnp.real(w))]


def leading_pair_real_part(eigenvalues: Complex[Array, "4"], *, tol: float = 1e-12) -> Array:
    """Largest real part among the eigenvalues with a non-zero imaginary part (1/ms).

    Returns ``-inf`` if every eigenvalue is real. A Hopf point is where this crosses zero.
    """
    eigenvalues = _check_eigenvalues("leading_pair_real_part", eigenvalues, tol)
    re, im = jnp.real(eigenvalues), jnp.abs(jnp.imag(eigenvalues))
    return jnp.max(jnp.where(im > tol, re, -jnp.inf))


"""Opening/closing rates α, β of the HH gates, steady states and time constants.

The rate functions are those of the seeds (BrainPy, BrainState, the course notebook), in absolute
voltages (mV) and 1/ms:

    α_m = 0.1 (V+40) / (1 − exp(−(V+40)/10))     β_m = 4 exp(−(V+65)/18)
    α_h = 0.07 exp(−(V+65)/20)                   β_h = 1 / (1 + exp(−(V+35)/10))
    α_n = 0.01 (V+55) / (1 − exp(−(V+55)/10))    β_n = 0.125 exp(−(V+65)/80)

α_m and α_n have a removable singularity (0/0 at V = −40 and −55 mV). They are evaluated through
:func:`bernoulli` (u / (eᵘ − 1)), which gives correct values and first and second derivatives at
the singular voltage in float32 and float64, and never overflows. The arithmetic is written once,
in `hh_jax._model` (shared with every backend, the C++ kernel included).
"""

import jax.numpy as jnp

from . import _model
from ._custom_types import Array, PopArray
from ._model import EXP_CLIP as EXP_CLIP  # the one bound on the rate exponents (_model.py)
from ._validate import as_float_array as _as_float


def bernoulli(u: Array) -> Array:
    """The function ``u / (exp(u) − 1)``, safe at and near ``u = 0`` and for large ``|u|``.

    Value 1 at ``u = 0`` (the limit), derivative −1/2, second derivative 1/6. Evaluated by a
    Taylor series near zero and by ``expm1`` elsewhere, with the "double where" so that
    `jax.grad` and `jax.hessian` are finite and correct everywhere. For ``u > 0`` it uses
    ``u·e⁻ᵘ / (1 − e⁻ᵘ)``, so nothing overflows.

    **Arguments:**

    - `u`: dimensionless array, any shape, float32 or float64.

    **Returns:** an array like `u`.

    **Example:** ``bernoulli(jnp.array(0.0))`` is ``1.0``.
    """
    u = _as_float("bernoulli: u", u)
    return _model.bernoulli(u)


def exprel(z: Array) -> Array:
    """The function ``(exp(z) − 1) / z`` (= 1 at ``z = 0``), safe for ``z ≤ 0`` and near 0.

    Used by the exponential integrators: ``x(dt) = x0 + dt·f(x0)·exprel(−dt·λ)`` solves
    ``dx/dt = f(x0) − λ(x − x0)`` exactly, also when λ → 0.

    **Arguments:** `z`: dimensionless array (float).  **Returns:** an array like `z`.

    **Example:** ``exprel(jnp.array(-1.0))`` is ``1 − 1/e``.
    """
    z = _as_float("exprel: z", z)
    return _model.exprel(z)


def _rate(name: str, index: int, doc: str):
    def rate(V: PopArray, *, params=None) -> PopArray:
        V = _as_float(f"{name}: V (mV)", V)
        return gate_rates(V, params=params)[index]

    rate.__name__ = rate.__qualname__ = name
    rate.__doc__ = doc + """

    The same arithmetic as :func:`gate_rates` (one description, `hh_jax._model`). `params`:
    optional `HHParams` whose rate factor multiplies the rate (default: none, φ = 1)."""
    return rate


alpha_m = _rate("alpha_m", 0, "Opening rate of the Na activation gate m, 1/ms. `V` in mV, any shape.")
beta_m = _rate("beta_m", 1, "Closing rate of m, 1/ms: ``4 exp(−(V+65)/18)``. `V` in mV.")
alpha_h = _rate("alpha_h", 2, "Opening (de-inactivation) rate of the Na inactivation gate h, 1/ms. `V` in mV.")
beta_h = _rate("beta_h", 3, "Closing rate of h, 1/ms: ``1 / (1 + exp(−(V+35)/10))``. `V` in mV.")
alpha_n = _rate("alpha_n", 4, "Opening rate of the K activation gate n, 1/ms. `V` in mV.")
beta_n = _rate("beta_n", 5, "Closing rate of n, 1/ms: ``0.125 exp(−(V+65)/80)``. `V` in mV.")


def gate_rates(V: PopArray, *, params=None) -> tuple[PopArray, PopArray, PopArray, PopArray, PopArray, PopArray]:
    """All six rates ``(α_m, β_m, α_h, β_h, α_n, β_n)`` (1/ms) at `V` (mV), sharing exponentials.

    The arithmetic of every backend (`hh_jax._model.gate_rates`; the fused kernel's header is
    generated from the same description): 2 ``exp`` + 2 ``expm1`` + 1 ``sqrt`` + 1 ``exp``.
    Value, gradient and hessian are finite and right at the removable singularities
    (V = −40 and −55 mV), and nothing overflows at any voltage (exponents clipped at
    `EXP_CLIP`).

    **Arguments:**

    - `V`: membrane potential, mV, any shape, float32 or float64.
    - `params`: optional `HHParams`; its rate factor (temperature) multiplies every rate.

    **Returns:** a tuple of six arrays shaped like `V`.

    **Example:** ``am, bm, ah, bh, an, bn = gate_rates(jnp.array(-65.0))``.
    """
    return _model.gate_rates(V, 1.0 if params is None else _model.rate_factor(params))


RATES = {"m": (alpha_m, beta_m), "h": (alpha_h, beta_h), "n": (alpha_n, beta_n)}
"""Gate name → (α, β)."""


def _check_gate(gate: str) -> None:
    if not isinstance(gate, str) or gate not in RATES:
        raise ValueError(f"unknown gate {gate!r}; gates are 'm', 'h', 'n'.")


def steady_state(gate: str, V: PopArray) -> PopArray:
    """Steady-state open fraction ``x∞ = α/(α+β)`` of gate ``"m"``, ``"h"`` or ``"n"``.

    **Arguments:**

    - `gate`: ``"m"``, ``"h"`` or ``"n"``.
    - `V`: membrane potential, mV, any shape.

    **Returns:** x∞(V), dimensionless in [0, 1], shape of `V`.

    **Example:** ``steady_state("m", jnp.array(-65.0))`` ≈ 0.0529.
    """
    _check_gate(gate)
    V = _as_float("steady_state: V (mV)", V)
    a, b = RATES[gate]
    alpha, beta = a(V), b(V)
    return alpha / (alpha + beta)


def time_constant(gate: str, V: PopArray, *, params=None) -> PopArray:
    """Time constant ``τ = 1/(α+β)`` of gate ``"m"``, ``"h"`` or ``"n"``, in ms.

    **Arguments:** `gate`: ``"m"``, ``"h"`` or ``"n"``; `V`: membrane potential, mV; `params`:
    optional `HHParams` whose rate factor (temperature) divides τ.

    **Returns:** τ(V) in ms, shape of `V`.

    **Example:** ``time_constant("n", jnp.array(-65.0))`` ≈ 5.46 ms.
    """
    _check_gate(gate)
    V = _as_float("time_constant: V (mV)", V)
    a, b = RATES[gate]
    return 1.0 / (a(V, params=params) + b(V, params=params))

"""Opening/closing rates α, β of the HH gates, steady states and time constants.

The rate functions are those of the seeds (BrainPy, BrainState, the course notebook), in absolute
voltages (mV) and 1/ms:

    α_m = 0.1 (V+40) / (1 − exp(−(V+40)/10))     β_m = 4 exp(−(V+65)/18)
    α_h = 0.07 exp(−(V+65)/20)                   β_h = 1 / (1 + exp(−(V+35)/10))
    α_n = 0.01 (V+55) / (1 − exp(−(V+55)/10))    β_n = 0.125 exp(−(V+65)/80)

α_m and α_n have a removable singularity (0/0 at V = −40 and −55 mV). They are evaluated through
:func:`bernoulli` (u / (eᵘ − 1)), which gives correct values and first and second derivatives at
the singular voltage in float32 and float64, and never overflows.
"""

import math

import jax.numpy as jnp

from ._custom_types import Array, PopArray
from ._validate import as_float_array as _as_float

EXP_CLIP = 80.0
"""Bound (dimensionless) on the exponents of the rate functions, so that no rate overflows, even in
float32 (e^80 ≈ 5.5e34), at voltages far outside [−200, 200] mV. The one place it is set: the
fused kernel (``_kernel/hh_expeuler.cc``) receives it from `hh_jax._fused` as its ``exp_clip``
attribute, so kernel and `lax.scan` loop clip alike. In `gate_rates` it bounds u = −(V+40)/10
(active outside V ∈ [−840, 760] mV); in the separate rate functions the exponent's upper end."""


def _exp(x: Array) -> Array:
    return jnp.exp(jnp.minimum(x, EXP_CLIP))


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
    # Taylor branch radius: where the series truncation error (~u⁸/1.2e6 in the value,
    # ~u⁶/1.7e4 in the second derivative) and the expm1 branch's cancellation in the second
    # derivative (~eps/u²) are both below ~1e-6 relative (f32) / ~1e-13 (f64).
    small_radius = 0.5 if jnp.finfo(u.dtype).bits <= 32 else 0.05
    small = jnp.abs(u) < small_radius
    u_big = jnp.where(small, small_radius, u)  # any value away from 0: keeps the unused branch finite
    neg = -jnp.abs(u_big)  # ≤ −radius < 0
    core = neg / jnp.expm1(neg)  # in (0, 1), = |u| / (1 − e^{−|u|})
    big = jnp.where(u_big > 0, core * jnp.exp(neg), core)
    u_small = jnp.where(small, u, 0.0)
    u2 = u_small * u_small
    # Bernoulli numbers: B0=1, B1=−1/2, B2=1/6, B4=−1/30, B6=1/42, B8=−1/30 (divided by n!).
    series = 1.0 - 0.5 * u_small + u2 * (
        1.0 / 12.0 + u2 * (-1.0 / 720.0 + u2 * (1.0 / 30240.0 + u2 * (-1.0 / 1209600.0)))
    )
    return jnp.where(small, series, big)


def exprel(z: Array) -> Array:
    """The function ``(exp(z) − 1) / z`` (= 1 at ``z = 0``), safe for ``z ≤ 0`` and near 0.

    Used by the exponential integrators: ``x(dt) = x0 + dt·f(x0)·exprel(−dt·λ)`` solves
    ``dx/dt = f(x0) − λ(x − x0)`` exactly, also when λ → 0.

    **Arguments:** `z`: dimensionless array (float).  **Returns:** an array like `z`.

    **Example:** ``exprel(jnp.array(-1.0))`` is ``1 − 1/e``.
    """
    z = _as_float("exprel: z", z)
    small_radius = 1e-3 if jnp.finfo(z.dtype).bits <= 32 else 1e-6
    small = jnp.abs(z) < small_radius
    z_big = jnp.where(small, -1.0, z)
    big = jnp.expm1(jnp.minimum(z_big, EXP_CLIP)) / z_big
    z_small = jnp.where(small, z, 0.0)
    series = 1.0 + z_small * (0.5 + z_small / 6.0)
    return jnp.where(small, series, big)


def alpha_m(V: PopArray) -> PopArray:
    """Opening rate of the Na activation gate m, 1/ms. `V` in mV, any shape."""
    V = _as_float("alpha_m: V (mV)", V)
    return bernoulli(-(V + 40.0) / 10.0)


def beta_m(V: PopArray) -> PopArray:
    """Closing rate of m, 1/ms: ``4 exp(−(V+65)/18)``. `V` in mV."""
    V = _as_float("beta_m: V (mV)", V)
    return 4.0 * _exp(-(V + 65.0) / 18.0)


def alpha_h(V: PopArray) -> PopArray:
    """Opening (de-inactivation) rate of the Na inactivation gate h, 1/ms. `V` in mV."""
    V = _as_float("alpha_h: V (mV)", V)
    return 0.07 * _exp(-(V + 65.0) / 20.0)


def beta_h(V: PopArray) -> PopArray:
    """Closing rate of h, 1/ms: ``1 / (1 + exp(−(V+35)/10))``. `V` in mV."""
    V = _as_float("beta_h: V (mV)", V)
    return 1.0 / (1.0 + _exp(-(V + 35.0) / 10.0))


def alpha_n(V: PopArray) -> PopArray:
    """Opening rate of the K activation gate n, 1/ms. `V` in mV."""
    V = _as_float("alpha_n: V (mV)", V)
    return 0.1 * bernoulli(-(V + 55.0) / 10.0)


def beta_n(V: PopArray) -> PopArray:
    """Closing rate of n, 1/ms: ``0.125 exp(−(V+65)/80)``. `V` in mV."""
    V = _as_float("beta_n: V (mV)", V)
    return 0.125 * _exp(-(V + 65.0) / 80.0)


# --- Fused rates for the hot loop -------------------------------------------------------------
# All six rates from two exponentials and two expm1. With u = −(V+40)/10 and E = eᵘ:
#   α_m = u/expm1(u)                         (Bernoulli function of u)
#   α_n = 0.1·u′/expm1(u′),  u′ = u − 1.5
#   β_h = 1/(1 + E·e^{0.5})
#   α_h = 0.07·e^{−(V+65)/20} = 0.07·e^{−1.25}·√E
#   β_n = 0.125·e^{−(V+65)/80} = 0.125·e^{−0.3125}·E^{1/8}    (three square roots)
#   β_m = 4·e^{−(V+65)/18}                   (its own exponential)
# (E − 1 in place of expm1 would save two more calls, but makes a neuron's result depend on
# the population size at the last bit — XLA's vector and scalar exp differ — so expm1 it is.)
# The Bernoulli terms use a Taylor series for |u| < 1/2 (through u¹², truncation < 1e-15
# relative) and u/expm1(u) elsewhere, both through the "double where", so value, gradient and
# hessian are finite and right at V = −40 and −55 mV. u is clipped once, to uc = clip(u, ±80),
# inside the exponentials only (V outside [−840, 760] mV): E = e^uc, the α_m denominator is
# expm1(uc), the α_n one expm1(uc − 1.5), β_n ∝ e^(uc/8). So nothing overflows or underflows to
# a zero under a square root, in float32 or float64, and the fused kernel (which gets EXP_CLIP
# from Python) computes exactly these functions at every voltage.
_SMALL = 0.5
_E_HALF = math.exp(0.5)
_C_AH = 0.07 * math.exp(-1.25)
_C_BN = 0.125 * math.exp(-0.3125)


def _bernoulli_fast(u: Array, uc: Array) -> Array:
    """u/expm1(uc), `uc` the clipped exponent (= u for |u| ≤ EXP_CLIP): safe at u = 0 (Taylor
    series for |u| < 1/2) and for large |u|."""
    small = jnp.abs(u) < _SMALL
    num = jnp.where(small, 1.0, u)
    den = jnp.expm1(jnp.where(small, 1.0, uc))
    us = jnp.where(small, u, 0.0)
    u2 = us * us
    series = 1.0 - 0.5 * us + u2 * (
        1.0 / 12.0
        + u2 * (-1.0 / 720.0 + u2 * (1.0 / 30240.0 + u2 * (-1.0 / 1209600.0 + u2 * (
            1.0 / 47900160.0 + u2 * (-691.0 / 1307674368000.0)))))
    )
    return jnp.where(small, series, num / den)


def gate_rates(V: PopArray) -> tuple[PopArray, PopArray, PopArray, PopArray, PopArray, PopArray]:
    """All six rates ``(α_m, β_m, α_h, β_h, α_n, β_n)`` (1/ms) at `V` (mV), sharing exponentials.

    Equal to the separate functions (:func:`alpha_m` …) to rounding (a few ulp), with the same
    guarantees at the removable singularities and against overflow; used by the steppers' hot
    loop (2 ``exp`` + 2 ``expm1`` + 3 ``sqrt`` instead of 8 ``exp``/``expm1``).

    **Arguments:** `V`: membrane potential, mV, any shape, float32 or float64.

    **Returns:** a tuple of six arrays shaped like `V`.

    **Example:** ``am, bm, ah, bh, an, bn = gate_rates(jnp.array(-65.0))``.
    """
    u = -(V + 40.0) / 10.0
    uc = jnp.clip(u, -EXP_CLIP, EXP_CLIP)
    E = jnp.exp(uc)
    am = _bernoulli_fast(u, uc)
    an = 0.1 * _bernoulli_fast(u - 1.5, uc - 1.5)
    bh = 1.0 / (1.0 + E * _E_HALF)
    s = jnp.sqrt(E)
    ah = _C_AH * s
    bn = _C_BN * jnp.sqrt(jnp.sqrt(s))
    bm = 4.0 * _exp(-(V + 65.0) / 18.0)
    return am, bm, ah, bh, an, bn


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


def time_constant(gate: str, V: PopArray) -> PopArray:
    """Time constant ``τ = 1/(α+β)`` of gate ``"m"``, ``"h"`` or ``"n"``, in ms.

    **Arguments:** `gate`: ``"m"``, ``"h"`` or ``"n"``; `V`: membrane potential, mV.

    **Returns:** τ(V) in ms, shape of `V`.

    **Example:** ``time_constant("n", jnp.array(-65.0))`` ≈ 5.46 ms.
    """
    _check_gate(gate)
    V = _as_float("time_constant: V (mV)", V)
    a, b = RATES[gate]
    return 1.0 / (a(V) + b(V))

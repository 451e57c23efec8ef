"""The one description of the Hodgkin–Huxley mathematics, for every backend.

Everything numeric about the model lives here, once: the rate constants (as data), the bound on
the rate exponents, the one Bernoulli function ``u/(eᵘ − 1)`` and the one ``exprel``
``(eᶻ − 1)/z`` (series coefficients and radius), the fused evaluation of the six rates, the
exponential-Euler gate relaxation, the conductances and the V update, the temperature factor
of the rates, and the fused kernel's per-neuron parameter layout. The `lax.scan` steppers,
the vector field (Diffrax, analysis) and the rate functions call these functions;
`hh_jax._kernel_build` generates the C++ kernel's header (``hh_model.h``) from the same data
(:func:`cpp_header`), so no model number is typed by hand in C++.

Voltages in mV, rates in 1/ms, conductances in mS/cm², currents in µA/cm², C in µF/cm².
"""

import functools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp

# --- Rate constants ------------------------------------------------------------------------
# Each rate is scale · f(x) with x = −(V − V_half)/slope (dimensionless):
#   "linoid":  f = x / (eˣ − 1)  (the Bernoulli function; = slope-scaled 0.1 (V+40)/(1 − e^…))
#   "exp":     f = eˣ
#   "sigmoid": f = 1 / (1 + eˣ)
RATE_CONSTANTS = {
    #          kind       scale  V_half  slope
    "alpha_m": ("linoid", 1.0, -40.0, 10.0),
    "beta_m": ("exp", 4.0, -65.0, 18.0),
    "alpha_h": ("exp", 0.07, -65.0, 20.0),
    "beta_h": ("sigmoid", 1.0, -35.0, 10.0),
    "alpha_n": ("linoid", 0.1, -55.0, 10.0),
    "beta_n": ("exp", 0.125, -65.0, 80.0),
}
"""Rate name → (kind, scale 1/ms, V_half mV, slope mV); the seeds' rates in absolute mV."""

RATE_NAMES = tuple(RATE_CONSTANTS)
"""The six rates in the order every backend returns them: α_m, β_m, α_h, β_h, α_n, β_n."""

EXP_CLIP = 80.0
"""Bound (dimensionless) on the exponents of the rate functions, so that no rate overflows, even
in float32 (e^80 ≈ 5.5e34), at voltages far outside [−200, 200] mV. In `gate_rates` it bounds
u = −(V+40)/10 (active outside V ∈ [−840, 760] mV) and the upper end of β_m's exponent. The
kernel gets it from the generated header."""

REFERENCE_TEMPERATURE = 6.3
"""°C: the temperature of the HH rates (φ = 1 there)."""

# --- The fused evaluation: every rate from the reference exponent u of α_m -------------------
# u = (V − V_half(α_m)) · (−1/slope), E = e^uc with uc = clip(u, ±EXP_CLIP):
#   α_m = scale · B(u)                       B(u) = u/(eᵘ − 1), denominator expm1(uc)
#   α_n = scale · B(u + s_n)                 s_n = (V_half(α_n) − V_half(α_m))/slope, same slope
#   β_h = scale / (1 + E·e^{s_h})            same slope
#   α_h = scale·e^{s_a} · √E                 slope twice α_m's
#   β_n = scale · exp(r_n·uc + s_b)          its own exponential (kernel and Python alike)
#   β_m = scale · exp(min((V − V_half)·(−1/slope), EXP_CLIP))
# 2 exp + 2 expm1 + 1 sqrt + 1 exp per neuron-step for all six.
_AM, _BM, _AH, _BH, _AN, _BN = (RATE_CONSTANTS[k] for k in RATE_NAMES)
_REF_V, _REF_SLOPE = _AM[2], _AM[3]
U_GAIN = -1.0 / _REF_SLOPE
"""u = (V − V_half(α_m)) · U_GAIN."""
for _name, _r, _ratio in (("alpha_n", _AN, 1.0), ("beta_h", _BH, 1.0), ("alpha_h", _AH, 0.5)):
    if _r[3] * _ratio != _REF_SLOPE:
        raise AssertionError(f"the fused rates assume {_name}'s slope is {_REF_SLOPE / _ratio} mV")
AN_SHIFT = (_AN[2] - _REF_V) / _AN[3]  # −(V + 55)/10 = u − 1.5
AN_E_FACTOR = math.exp(AN_SHIFT)
BH_E_FACTOR = math.exp((_BH[2] - _REF_V) / _BH[3])  # e^{0.5}
AH_COEF = _AH[1] * math.exp((_AH[2] - _REF_V) / _AH[3])  # 0.07 e^{−1.25}, times √E
BN_U_COEF = _REF_SLOPE / _BN[3]  # 1/8
BN_OFFSET = (_BN[2] - _REF_V) / _BN[3]  # −5/16
BM_GAIN = -1.0 / _BM[3]


# --- Removable-singularity series ------------------------------------------------------------
def _bernoulli_numbers(n: int) -> list[Fraction]:
    B = [Fraction(0)] * (n + 1)
    for m in range(n + 1):
        B[m] = -sum(math.comb(m + 1, k) * B[k] for k in range(m)) / (m + 1) if m else Fraction(1)
    return B


_BN_NUM = _bernoulli_numbers(12)
BERNOULLI_HEAD = (float(_BN_NUM[0]), float(_BN_NUM[1]))
"""B₀, B₁ = 1, −1/2: the series' constant and linear coefficients."""
BERNOULLI_EVEN = tuple(float(_BN_NUM[2 * k] / math.factorial(2 * k)) for k in range(1, 7))
"""Coefficients of u², u⁴, …, u¹² in u/(eᵘ − 1) = 1 − u/2 + Σ B₂ₖ/(2k)! u²ᵏ (truncation
< 1e-15 relative for |u| < `BERNOULLI_RADIUS`)."""
BERNOULLI_RADIUS = 0.5
"""The series is used for |u| < this, u/expm1(u) elsewhere (both dtypes)."""

EXPREL_COEF = tuple(1.0 / math.factorial(j + 1) for j in range(14))
"""Coefficients of zʲ in exprel(z) = (eᶻ − 1)/z = Σ zʲ/(j+1)! (14 terms: truncation < 1e-17
for |z| < `EXPREL_RADIUS`)."""
EXPREL_RADIUS = 0.5
EXPREL_TERMS_F32 = 9
"""Terms of `EXPREL_COEF` the float32 kernel sums (truncation 0.5⁹/10! < 1e-9)."""

EXP_TAYLOR = tuple(1.0 / math.factorial(k) for k in range(14))
"""Taylor coefficients 1/k! of eʳ for the kernel's exponential (|r| ≤ ln2/2): degree
`EXP_DEGREE_F32` in float32, 13 in float64."""
EXP_DEGREE_F32 = 7


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _horner(coefs, x):
    """``Σ coefs[k] xᵏ`` by Horner's rule. Its derivative is the derived polynomial
    ``Σ k coefs[k] xᵏ⁻¹``, also by Horner (a custom JVP): reverse mode through the rule itself
    would take three operations per term and keep every partial sum."""
    p = jnp.full_like(x, coefs[-1])
    for c in reversed(coefs[:-1]):
        p = c + x * p
    return p


@_horner.defjvp
def _horner_jvp(coefs, primals, tangents):
    (x,), (t,) = primals, tangents
    slope = _horner(tuple(k * c for k, c in enumerate(coefs))[1:], x) if len(coefs) > 1 else jnp.zeros_like(x)
    return _horner(coefs, x), slope * t


def bernoulli(u, uc=None):
    """``u / (exp(u) − 1)``: the series for |u| < `BERNOULLI_RADIUS`, else the quotient.

    `uc`: the exponent for the denominator (u clipped to ±EXP_CLIP in the rates), or None: then
    the quotient is written ``|u|·e^{−|u|}/(1 − e^{−|u|})`` for u > 0, so nothing overflows.
    Both branches sit behind the "double where": value, gradient and hessian are finite and
    right at u = 0, in float32 and float64.
    """
    small = jnp.abs(u) < BERNOULLI_RADIUS
    u_big = jnp.where(small, BERNOULLI_RADIUS, u)  # keeps the unused branch finite
    if uc is None:
        neg = -jnp.abs(u_big)
        core = neg / jnp.expm1(neg)
        big = jnp.where(u_big > 0, core * jnp.exp(neg), core)
    else:
        big = u_big / jnp.expm1(jnp.where(small, 1.0, uc))
    us = jnp.where(small, u, 0.0)
    u2 = us * us
    series = (BERNOULLI_HEAD[0] + BERNOULLI_HEAD[1] * us) + u2 * _horner(BERNOULLI_EVEN, u2)
    return jnp.where(small, series, big)


def exprel(z):
    """``(exp(z) − 1)/z`` (1 at z = 0): the series for |z| < `EXPREL_RADIUS`, else
    ``expm1(min(z, EXP_CLIP))/z``; double where (finite derivatives at 0)."""
    small = jnp.abs(z) < EXPREL_RADIUS
    z_big = jnp.where(small, -1.0, z)
    big = jnp.expm1(jnp.minimum(z_big, EXP_CLIP)) / z_big
    return jnp.where(small, _horner(EXPREL_COEF, jnp.where(small, z, 0.0)), big)


# --- Temperature -----------------------------------------------------------------------------
def rate_factor(params):
    """The factor φ = q10^((temperature − REFERENCE_TEMPERATURE)/10) (dimensionless) that
    multiplies every rate, from `params` (fields ``temperature``, °C, and ``q10``); exactly 1 at
    the defaults (6.3 °C)."""
    return params.q10 ** ((params.temperature - REFERENCE_TEMPERATURE) / 10.0)


# --- The six rates ---------------------------------------------------------------------------
def gate_rates(V, factor=1.0):
    """``(α_m, β_m, α_h, β_h, α_n, β_n)`` in 1/ms at `V` (mV), each times `factor` (φ)."""
    u = (V - _REF_V) * U_GAIN
    uc = jnp.clip(u, -EXP_CLIP, EXP_CLIP)
    E = jnp.exp(uc)
    am = _AM[1] * bernoulli(u, uc)
    an = _AN[1] * bernoulli(u + AN_SHIFT, uc + AN_SHIFT)
    bh = _BH[1] / (1.0 + E * BH_E_FACTOR)
    ah = AH_COEF * jnp.sqrt(E)
    bn = _BN[1] * jnp.exp(uc * BN_U_COEF + BN_OFFSET)
    bm = _BM[1] * jnp.exp(jnp.minimum((V - _BM[2]) * BM_GAIN, EXP_CLIP))
    return tuple(factor * r for r in (am, bm, ah, bh, an, bn))


def steady_states(V):
    """(m∞, h∞, n∞) at `V` (mV): α/(α+β), independent of the rate factor."""
    am, bm, ah, bh, an, bn = gate_rates(V)
    return am / (am + bm), ah / (ah + bh), an / (an + bn)


# --- Exponential Euler -----------------------------------------------------------------------
def relax(x, a, b, dt):
    """Exact solution over `dt` (ms) of dx/dt = a(1 − x) − b·x with a, b (1/ms) frozen."""
    k = a + b
    x_inf = a / k
    return x_inf + (x - x_inf) * jnp.exp(-dt * k)


def conductances(params, m, h, n):
    """(gNa·m³h, gK·n⁴, gL), mS/cm² (associated for a short dependency chain)."""
    g_na = params.gNa * ((m * m) * (m * h))
    n2 = n * n
    return g_na, params.gK * (n2 * n2), params.gL


def v_update(params, V, m, h, n, I, dt):
    """Exact solution over `dt` of C dV/dt = I − I_ion(V) with the gates frozen at (m, h, n):
    ``V + (dt/C)·(I − I_ion(V))·exprel(−(dt/C)·g_tot)``."""
    g_na, g_k, g_l = conductances(params, m, h, n)
    g_tot = g_na + (g_k + g_l)
    drive = _drive(params, V, g_na, g_k, g_l, I)
    dtC = dt * (1.0 / params.C)
    return V + (dtC * drive) * exprel(g_tot * -dtC)


def _drive(params, V, g_na, g_k, g_l, I):
    """``I − I_ion(V)`` (µA/cm²) for the conductances (mS/cm²) `g_na`, `g_k`, `g_l`."""
    return I - (g_na * (V - params.ENa) + (g_k * (V - params.EK) + g_l * (V - params.EL)))


def membrane_dvdt(params, V, m, h, n, I):
    """dV/dt (mV/ms) = (I − I_ion)/C at the state (V, m, h, n) for the current `I` (µA/cm²):
    the slopes of the fixed-step loops' spike brackets (the GPU kernel)."""
    return _drive(params, V, *conductances(params, m, h, n), I) / params.C


def exp_euler_step(params, V, m, h, n, I, dt, staggered: bool, *, factor=None):
    """One exponential-Euler step: gates exactly under frozen V, then V exactly under the new
    (staggered) or old (simultaneous) gates. `I` at the step's midpoint. Returns (V, m, h, n).
    `factor`: the rate factor φ when already computed (a kernel's parameter row), else
    ``rate_factor(params)``."""
    # φ cancels in x∞ = α/(α+β) and scales the relaxation rate: the rates at φ = 1 and the
    # step dt·φ (the kernel's arithmetic: φ stays off its dependency chain).
    am, bm, ah, bh, an, bn = gate_rates(V)
    dt_phi = dt * (rate_factor(params) if factor is None else factor)
    m1, h1, n1 = relax(m, am, bm, dt_phi), relax(h, ah, bh, dt_phi), relax(n, an, bn, dt_phi)
    gates = (m1, h1, n1) if staggered else (m, h, n)
    return v_update(params, V, *gates, I, dt), m1, h1, n1


# --- The fused kernel's per-neuron parameter layout ------------------------------------------
KERNEL_PARAMS = (
    ("gNa", lambda p: p.gNa),
    ("gK", lambda p: p.gK),
    ("gL", lambda p: p.gL),
    ("ENa", lambda p: p.ENa),
    ("EK", lambda p: p.EK),
    ("EL", lambda p: p.EL),
    ("C", lambda p: p.C),
    ("V_th", lambda p: p.V_th),
    ("rate_factor", rate_factor),
)
"""(row name, HHParams → row values): the rows of the kernel's ``par [P, rows, N]``."""


def kernel_param_rows(params):
    """The rows of `KERNEL_PARAMS` computed from `params` (each broadcastable to the population)."""
    return [f(params) for _, f in KERNEL_PARAMS]


def _c(x: float) -> str:
    return repr(float(x))


def cpp_header() -> str:
    """The C++ header ``hh_model.h`` of the fused kernel, generated from this module."""
    arr = lambda name, xs: f"constexpr double {name}[{len(xs)}] = {{{', '.join(_c(x) for x in xs)}}};"
    lines = [
        "// GENERATED by hh_jax/_kernel_build.py from hh_jax/_model.py at build time. Do not edit.",
        "#pragma once",
        "#include <cstdint>",
        "namespace hh_model {",
        f"constexpr double EXP_CLIP = {_c(EXP_CLIP)};",
        f"constexpr double U_V_HALF = {_c(_REF_V)}, U_GAIN = {_c(U_GAIN)};",
        f"constexpr double AM_SCALE = {_c(_AM[1])};",
        f"constexpr double AN_SCALE = {_c(_AN[1])}, AN_SHIFT = {_c(AN_SHIFT)}, "
        f"AN_E_FACTOR = {_c(AN_E_FACTOR)};",
        f"constexpr double BH_SCALE = {_c(_BH[1])}, BH_E_FACTOR = {_c(BH_E_FACTOR)};",
        f"constexpr double AH_COEF = {_c(AH_COEF)};",
        f"constexpr double BN_SCALE = {_c(_BN[1])}, BN_U_COEF = {_c(BN_U_COEF)}, "
        f"BN_OFFSET = {_c(BN_OFFSET)};",
        f"constexpr double BM_SCALE = {_c(_BM[1])}, BM_V_HALF = {_c(_BM[2])}, BM_GAIN = {_c(BM_GAIN)};",
        f"constexpr double BERNOULLI_RADIUS = {_c(BERNOULLI_RADIUS)};",
        arr("BERNOULLI_HEAD", BERNOULLI_HEAD),
        arr("BERNOULLI_EVEN", BERNOULLI_EVEN),
        f"constexpr double EXPREL_RADIUS = {_c(EXPREL_RADIUS)};",
        arr("EXPREL_COEF", EXPREL_COEF),
        f"constexpr int EXPREL_TERMS_F32 = {EXPREL_TERMS_F32};",
        arr("EXP_TAYLOR", EXP_TAYLOR),
        f"constexpr int EXP_DEGREE_F32 = {EXP_DEGREE_F32};",
        f"constexpr int64_t N_PAR = {len(KERNEL_PARAMS)};",
        *(f"constexpr int64_t PAR_{name.upper()} = {i};" for i, (name, _) in enumerate(KERNEL_PARAMS)),
        "}  // namespace hh_model",
        "",
    ]
    return "\n".join(lines)

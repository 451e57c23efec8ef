"""Argument checks of `simulate` (Python-level: shapes, types and values known before tracing)."""

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ._stimulus import AbstractStimulus
from ._vector_field import HHState


def _check_positive_finite(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number (ms), got {value!r}.")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number (ms), got {value}.")
    return value


def _check_t0(t0):
    """`t0` (ms) as a float; a 0-d JAX array is kept as an array (checked if concrete), so that
    `simulate` runs under a caller's `jax.jit` with a traced start time."""
    if isinstance(t0, jax.Array) and not isinstance(t0, bool):
        if t0.ndim != 0 or not jnp.issubdtype(t0.dtype, jnp.number) or jnp.issubdtype(t0.dtype, jnp.complexfloating):
            raise ValueError(f"t0 must be a finite number (ms), got an array of shape {t0.shape} and dtype {t0.dtype}.")
        if isinstance(t0, jax.core.Tracer):
            return t0
        t0 = t0.item()
    if isinstance(t0, bool) or not isinstance(t0, (int, float, np.integer, np.floating)) or not math.isfinite(t0):
        raise ValueError(f"t0 must be a finite number (ms), got {t0!r}.")
    return float(t0)


def _n_steps(duration: float, dt: float) -> int:
    n = round(duration / dt)
    if n < 1 or abs(n * dt - duration) > 1e-6 * max(duration, dt):
        raise ValueError(
            f"duration ({duration} ms) must be a whole number of steps dt ({dt} ms); "
            f"duration/dt = {duration / dt:.6g}."
        )
    return int(n)


def _check_stimulus_grid(stimulus: AbstractStimulus, dt: float, t0: float, t_end: float) -> None:
    for d in stimulus.grid_dt():
        ratio = d / dt
        if abs(ratio - round(ratio)) > 1e-6 * max(ratio, 1.0) or round(ratio) < 1:
            raise ValueError(
                f"stimulus is sampled with dt={d} ms, which is not a whole multiple of the "
                f"simulation dt={dt} ms."
            )
    for start, end in stimulus.grid_span():
        if start > t0 + 1e-9 * max(abs(t0), 1.0) or end < t_end - 1e-6 * max(abs(t_end), 1.0):
            raise ValueError(
                f"stimulus samples cover [{start}, {end}] ms but the simulation runs over "
                f"[{t0}, {t_end}] ms."
            )


def _check_y0(y0: HHState) -> None:
    """Concrete initial states must be finite with gates in [0, 1] (traced ones are not checked)."""
    for name in ("V", "m", "h", "n"):
        x = getattr(y0, name)
        if isinstance(x, jax.core.Tracer):
            continue
        if not jnp.issubdtype(jnp.result_type(x), jnp.inexact):
            continue
        arr = np.asarray(x)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"y0.{name} must be finite, got {arr.ravel()[:4].tolist()}.")
        # 1e-6 of slack: a final_state of an explicit stepper (RK4, Euler) may overshoot by rounding.
        if name != "V" and (np.any(arr < -1e-6) or np.any(arr > 1 + 1e-6)):
            raise ValueError(f"y0.{name} (a gate) must lie in [0, 1], got {arr.ravel()[:4].tolist()}.")


def _check_no_diffrax_options(stepper, controller, adjoint, max_steps, population) -> None:
    """A scan stepper takes no Diffrax option: one given anyway would be silently ignored."""
    given = [
        name
        for name, is_set in (
            ("stepsize_controller", not isinstance(controller, diffrax.ConstantStepSize)),
            ("adjoint", adjoint is not None),
            ("max_steps", max_steps is not None),
            ("population", population != "batched"),
        )
        if is_set
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)}: Diffrax-only option(s), but stepper={stepper!r} is a scan "
            "stepper; pass a diffrax.AbstractSolver (e.g. diffrax.Tsit5()) or drop them."
        )


def _population_shape(params, stimulus, y0, t0) -> tuple[int, ...]:
    shapes = {"params": params.pop_shape}
    try:
        shapes["stimulus"] = tuple(jax.eval_shape(stimulus, jnp.asarray(t0, params.dtype)).shape)
    except Exception as e:
        raise ValueError(f"stimulus could not be evaluated at t={t0} ms: {e}") from None
    if y0 is not None:
        shapes["y0"] = y0.shape
    try:
        return tuple(np.broadcast_shapes(*shapes.values()))
    except ValueError:
        detail = ", ".join(f"{k} {v}" for k, v in shapes.items())
        raise ValueError(f"population shapes do not broadcast: {detail}.") from None

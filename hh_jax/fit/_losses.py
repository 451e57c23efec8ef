"""Pure, composable loss functions for fitting HH models to recordings.

Each function maps arrays (model output and data) to a scalar; combine them with ordinary
arithmetic or :func:`weighted_sum`. All are differentiable with respect to the model output.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._validate import as_int, as_number


def _check_same_shape(name_a, a, name_b, b):
    if jnp.shape(a) != jnp.shape(b):
        raise ValueError(f"{name_a} has shape {jnp.shape(a)} but {name_b} has shape {jnp.shape(b)}.")


def _check_positive(name, x):
    """A concrete (Python/NumPy) number `x` must be a positive finite number; arrays pass."""
    if not isinstance(x, (jax.Array, np.ndarray)):
        as_number(name, x, positive=True)


def trace_mse(
    V_model: Float[Array, "time *pop"],
    V_data: Float[Array, "time *pop"],
    *,
    weights: Float[Array, "*pop"] | None = None,
) -> Float[Array, ""]:
    """Mean squared difference of two voltage traces, mV².

    **Arguments:**

    - `V_model`, `V_data`: mV, same shape ``[time, *pop]`` (``pop`` may index protocols).
    - `weights`: per-trace weights, shape ``[*pop]``, normalised to sum 1. Default: equal.

    **Returns:** ``Σ_p w_p · mean_t (V_model − V_data)²``, mV².

    **Example:** ``trace_mse(sim.V, data_V)``.
    """
    _check_same_shape("V_model", V_model, "V_data", V_data)
    per_trace = jnp.mean((V_model - V_data) ** 2, axis=0)
    return _weighted_mean(per_trace, weights)


def _weighted_mean(per_trace, weights):
    if weights is None:
        return jnp.mean(per_trace)
    try:
        w = jnp.broadcast_to(jnp.asarray(weights, per_trace.dtype), per_trace.shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"weights (shape {jnp.shape(weights)}) must broadcast to the traces' population shape "
            f"{per_trace.shape}."
        ) from None
    return jnp.sum(w * per_trace) / jnp.sum(w)


def soft_spike_count(
    V: Float[Array, "time *pop"], *, V_th: float = 0.0, width: float = 5.0
) -> Float[Array, "*pop"]:
    """A smooth count of upward threshold crossings along the time axis.

    ``s = sigmoid((V − V_th)/width)`` rises by ≈ 1 over each spike's upstroke; the count is the
    sum of the positive increments of ``s``. It equals the spike count for well-separated
    spikes with ``width`` small against the spike height, and is differentiable in ``V``.

    **Arguments:** `V`: mV, ``[time, *pop]``; `V_th`: mV, default 0.0; `width`: mV, default 5.0.

    **Returns:** soft counts, shape ``[*pop]``.

    **Example:** ``soft_spike_count(sim.V, V_th=0.0)``.
    """
    _check_positive("soft_spike_count: width (mV)", width)
    s = jax.nn.sigmoid((V - V_th) / width)
    return jnp.sum(jax.nn.relu(jnp.diff(s, axis=0)), axis=0)


def window_stats(
    V: Float[Array, "time *pop"], *, samples_per_window: int, V_th: float = 0.0, width: float = 5.0
) -> tuple[Array, Array, Array]:
    """Windowed summary statistics of a trace: mean (mV), standard deviation (mV), soft spike count.

    The trace is cut into consecutive windows of `samples_per_window` samples (a partial last
    window is dropped).

    **Arguments:** `V`: mV, ``[time, *pop]``; `samples_per_window`: ≥ 2; `V_th`, `width`: as
    :func:`soft_spike_count`.

    **Returns:** ``(mean, std, count)``, each ``[windows, *pop]``.

    **Example:** ``mean, std, count = window_stats(sim.V, samples_per_window=400)``.
    """
    samples_per_window = as_int("samples_per_window", samples_per_window, minimum=2)
    n_win = V.shape[0] // samples_per_window
    if n_win < 1:
        raise ValueError(f"samples_per_window ({samples_per_window}) exceeds the trace length ({V.shape[0]}).")
    W = V[: n_win * samples_per_window].reshape((n_win, samples_per_window) + V.shape[1:])
    mean = jnp.mean(W, axis=1)
    std = jnp.sqrt(jnp.mean((W - mean[:, None]) ** 2, axis=1) + 1e-12)
    count = soft_spike_count(jnp.moveaxis(W, 1, 0), V_th=V_th, width=width)
    return mean, std, count


def summary_loss(
    V_model: Float[Array, "time *pop"],
    V_data: Float[Array, "time *pop"],
    *,
    samples_per_window: int,
    scales: tuple[float, float, float] = (1.0, 1.0, 1.0),
    V_th: float = 0.0,
    weights: Float[Array, "*pop"] | None = None,
) -> Float[Array, ""]:
    """Squared differences of windowed mean, std and soft spike count, each divided by its scale.

    **Arguments:** `V_model`, `V_data`: mV, ``[time, *pop]``; `samples_per_window`: window
    length in samples; `scales`: (mV, mV, spikes), default (1, 1, 1); `V_th`: mV, default 0;
    `weights`: per-trace weights ``[*pop]``.

    **Returns:** dimensionless scalar.

    **Example:** ``summary_loss(sim.V, data_V, samples_per_window=400)``.
    """
    _check_same_shape("V_model", V_model, "V_data", V_data)
    if isinstance(scales, (str, bytes)) or len(scales) != 3:
        raise ValueError(f"summary_loss: scales must be 3 numbers (mV, mV, spikes), got {scales!r}.")
    for s in scales:
        _check_positive("summary_loss: scales", s)
    a = window_stats(V_model, samples_per_window=samples_per_window, V_th=V_th)
    b = window_stats(V_data, samples_per_window=samples_per_window, V_th=V_th)
    per_trace = sum(jnp.mean(((x - y) / s) ** 2, axis=0) for x, y, s in zip(a, b, scales))
    return _weighted_mean(per_trace, weights)


def spike_time_loss(
    t_model: Float[Array, "slots *pop"],
    t_data: Float[Array, "slots *pop"],
    *,
    t_end: float,
    weights: Float[Array, "*pop"] | None = None,
) -> Float[Array, ""]:
    """Mean squared difference of spike times, ms², continuous when spikes leave through `t_end`.

    Both inputs are padded spike-time arrays (as ``SimulationResult.spike_times``: sorted,
    ``+inf`` after the last spike). Padding is replaced by `t_end`, so that a spike that
    disappears through the end of the window changes the loss continuously; the k-th model
    spike is compared with the k-th recorded one. With `simulate`'s linearly interpolated
    crossing times the loss is differentiable in the parameters (a smooth surrogate on the
    scan path; it gives no gradient for spikes appearing in the middle of the window).

    **Arguments:** `t_model`, `t_data`: ms, ``[slots, *pop]`` (the shorter is padded);
    `t_end`: end of the observation window, ms; `weights`: per-trace weights ``[*pop]``.

    **Returns:** ms².

    **Example:** ``spike_time_loss(sim.spike_times, data_times, t_end=100.0)``.
    """
    _check_positive("spike_time_loss: t_end (ms)", t_end)
    n = max(t_model.shape[0], t_data.shape[0])

    def pad(x):
        x = jnp.minimum(x, t_end)
        widths = [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1)
        return jnp.pad(x, widths, constant_values=t_end)

    a, b = pad(t_model), pad(t_data)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"t_model has shape {t_model.shape} but t_data has shape {t_data.shape}.")
    per_trace = jnp.mean((a - b) ** 2, axis=0)
    return _weighted_mean(per_trace, weights)


def weighted_sum(losses: Sequence[Array], weights: Sequence[float]) -> Float[Array, ""]:
    """``Σ_i weights[i]·losses[i]``, e.g. to combine protocols or loss terms.

    **Example:** ``weighted_sum([trace_mse(a, b), summary_loss(a, b, samples_per_window=400)], [1.0, 0.1])``.
    """
    if len(losses) != len(weights) or not losses:
        raise ValueError(f"weighted_sum needs as many weights as losses (>= 1), got {len(losses)} and {len(weights)}.")
    return sum(w * l for w, l in zip(weights, losses))

"""Stimuli on a time grid: sampled arrays (time × neurons) and white / Ornstein–Uhlenbeck noise.

They live on a grid of step ``dt`` (ms) and are held constant within each bin (zero-order hold);
`simulate` checks that their grid agrees with the simulation's ``dt`` and covers its span.
Currents in µA/cm².
"""

import abc
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, PopArray, PRNGKeyArray, shape_arg
from ._stimulus import AbstractStimulus, AbstractWrapper, in_window
from ._validate import as_float_array, as_number


class AbstractSampleInterpolation(eqx.Module):
    """How `Sampled` turns its samples into a current between them: `HoldSamples()` or
    `LinearSamples()`."""

    piecewise_constant: eqx.AbstractClassVar[bool]
    """Whether the current is constant within each bin (then the simulation's `dt` must match
    the grid's)."""

    @abc.abstractmethod
    def evaluate(self, values, x):
        """``(current, inside)`` at the grid position ``x = (t − t0)/dt`` (`values`: ``[T, …]``)."""

    @abc.abstractmethod
    def jump_indices(self, T: int) -> np.ndarray:
        """Grid positions (in samples) where the current or its slope jumps."""

    @abc.abstractmethod
    def covered(self, T: int) -> int:
        """Bins of ``dt`` the `T` samples cover."""


class HoldSamples(AbstractSampleInterpolation):
    """Sample ``values[k]`` holds on ``[t0 + k·dt, t0 + (k+1)·dt)`` (zero-order hold; the default).

    **Example:** ``hh_jax.Sampled(values, dt=0.01, interpolation=hh_jax.HoldSamples())``.
    """

    piecewise_constant: ClassVar[bool] = True

    def evaluate(self, values, x):
        T = values.shape[0]
        # A point within 1e-3 of a bin's left edge (rounding of t = k·dt) belongs to that bin.
        k = jnp.floor(x + 1e-3).astype(jnp.int32)
        inside = (k >= 0) & (k < T)
        return values[jnp.clip(k, 0, T - 1)], inside

    def jump_indices(self, T: int) -> np.ndarray:
        return np.arange(T + 1)

    def covered(self, T: int) -> int:
        return T


class LinearSamples(AbstractSampleInterpolation):
    """The current linearly interpolated between samples (``values[k]`` at ``t0 + k·dt``), e.g.
    for a recorded current.

    **Example:** ``hh_jax.Sampled(values, dt=0.01, interpolation=hh_jax.LinearSamples())``.
    """

    piecewise_constant: ClassVar[bool] = False

    def evaluate(self, values, x):
        T = values.shape[0]
        k = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, max(T - 2, 0))
        w = jnp.clip(x - k.astype(x.dtype), 0.0, 1.0).astype(values.dtype)
        v0 = values[k]
        v1 = values[jnp.minimum(k + 1, T - 1)]
        return v0 + (v1 - v0) * w, (x >= -1e-3) & (x <= T - 1 + 1e-3)

    def jump_indices(self, T: int) -> np.ndarray:
        return np.array([0, T - 1])

    def covered(self, T: int) -> int:
        return T - 1


class Sampled(AbstractStimulus):
    """A current given as samples on a regular time grid (time × neurons).

    Sample ``values[k]`` holds on ``[t0 + k·dt, t0 + (k+1)·dt)`` (zero-order hold) or, with
    ``interpolation=LinearSamples()``, the current is linearly interpolated between samples. Outside
    the grid the current is 0.

    **Arguments:**

    - `values`: µA/cm², shape ``[T]`` or ``[T, *pop]``.
    - `dt`: sample spacing, ms, > 0.
    - `t0`: time of the first sample, ms. Default 0.0.
    - `interpolation`: `HoldSamples()` (default) or `LinearSamples()`.

    **Example:** ``Sampled(jax.random.uniform(key, (10000, 10), minval=1, maxval=10), dt=0.01)``.
    """

    values: Array
    dt: float = eqx.field(static=True)
    t0: float = eqx.field(static=True)
    interpolation: AbstractSampleInterpolation = eqx.field(static=True)

    def __init__(self, values, *, dt: float, t0: float = 0.0,
                 interpolation: AbstractSampleInterpolation = HoldSamples()):
        values = as_float_array("Sampled.values", values, finite=True)
        if values.ndim == 0 or values.shape[0] < 1:
            raise ValueError(f"Sampled.values must have a leading time axis, got shape {values.shape}.")
        self.values = values
        self.dt = as_number("Sampled.dt", dt, positive=True)
        self.t0 = as_number("Sampled.t0", t0)
        if not isinstance(interpolation, AbstractSampleInterpolation):
            raise TypeError("Sampled.interpolation must be hh_jax.HoldSamples() or hh_jax.LinearSamples(), "
                            f"got {interpolation!r}.")
        self.interpolation = interpolation

    def __call__(self, t) -> PopArray:
        x = (t - self.t0) / self.dt
        val, inside = self.interpolation.evaluate(self.values, x)
        return jnp.where(inside, val, jnp.zeros_like(val))

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window(self.t0 + self.dt * self.interpolation.jump_indices(self.values.shape[0]), t0, t1)

    def grid_dt(self) -> tuple[float, ...]:
        return (self.dt,) if self.interpolation.piecewise_constant else ()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        n = self.interpolation.covered(self.values.shape[0])
        return ((self.t0, self.t0 + n * self.dt),)


def _check_fits(cls, shape, **arrays):
    """The noise parameters must broadcast to the noise's population `shape`."""
    for name, a in arrays.items():
        try:
            ok = np.broadcast_shapes(jnp.shape(a), shape) == tuple(shape)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{cls}.{name} of shape {jnp.shape(a)} does not broadcast to shape={shape}.")


class WhiteNoise(AbstractStimulus):
    """Gaussian white-noise current, drawn afresh in every bin of width `dt`.

    ``I = mean + sigma·ξ_k`` with independent ``ξ_k ~ N(0, 1)`` per bin and neuron — the
    seed-002 recipe ``bp.math.random.normal(0, 3, size=...)`` is ``WhiteNoise(key, sigma=3,
    dt=0.01, ...)``. Set ``scale_with_dt=True`` for a dt-independent noise intensity (a Wiener
    process' derivative): then ``I = mean + sigma·ξ_k/√dt``, `sigma` in µA/cm²·ms^½.

    Samples are computed on demand from ``(key, bin index)`` (counter-based), so no array of
    size time × neurons is ever stored and a run is reproducible from its key.

    **Arguments:**

    - `key`: `jax.random` key.
    - `sigma`: noise standard deviation, µA/cm² (array allowed), ≥ 0.
    - `dt`: bin width, ms (must equal the simulation's dt).
    - `shape`: population shape (int or tuple). Default ``()``.
    - `mean`: µA/cm². Default 0.0.
    - `scale_with_dt`: see above. Default False.
    - `t0`: start of bin 0, ms. Default 0.0.

    **Example:** ``WhiteNoise(jax.random.key(0), sigma=3.0, dt=0.01, shape=2)``.
    """

    key: PRNGKeyArray
    sigma: PopArray
    mean: PopArray
    dt: float = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    scale_with_dt: bool = eqx.field(static=True)
    t0: float = eqx.field(static=True)

    def __init__(self, key, *, sigma, dt: float, shape=(), mean=0.0, scale_with_dt: bool = False, t0: float = 0.0):
        if not isinstance(key, jax.Array):
            raise TypeError(f"WhiteNoise.key must be a jax.random key, got {type(key).__name__}.")
        self.key = key
        self.sigma = as_float_array("WhiteNoise.sigma", sigma, finite=True)
        if not isinstance(self.sigma, jax.core.Tracer) and bool(jnp.any(self.sigma < 0)):
            raise ValueError("WhiteNoise.sigma must be >= 0.")
        self.mean = as_float_array("WhiteNoise.mean", mean, finite=True)
        self.dt = as_number("WhiteNoise.dt", dt, positive=True)
        self.shape = shape_arg(shape, "WhiteNoise.shape")
        _check_fits("WhiteNoise", self.shape, sigma=self.sigma, mean=self.mean)
        self.scale_with_dt = bool(scale_with_dt)
        self.t0 = as_number("WhiteNoise.t0", t0)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        # none reported: a jump at every noise sample would force an adaptive solver onto each
        # sample; the sampling grid is checked against dt instead (`grid_dt`)
        return np.zeros((0,))

    def __call__(self, t) -> PopArray:
        k = jnp.floor((t - self.t0) / self.dt + 1e-3).astype(jnp.int32)
        xi = jax.random.normal(jax.random.fold_in(self.key, k), self.shape, dtype=self.sigma.dtype)
        scale = self.sigma / math.sqrt(self.dt) if self.scale_with_dt else self.sigma
        return self.mean + scale * xi

    def grid_dt(self) -> tuple[float, ...]:
        return (self.dt,)


class OUNoise(AbstractWrapper):
    """Ornstein–Uhlenbeck current noise, sampled exactly on a grid of step `dt`.

    ``dI = (mean − I)/tau·dt + sigma·√(2/tau)·dW``: stationary mean `mean`, stationary standard
    deviation `sigma`, correlation time `tau`. The process is sampled by its exact AR(1)
    recursion ``I_{k+1} = mean + (I_k − mean)·e^{−dt/τ} + sigma·√(1 − e^{−2dt/τ})·ξ_k`` starting
    from the stationary distribution, for `n_steps` bins (stored: memory time × neurons).

    **Arguments:**

    - `key`: `jax.random` key.
    - `mean`: µA/cm²; `sigma`: µA/cm², ≥ 0; `tau`: ms, > 0.
    - `dt`: ms; `duration`: ms (covered span); `shape`: population shape. `t0`: ms, default 0.

    **Example:** ``OUNoise(key, mean=5.0, sigma=2.0, tau=5.0, dt=0.01, duration=1000.0, shape=10)``.
    """

    stimulus: Sampled

    def __init__(self, key, *, mean, sigma, tau: float, dt: float, duration: float, shape=(), t0: float = 0.0):
        if not isinstance(key, jax.Array):
            raise TypeError(f"OUNoise.key must be a jax.random key, got {type(key).__name__}.")
        mean = as_float_array("OUNoise.mean", mean, finite=True)
        sigma = as_float_array("OUNoise.sigma", sigma, finite=True)
        if not isinstance(sigma, jax.core.Tracer) and bool(jnp.any(sigma < 0)):
            raise ValueError("OUNoise.sigma must be >= 0.")
        tau = as_number("OUNoise.tau", tau, positive=True)
        dt = as_number("OUNoise.dt", dt, positive=True)
        duration = as_number("OUNoise.duration", duration, positive=True)
        shape = shape_arg(shape, "OUNoise.shape")
        _check_fits("OUNoise", shape, sigma=sigma, mean=mean)
        n = int(math.ceil(duration / dt - 1e-9))
        decay = math.exp(-dt / tau)
        kick = math.sqrt(1.0 - decay * decay)
        k0, k1 = jax.random.split(key)
        x0 = mean + sigma * jax.random.normal(k0, shape, dtype=sigma.dtype)
        xis = jax.random.normal(k1, (n - 1,) + shape, dtype=sigma.dtype)

        def body(x, xi):
            x = mean + (x - mean) * decay + sigma * kick * xi
            return x, x

        _, rest = jax.lax.scan(body, x0, xis)
        self.stimulus = Sampled(jnp.concatenate([x0[None], rest]), dt=dt, t0=t0)

    def __call__(self, t) -> PopArray:
        return self.stimulus(t)

    @property
    def samples(self) -> Sampled:
        """The sampled path (the `Sampled` stimulus this one forwards to)."""
        return self.stimulus

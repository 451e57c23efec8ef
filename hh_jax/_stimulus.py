"""Injected-current stimuli: pure functions of time, summable with ``+``, broadcast over neurons.

Every stimulus is an `eqx.Module` whose call ``stimulus(t)`` returns the injected current density
in µA/cm² at time `t` (ms), with a shape that broadcasts to the population. Amplitudes are array
fields, so `jax.grad` flows into them. Discontinuities are exposed by :meth:`jump_times` so that
adaptive solvers can stop on them.

Noise stimuli (`WhiteNoise`, `OUNoise`) and `Sampled` arrays live on a time grid with step ``dt``
(ms) and are held constant within each bin (zero-order hold). `simulate` checks that their grid
agrees with the simulation's ``dt``.
"""

import abc
import math
from typing import Literal, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, PopArray, PopArrayLike, PRNGKeyArray


def _float(name: str, value, *, cls: str) -> Array:
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{cls}.{name} must be a number or an array, got {value!r}.")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{cls}.{name} must be numeric: {e}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{cls}.{name} must be finite, got {value!r}.")
    if isinstance(value, jax.Array) and jnp.issubdtype(value.dtype, jnp.floating):
        return value
    return jnp.asarray(arr, dtype=jnp.result_type(float))


def _scalar(name: str, value, *, cls: str, positive=False, nonneg=False) -> float:
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise TypeError(f"{cls}.{name} must be a number, got {value!r}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{cls}.{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v):
        raise ValueError(f"{cls}.{name} must be finite, got {v}.")
    if positive and v <= 0:
        raise ValueError(f"{cls}.{name} must be > 0, got {v}.")
    if nonneg and v < 0:
        raise ValueError(f"{cls}.{name} must be >= 0, got {v}.")
    return v


class AbstractStimulus(eqx.Module):
    """An injected current density I(t), µA/cm², as a pure function of time t (ms).

    Subclasses implement ``__call__(t)`` and, where the current jumps, :meth:`jump_times`.
    Stimuli add with ``+`` (and subtract, negate, and scale by a number).
    """

    @abc.abstractmethod
    def __call__(self, t) -> PopArray:
        """The current density at time `t` (ms, scalar), µA/cm²."""

    def jump_times(self) -> np.ndarray:
        """Times (ms) where the current is discontinuous, as a sorted 1-D NumPy array."""
        return np.zeros((0,))

    def grid_dt(self) -> tuple[float, ...]:
        """Sampling steps (ms) of any sampled or noise parts; empty for continuous stimuli."""
        return ()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        """Time spans (ms) covered by sampled parts, as (start, end) pairs."""
        return ()

    def __add__(self, other) -> "AbstractStimulus":
        return Sum((self, as_stimulus(other)))

    def __radd__(self, other) -> "AbstractStimulus":
        return Sum((as_stimulus(other), self))

    def __sub__(self, other) -> "AbstractStimulus":
        return Sum((self, Scaled(as_stimulus(other), -1.0)))

    def __rsub__(self, other) -> "AbstractStimulus":
        return Sum((as_stimulus(other), Scaled(self, -1.0)))

    def __neg__(self) -> "AbstractStimulus":
        return Scaled(self, -1.0)

    def __mul__(self, factor) -> "AbstractStimulus":
        if isinstance(factor, AbstractStimulus):
            raise TypeError("stimuli can be scaled by numbers, not multiplied together.")
        return Scaled(self, factor)

    __rmul__ = __mul__


def as_stimulus(x) -> AbstractStimulus:
    """A stimulus from a stimulus or a constant current (µA/cm², scalar or population array)."""
    if isinstance(x, AbstractStimulus):
        return x
    return Constant(x)


class Constant(AbstractStimulus):
    """A constant current.

    **Arguments:** `amplitude`: µA/cm², scalar or population-shaped array.

    **Example:** ``Constant(10.0)``; ``Constant(jnp.array([5.0, 10.0]))`` for two neurons.
    """

    amplitude: PopArray

    def __init__(self, amplitude: PopArrayLike):
        self.amplitude = _float("amplitude", amplitude, cls="Constant")

    def __call__(self, t) -> PopArray:
        return self.amplitude


class Step(AbstractStimulus):
    """A current switched on at `onset` and (optionally) off at `offset`.

    **Arguments:**

    - `amplitude`: µA/cm², scalar or population-shaped array.
    - `onset`: switch-on time, ms. Default 0.0.
    - `offset`: switch-off time, ms, > `onset`. Default: never (``inf``).

    **Example:** ``Step(10.0, onset=50.0, offset=150.0)``.
    """

    amplitude: PopArray
    onset: float = eqx.field(static=True)
    offset: float = eqx.field(static=True)

    def __init__(self, amplitude: PopArrayLike, *, onset: float = 0.0, offset: float = math.inf):
        self.amplitude = _float("amplitude", amplitude, cls="Step")
        self.onset = _scalar("onset", onset, cls="Step")
        if offset != math.inf:
            offset = _scalar("offset", offset, cls="Step")
            if offset <= self.onset:
                raise ValueError(f"Step.offset ({offset}) must be > onset ({self.onset}).")
        self.offset = float(offset)

    def __call__(self, t) -> PopArray:
        on = (t >= self.onset) & (t < self.offset)
        return jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude))

    def jump_times(self) -> np.ndarray:
        return np.array([self.onset] + ([self.offset] if math.isfinite(self.offset) else []))


class Sections(AbstractStimulus):
    """Piecewise-constant current, like ``brainpy.inputs.section_input``.

    Value ``values[i]`` holds for ``durations[i]`` ms, the sections following each other from
    ``t0``; after the last section the current is 0.

    **Arguments:**

    - `values`: µA/cm², shape ``[K]`` or ``[K, *pop]``.
    - `durations`: ms, ``K`` positive numbers.
    - `t0`: start time, ms. Default 0.0.

    **Example:** ``Sections([0.0, 10.0, 0.0], [20.0, 100.0, 80.0])``.
    """

    values: Array
    edges: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, values, durations: Sequence[float], *, t0: float = 0.0):
        values = _float("values", values, cls="Sections")
        durations = [_scalar("durations", d, cls="Sections", positive=True) for d in durations]
        if values.ndim == 0 or values.shape[0] != len(durations):
            raise ValueError(
                f"Sections.values must have one entry per duration ({len(durations)}), "
                f"got shape {values.shape}."
            )
        t0 = _scalar("t0", t0, cls="Sections")
        self.values = values
        self.edges = tuple(float(e) for e in t0 + np.concatenate([[0.0], np.cumsum(durations)]))

    def __call__(self, t) -> PopArray:
        edges = jnp.asarray(self.edges, dtype=self.values.dtype)
        idx = jnp.searchsorted(edges, t, side="right") - 1
        inside = (idx >= 0) & (idx < self.values.shape[0])
        val = self.values[jnp.clip(idx, 0, self.values.shape[0] - 1)]
        return jnp.where(inside, val, jnp.zeros_like(val))

    def jump_times(self) -> np.ndarray:
        return np.asarray(self.edges)


class Ramp(AbstractStimulus):
    """A linear ramp from `start` to `stop` between `t_start` and `t_end`; 0 outside.

    Like ``brainpy.inputs.ramp_input``.

    **Arguments:**

    - `start`, `stop`: current at `t_start` and just before `t_end`, µA/cm² (arrays allowed).
    - `t_start`, `t_end`: ms, ``t_end > t_start``.

    **Example:** ``Ramp(0.0, 20.0, t_start=0.0, t_end=1000.0)``.
    """

    start: PopArray
    stop: PopArray
    t_start: float = eqx.field(static=True)
    t_end: float = eqx.field(static=True)

    def __init__(self, start: PopArrayLike, stop: PopArrayLike, *, t_start: float, t_end: float):
        self.start = _float("start", start, cls="Ramp")
        self.stop = _float("stop", stop, cls="Ramp")
        self.t_start = _scalar("t_start", t_start, cls="Ramp")
        self.t_end = _scalar("t_end", t_end, cls="Ramp")
        if self.t_end <= self.t_start:
            raise ValueError(f"Ramp.t_end ({self.t_end}) must be > t_start ({self.t_start}).")

    def __call__(self, t) -> PopArray:
        frac = (t - self.t_start) / (self.t_end - self.t_start)
        val = self.start + (self.stop - self.start) * frac
        on = (t >= self.t_start) & (t < self.t_end)
        return jnp.where(on, val, jnp.zeros_like(val))

    def jump_times(self) -> np.ndarray:
        return np.array([self.t_start, self.t_end])


class PulseTrain(AbstractStimulus):
    """Rectangular current pulses, like ``brainpy.inputs.spike_input``.

    Pulse ``i`` has amplitude ``amplitudes[i]`` on ``[times[i], times[i] + widths[i])``;
    overlapping pulses add.

    **Arguments:**

    - `times`: pulse onsets, ms, shape ``[P]``.
    - `widths`: pulse widths, ms, > 0: a number or ``[P]``.
    - `amplitudes`: µA/cm²: a number, ``[P]`` or ``[P, *pop]`` (per-neuron amplitudes; 0 = no
      pulse for that neuron).

    **Example:** ``PulseTrain([500.0, 550.0], widths=5.0, amplitudes=5.0)``.
    """

    times: Array
    widths: Array
    amplitudes: Array

    def __init__(self, times, *, widths, amplitudes):
        times = _float("times", times, cls="PulseTrain")
        if times.ndim != 1:
            raise ValueError(f"PulseTrain.times must be 1-D, got shape {times.shape}.")
        P = times.shape[0]
        widths = _float("widths", widths, cls="PulseTrain")
        if not isinstance(widths, jax.core.Tracer) and bool(jnp.any(widths <= 0)):
            raise ValueError("PulseTrain.widths must be > 0.")
        if widths.ndim > 1 or (widths.ndim == 1 and widths.shape[0] != P):
            raise ValueError(f"PulseTrain.widths must be a number or have shape ({P},), got {widths.shape}.")
        amplitudes = _float("amplitudes", amplitudes, cls="PulseTrain")
        if amplitudes.ndim == 0:
            amplitudes = jnp.broadcast_to(amplitudes, (P,))
        if amplitudes.shape[0] != P:
            raise ValueError(
                f"PulseTrain.amplitudes must be a number or have leading size {P}, got {amplitudes.shape}."
            )
        self.times = times
        self.widths = jnp.broadcast_to(widths, (P,))
        self.amplitudes = amplitudes

    def __call__(self, t) -> PopArray:
        on = (t >= self.times) & (t < self.times + self.widths)  # [P]
        on = on.reshape(on.shape + (1,) * (self.amplitudes.ndim - 1))
        return jnp.sum(jnp.where(on, self.amplitudes, 0.0), axis=0)

    def jump_times(self) -> np.ndarray:
        t = np.asarray(self.times)
        return np.unique(np.concatenate([t, t + np.asarray(self.widths)]))


class Sine(AbstractStimulus):
    """A sinusoidal current ``offset + amplitude·sin(2π·frequency·t/1000 + phase)``.

    **Arguments:**

    - `amplitude`: µA/cm² (array allowed).
    - `frequency`: Hz (note: t is in ms), > 0.
    - `phase`: radians. Default 0.0.
    - `offset`: µA/cm². Default 0.0.

    **Example:** ``Sine(5.0, frequency=10.0, offset=5.0)``.
    """

    amplitude: PopArray
    frequency: PopArray
    phase: PopArray
    offset: PopArray

    def __init__(self, amplitude, *, frequency, phase=0.0, offset=0.0):
        self.amplitude = _float("amplitude", amplitude, cls="Sine")
        self.frequency = _float("frequency", frequency, cls="Sine")
        if not isinstance(self.frequency, jax.core.Tracer) and bool(jnp.any(self.frequency <= 0)):
            raise ValueError("Sine.frequency (Hz) must be > 0.")
        self.phase = _float("phase", phase, cls="Sine")
        self.offset = _float("offset", offset, cls="Sine")

    def __call__(self, t) -> PopArray:
        return self.offset + self.amplitude * jnp.sin(2 * jnp.pi * self.frequency * t / 1000.0 + self.phase)


class Square(AbstractStimulus):
    """A square wave: `amplitude` for a fraction `duty` of each period, else 0 (plus `offset`).

    **Arguments:**

    - `amplitude`: µA/cm² (array allowed).
    - `frequency`: Hz, > 0 (static: it fixes the jump times).
    - `duty`: on fraction in (0, 1). Default 0.5.
    - `offset`: µA/cm². Default 0.0.
    - `t_start`: the first rising edge, ms. Default 0.0.

    **Example:** ``Square(10.0, frequency=20.0, duty=0.25)``.
    """

    amplitude: PopArray
    offset: PopArray
    frequency: float = eqx.field(static=True)
    duty: float = eqx.field(static=True)
    t_start: float = eqx.field(static=True)

    def __init__(self, amplitude, *, frequency: float, duty: float = 0.5, offset=0.0, t_start: float = 0.0):
        self.amplitude = _float("amplitude", amplitude, cls="Square")
        self.offset = _float("offset", offset, cls="Square")
        self.frequency = _scalar("frequency", frequency, cls="Square", positive=True)
        self.duty = _scalar("duty", duty, cls="Square")
        if not 0.0 < self.duty < 1.0:
            raise ValueError(f"Square.duty must be in (0, 1), got {self.duty}.")
        self.t_start = _scalar("t_start", t_start, cls="Square")

    def __call__(self, t) -> PopArray:
        period = 1000.0 / self.frequency
        phase = jnp.mod(t - self.t_start, period) / period
        on = (t >= self.t_start) & (phase < self.duty)
        return self.offset + jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude))

    def jump_times(self, t_max: float = 1e4) -> np.ndarray:
        period = 1000.0 / self.frequency
        k = np.arange(0, int(np.ceil((t_max - self.t_start) / period)) + 1)
        starts = self.t_start + k * period
        return np.sort(np.concatenate([starts, starts + self.duty * period]))


class Sampled(AbstractStimulus):
    """A current given as samples on a regular time grid (time × neurons).

    Sample ``values[k]`` holds on ``[t0 + k·dt, t0 + (k+1)·dt)`` (zero-order hold) or, with
    ``interpolation="linear"``, the current is linearly interpolated between samples. Outside
    the grid the current is 0.

    **Arguments:**

    - `values`: µA/cm², shape ``[T]`` or ``[T, *pop]``.
    - `dt`: sample spacing, ms, > 0.
    - `t0`: time of the first sample, ms. Default 0.0.
    - `interpolation`: ``"hold"`` (default) or ``"linear"``.

    **Example:** ``Sampled(jax.random.uniform(key, (10000, 10), minval=1, maxval=10), dt=0.01)``.
    """

    values: Array
    dt: float = eqx.field(static=True)
    t0: float = eqx.field(static=True)
    interpolation: str = eqx.field(static=True)

    def __init__(self, values, *, dt: float, t0: float = 0.0, interpolation: Literal["hold", "linear"] = "hold"):
        values = _float("values", values, cls="Sampled")
        if values.ndim == 0 or values.shape[0] < 1:
            raise ValueError(f"Sampled.values must have a leading time axis, got shape {values.shape}.")
        self.values = values
        self.dt = _scalar("dt", dt, cls="Sampled", positive=True)
        self.t0 = _scalar("t0", t0, cls="Sampled")
        if interpolation not in ("hold", "linear"):
            raise ValueError(f"Sampled.interpolation must be 'hold' or 'linear', got {interpolation!r}.")
        self.interpolation = interpolation

    def __call__(self, t) -> PopArray:
        T = self.values.shape[0]
        x = (t - self.t0) / self.dt
        if self.interpolation == "hold":
            # A point within 1e-3 of a bin's left edge (rounding of t = k·dt) belongs to that bin.
            k = jnp.floor(x + 1e-3).astype(jnp.int32)
            inside = (k >= 0) & (k < T)
            val = self.values[jnp.clip(k, 0, T - 1)]
        else:
            k = jnp.clip(jnp.floor(x).astype(jnp.int32), 0, max(T - 2, 0))
            w = jnp.clip(x - k.astype(x.dtype), 0.0, 1.0).astype(self.values.dtype)
            v0 = self.values[k]
            v1 = self.values[jnp.minimum(k + 1, T - 1)]
            val = v0 + (v1 - v0) * w
            inside = (x >= -1e-3) & (x <= T - 1 + 1e-3)
        return jnp.where(inside, val, jnp.zeros_like(val))

    def jump_times(self) -> np.ndarray:
        if self.interpolation == "linear":
            return np.array([self.t0, self.t0 + (self.values.shape[0] - 1) * self.dt])
        return self.t0 + self.dt * np.arange(self.values.shape[0] + 1)

    def grid_dt(self) -> tuple[float, ...]:
        return (self.dt,) if self.interpolation == "hold" else ()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        n = self.values.shape[0] if self.interpolation == "hold" else self.values.shape[0] - 1
        return ((self.t0, self.t0 + n * self.dt),)


def _pop_shape_arg(shape, cls):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"{cls}.shape must be an int or a tuple of ints, got {shape!r}.") from None
    if any(s < 1 for s in shape):
        raise ValueError(f"{cls}.shape must have positive sizes, got {shape}.")
    return shape


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
        self.sigma = _float("sigma", sigma, cls="WhiteNoise")
        if not isinstance(self.sigma, jax.core.Tracer) and bool(jnp.any(self.sigma < 0)):
            raise ValueError("WhiteNoise.sigma must be >= 0.")
        self.mean = _float("mean", mean, cls="WhiteNoise")
        self.dt = _scalar("dt", dt, cls="WhiteNoise", positive=True)
        self.shape = _pop_shape_arg(shape, "WhiteNoise")
        self.scale_with_dt = bool(scale_with_dt)
        self.t0 = _scalar("t0", t0, cls="WhiteNoise")

    def __call__(self, t) -> PopArray:
        k = jnp.floor((t - self.t0) / self.dt + 1e-3).astype(jnp.int32)
        xi = jax.random.normal(jax.random.fold_in(self.key, k), self.shape, dtype=self.sigma.dtype)
        scale = self.sigma / math.sqrt(self.dt) if self.scale_with_dt else self.sigma
        return self.mean + scale * xi

    def grid_dt(self) -> tuple[float, ...]:
        return (self.dt,)


class OUNoise(AbstractStimulus):
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

    samples: Sampled

    def __init__(self, key, *, mean, sigma, tau: float, dt: float, duration: float, shape=(), t0: float = 0.0):
        if not isinstance(key, jax.Array):
            raise TypeError(f"OUNoise.key must be a jax.random key, got {type(key).__name__}.")
        mean = _float("mean", mean, cls="OUNoise")
        sigma = _float("sigma", sigma, cls="OUNoise")
        if not isinstance(sigma, jax.core.Tracer) and bool(jnp.any(sigma < 0)):
            raise ValueError("OUNoise.sigma must be >= 0.")
        tau = _scalar("tau", tau, cls="OUNoise", positive=True)
        dt = _scalar("dt", dt, cls="OUNoise", positive=True)
        duration = _scalar("duration", duration, cls="OUNoise", positive=True)
        shape = _pop_shape_arg(shape, "OUNoise")
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
        self.samples = Sampled(jnp.concatenate([x0[None], rest]), dt=dt, t0=t0)

    def __call__(self, t) -> PopArray:
        return self.samples(t)

    def jump_times(self) -> np.ndarray:
        return self.samples.jump_times()

    def grid_dt(self) -> tuple[float, ...]:
        return self.samples.grid_dt()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return self.samples.grid_span()


class Sum(AbstractStimulus):
    """The sum of several stimuli (what ``a + b`` builds)."""

    terms: tuple[AbstractStimulus, ...]

    def __init__(self, terms: Sequence[AbstractStimulus]):
        flat = []
        for s in terms:
            s = as_stimulus(s)
            flat.extend(s.terms if isinstance(s, Sum) else (s,))
        self.terms = tuple(flat)

    def __call__(self, t) -> PopArray:
        out = self.terms[0](t)
        for s in self.terms[1:]:
            out = out + s(t)
        return out

    def jump_times(self) -> np.ndarray:
        return np.unique(np.concatenate([np.asarray(s.jump_times(), float) for s in self.terms]))

    def grid_dt(self) -> tuple[float, ...]:
        return tuple(d for s in self.terms for d in s.grid_dt())

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return tuple(sp for s in self.terms for sp in s.grid_span())


class Scaled(AbstractStimulus):
    """A stimulus times a (differentiable) factor (what ``2.0 * s`` builds)."""

    stimulus: AbstractStimulus
    factor: Array

    def __init__(self, stimulus: AbstractStimulus, factor):
        self.stimulus = as_stimulus(stimulus)
        self.factor = _float("factor", factor, cls="Scaled")

    def __call__(self, t) -> PopArray:
        return self.factor * self.stimulus(t)

    def jump_times(self) -> np.ndarray:
        return self.stimulus.jump_times()

    def grid_dt(self) -> tuple[float, ...]:
        return self.stimulus.grid_dt()

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return self.stimulus.grid_span()


class Stack(AbstractStimulus):
    """One stimulus per neuron, stacked along a new last (population) axis.

    ``Stack([s0, s1])(t)`` has shape ``(*s0(t).shape, 2)``: neuron ``i`` receives ``s_i``. This
    is how seed 002 drives two neurons with different pulse trains.

    **Example:** ``Stack([PulseTrain([500.0], widths=5.0, amplitudes=5.0), Constant(0.0)])``.
    """

    stimuli: tuple[AbstractStimulus, ...]

    def __init__(self, stimuli: Sequence[AbstractStimulus]):
        if len(stimuli) == 0:
            raise ValueError("Stack needs at least one stimulus.")
        self.stimuli = tuple(as_stimulus(s) for s in stimuli)

    def __call__(self, t) -> PopArray:
        vals = [s(t) for s in self.stimuli]
        shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in vals))
        return jnp.stack([jnp.broadcast_to(v, shape) for v in vals], axis=-1)

    def jump_times(self) -> np.ndarray:
        return np.unique(np.concatenate([np.asarray(s.jump_times(), float) for s in self.stimuli]))

    def grid_dt(self) -> tuple[float, ...]:
        return tuple(d for s in self.stimuli for d in s.grid_dt())

    def grid_span(self) -> tuple[tuple[float, float], ...]:
        return tuple(sp for s in self.stimuli for sp in s.grid_span())

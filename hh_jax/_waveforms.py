"""Deterministic current waveforms: steps, sections, ramps, pulse trains, sines, square waves.

All amplitudes are in µA/cm² (array fields, so `jax.grad` flows into them), times in ms,
frequencies in Hz. Each waveform reports its discontinuities through `jump_times(t0, t1)`.
"""

import math
from typing import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._custom_types import Array, PopArray, PopArrayLike
from ._stimulus import AbstractStimulus, in_window
from ._validate import as_float_array, as_number


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
        self.amplitude = as_float_array("Step.amplitude", amplitude, finite=True)
        self.onset = as_number("Step.onset", onset)
        if offset != math.inf:
            offset = as_number("Step.offset", offset)
            if offset <= self.onset:
                raise ValueError(f"Step.offset ({offset}) must be > onset ({self.onset}).")
        self.offset = float(offset)

    def __call__(self, t) -> PopArray:
        on = (t >= self.onset) & (t < self.offset)
        return jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude))

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window([self.onset] + ([self.offset] if math.isfinite(self.offset) else []), t0, t1)


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
        values = as_float_array("Sections.values", values, finite=True)
        if isinstance(durations, (str, bytes)) or np.ndim(durations) != 1:
            raise TypeError(f"Sections.durations must be a 1-D sequence of ms, got {durations!r}.")
        durations = [as_number("Sections.durations", d, positive=True) for d in durations]
        if values.ndim == 0 or values.shape[0] != len(durations):
            raise ValueError(
                f"Sections.values must have one entry per duration ({len(durations)}), "
                f"got shape {values.shape}."
            )
        t0 = as_number("Sections.t0", t0)
        self.values = values
        self.edges = tuple(float(e) for e in t0 + np.concatenate([[0.0], np.cumsum(durations)]))

    def __call__(self, t) -> PopArray:
        edges = jnp.asarray(self.edges, dtype=self.values.dtype)
        idx = jnp.searchsorted(edges, t, side="right") - 1
        inside = (idx >= 0) & (idx < self.values.shape[0])
        val = self.values[jnp.clip(idx, 0, self.values.shape[0] - 1)]
        return jnp.where(inside, val, jnp.zeros_like(val))

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window(self.edges, t0, t1)


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
        self.start = as_float_array("Ramp.start", start, finite=True)
        self.stop = as_float_array("Ramp.stop", stop, finite=True)
        self.t_start = as_number("Ramp.t_start", t_start)
        self.t_end = as_number("Ramp.t_end", t_end)
        if self.t_end <= self.t_start:
            raise ValueError(f"Ramp.t_end ({self.t_end}) must be > t_start ({self.t_start}).")

    def __call__(self, t) -> PopArray:
        frac = (t - self.t_start) / (self.t_end - self.t_start)
        val = self.start + (self.stop - self.start) * frac
        on = (t >= self.t_start) & (t < self.t_end)
        return jnp.where(on, val, jnp.zeros_like(val))

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return in_window([self.t_start, self.t_end], t0, t1)


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
        times = as_float_array("PulseTrain.times", times, finite=True)
        if times.ndim != 1:
            raise ValueError(f"PulseTrain.times must be 1-D, got shape {times.shape}.")
        P = times.shape[0]
        widths = as_float_array("PulseTrain.widths", widths, finite=True)
        if not isinstance(widths, jax.core.Tracer) and bool(jnp.any(widths <= 0)):
            raise ValueError("PulseTrain.widths must be > 0.")
        if widths.ndim > 1 or (widths.ndim == 1 and widths.shape[0] != P):
            raise ValueError(f"PulseTrain.widths must be a number or have shape ({P},), got {widths.shape}.")
        amplitudes = as_float_array("PulseTrain.amplitudes", amplitudes, finite=True)
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

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        t = np.asarray(self.times)
        return in_window(np.concatenate([t, t + np.asarray(self.widths)]), t0, t1)


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
        self.amplitude = as_float_array("Sine.amplitude", amplitude, finite=True)
        self.frequency = as_float_array("Sine.frequency", frequency, finite=True)
        if not isinstance(self.frequency, jax.core.Tracer) and bool(jnp.any(self.frequency <= 0)):
            raise ValueError("Sine.frequency (Hz) must be > 0.")
        self.phase = as_float_array("Sine.phase", phase, finite=True)
        self.offset = as_float_array("Sine.offset", offset, finite=True)

    def __call__(self, t) -> PopArray:
        return self.offset + self.amplitude * jnp.sin(2 * jnp.pi * self.frequency * t / 1000.0 + self.phase)

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        return np.zeros((0,))  # continuous


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
        self.amplitude = as_float_array("Square.amplitude", amplitude, finite=True)
        self.offset = as_float_array("Square.offset", offset, finite=True)
        self.frequency = as_number("Square.frequency", frequency, positive=True)
        self.duty = as_number("Square.duty", duty)
        if not 0.0 < self.duty < 1.0:
            raise ValueError(f"Square.duty must be in (0, 1), got {self.duty}.")
        self.t_start = as_number("Square.t_start", t_start)

    def __call__(self, t) -> PopArray:
        period = 1000.0 / self.frequency
        phase = jnp.mod(t - self.t_start, period) / period
        on = (t >= self.t_start) & (phase < self.duty)
        return self.offset + jnp.where(on, self.amplitude, jnp.zeros_like(self.amplitude))

    def jump_times(self, t0: float, t1: float) -> np.ndarray:
        """Every rising and falling edge in ``[t0, t1]`` (ms), however late (the edges used to
        stop at 10 s); `ValueError` for an infinite `t1` (infinitely many edges)."""
        if not math.isfinite(t1):
            raise ValueError("Square has infinitely many jumps: jump_times needs a finite t1 (ms).")
        period = 1000.0 / self.frequency
        first = max(0, math.floor((max(t0, self.t_start) - self.t_start) / period) - 1)
        last = max(first, math.ceil((t1 - self.t_start) / period) + 1)
        starts = self.t_start + np.arange(first, last + 1) * period
        return in_window(np.concatenate([starts, starts + self.duty * period]), t0, t1)

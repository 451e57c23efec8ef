"""Ready-made objectives: `HHParams` → scalar loss for recordings under known protocols.

Several protocols (e.g. a family of current steps) are simulated together as a population: the
stimulus' population axis indexes the protocol, so one scan serves all of them.
"""

import abc

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

import jax

from .._backends import AbstractBackend, AbstractFusedLoop, ScanLoop, fused_adjoint_by_default, uses_fused_adjoint
from .._params import HHParams
from .._prepare import default_y0
from .._simulate import simulate
from .._steppers import AbstractStepper, ExpEuler
from .._stimulus import AbstractStimulus
from .._validate import as_float_array, as_number
from .._vector_field import HHState
from ._losses import spike_time_loss, summary_loss, trace_mse


def _data(name, x, *, allow_inf):
    """`x` as a float array; a named error for non-numbers, NaN (and ±inf unless `allow_inf`)."""
    x = as_float_array(name, x)
    if not isinstance(x, jax.core.Tracer):
        bad = jnp.isnan(x) if allow_inf else ~jnp.isfinite(x)
        if bool(jnp.any(bad)):
            what = "NaN" if allow_inf else "NaN/Inf"
            raise ValueError(f"{name} contains {what} ({int(jnp.sum(bad))} value(s)).")
    return x


def _check_options(name, dt, stepper, backend):
    as_number(f"{name}.dt", dt, unit="ms", positive=True)
    if not isinstance(stepper, AbstractStepper):
        raise TypeError(f"{name}.stepper must be an AbstractStepper (e.g. ExpEuler()), got {stepper!r}.")
    if backend is not None and not isinstance(backend, (ScanLoop, AbstractFusedLoop)):
        raise TypeError(f"{name}.backend must be None (automatic) or a fixed-step loop (e.g. "
                        f"hh_jax.ScanLoop(checkpoint=True)), got {backend!r}.")


def _steps(duration, dt, name):
    as_number(f"{name}.duration", duration, unit="ms", positive=True)
    n = round(duration / dt)
    if n < 1 or abs(n * dt - duration) > 1e-6 * duration:
        raise ValueError(f"{name}.duration ({duration} ms) must be a whole number of steps dt ({dt} ms).")
    return n


class AbstractObjective(eqx.Module):
    """A fit objective: a Module mapping `HHParams` to a scalar loss, with the residuals whose sum
    of squares is that loss (or its least-squares part), for Gauss–Newton refinement (`polish`).

    Subclass it for an objective of your own and implement both methods; `fit` accepts any loss
    callable, `polish` only an `AbstractObjective`.

    **Example:**

    ```python
    class Rest(AbstractObjective):
        V_rest: float

        def residuals(self, params):
            return jnp.atleast_1d(hh_jax.equilibrium(params).V - self.V_rest)

        def __call__(self, params):
            return jnp.sum(self.residuals(params) ** 2)
    ```
    """

    @abc.abstractmethod
    def __call__(self, params: HHParams) -> Float[Array, ""]:
        """The loss (a scalar) of `params`."""

    @abc.abstractmethod
    def residuals(self, params: HHParams) -> Float[Array, " N"]:
        """Residuals ``r`` ``[N]`` with ``Σ r²`` equal to the loss (or its least-squares part)."""

    def reverse_mode_fused(self) -> bool:
        """Whether this loss's reverse mode runs the fused kernel's adjoint (`fit.default_mode`
        then picks `ReverseMode()`). Default: whether `simulate`'s automatic choice would here."""
        return fused_adjoint_by_default()


class TraceObjective(AbstractObjective):
    """Voltage-trace loss: ``mse_weight·trace_mse + summary_weight·summary_loss`` over all protocols.

    **Arguments:**

    - `stimulus`: the protocols' currents, µA/cm²; its population axis (if any) indexes protocols.
    - `V_data`: recorded voltage on the simulation grid, mV, ``[T, *pop]`` with
      ``T − 1`` steps of `dt` (sample 0 at t = 0).
    - `dt`: simulation step, ms.
    - `duration`: the fitted window ``[0, duration]``, ms (default: the whole recording). Only
      this window is simulated: :meth:`window` gives a copy with another one (a curriculum).
    - `y0`: initial state; default V = −65 mV with gates at steady state.
    - `stepper`: default `ExpEuler()`.
    - `weights`: per-protocol weights ``[*pop]``; default equal.
    - `mse_weight` (1/mV²), `summary_weight`: default 1.0 and 0.0.
    - `summary_window`: window of the summary statistics, ms. Default 10.0.
    - `backend`: the loop `simulate` runs (an `hh_jax.ScanLoop` or `hh_jax.FusedCPU`), e.g.
      ``ScanLoop(checkpoint=True)`` or ``FusedCPU(ScanLoop(checkpoint=True))`` for √T gradient
      memory. Default None (chosen automatically).
    - `horizon`: teacher forcing, ms: if given, the model's V is reset to the recorded V every
      `horizon` ms (the gates run freely), so each prediction spans at most `horizon` ms. Short
      horizons make the loss landscape far smoother (spike-time mismatches cannot accumulate);
      fit with a short horizon first, then longer ones, then ``None`` (free run). Default None.

    **Example:**

    ```python
    obj = TraceObjective(Step(jnp.array([5.0, 10.0, 20.0])), V_data, dt=0.025)
    loss = obj(HHParams.hh1952())
    ```
    """

    stimulus: AbstractStimulus
    V_data: Float[Array, "T *pop"]
    weights: Array | None
    y0: HHState | None
    stepper: AbstractStepper
    dt: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    mse_weight: float = eqx.field(static=True)
    summary_weight: float = eqx.field(static=True)
    summary_window: float = eqx.field(static=True)
    backend: AbstractBackend | None
    horizon: float | None = eqx.field(static=True)

    def __init__(self, stimulus, V_data, *, dt: float, duration: float | None = None, y0=None,
                 stepper: AbstractStepper = ExpEuler(), weights=None, mse_weight: float = 1.0,
                 summary_weight: float = 0.0, summary_window: float = 10.0,
                 backend: AbstractBackend | None = None, horizon: float | None = None):
        V_data = _data("TraceObjective.V_data", V_data, allow_inf=False)
        _check_options("TraceObjective", dt, stepper, backend)
        if V_data.ndim < 1 or V_data.shape[0] < 2:
            raise ValueError(f"TraceObjective.V_data must be [time, *pop] with >= 2 samples, got {V_data.shape}.")
        full = (V_data.shape[0] - 1) * float(dt)
        duration = full if duration is None else float(duration)
        if duration > full * (1 + 1e-9):
            raise ValueError(f"TraceObjective.duration ({duration} ms) exceeds the recording ({full} ms).")
        _steps(duration, dt, "TraceObjective")
        self.stimulus, self.V_data, self.y0, self.stepper = stimulus, V_data, y0, stepper
        self.weights = None if weights is None else jnp.asarray(weights)
        self.dt, self.duration = float(dt), duration
        self.mse_weight, self.summary_weight = float(mse_weight), float(summary_weight)
        self.summary_window, self.backend = float(summary_window), backend
        if horizon is not None and not (isinstance(horizon, (int, float)) and horizon >= dt):
            raise ValueError(f"TraceObjective.horizon must be None or a number >= dt (ms), got {horizon!r}.")
        self.horizon = None if horizon is None else float(horizon)

    def reverse_mode_fused(self) -> bool:
        """A free run through `simulate` with the fused kernel's adjoint (teacher forcing runs
        its own `lax.scan` loop)."""
        return self.horizon is None and uses_fused_adjoint(self.stepper, self.backend)

    def window(self, duration: float | None = None, *, horizon: float | None = None) -> "TraceObjective":
        """A copy fitting ``[0, duration]`` ms (default: unchanged) with teacher-forcing `horizon`."""
        return TraceObjective(
            self.stimulus, self.V_data, dt=self.dt, duration=self.duration if duration is None else duration,
            y0=self.y0, stepper=self.stepper, weights=self.weights, mse_weight=self.mse_weight,
            summary_weight=self.summary_weight, summary_window=self.summary_window,
            backend=self.backend, horizon=horizon,
        )

    def _forced(self, params: HHParams, n: int):
        H = max(1, round(self.horizon / self.dt))
        data = self.V_data[: n + 1].astype(params.dtype)
        shape = data.shape[1:]
        y = default_y0(shape, params.dtype) if self.y0 is None else self.y0
        y = y.broadcast_to(shape)
        dt = jnp.asarray(self.dt, params.dtype)
        args = (params, self.stimulus)

        def step(y, inp):
            k, v_obs = inp
            V = jnp.where(k % H == 0, v_obs, y.V)
            y = HHState(V=V, m=y.m, h=y.h, n=y.n)
            y_new = self.stepper.step(k.astype(dt.dtype) * dt, y, dt, args)
            return y_new, y_new.V

        _, V = jax.lax.scan(step, y, (jnp.arange(n), data[:n]))
        return jnp.concatenate([y.V[None], V], axis=0)

    def simulate(self, params: HHParams):
        """The model's run over the window (``throw=False``: NaN shows up in the loss)."""
        return simulate(params, self.stimulus, duration=self.duration, dt=self.dt, y0=self.y0,
                        stepper=self.stepper, backend=self.backend, record=("V",), max_spikes=0,
                        throw=False)

    def residuals(self, params: HHParams) -> Float[Array, " N"]:
        """Weighted residuals ``r`` with ``Σ r² = mse_weight·trace_mse`` (for least squares)."""
        n = _steps(self.duration, self.dt, "TraceObjective")
        V = self.simulate(params).V if self.horizon is None else self._forced(params, n)
        diff = V - self.V_data[: n + 1].astype(V.dtype)
        pop = diff.shape[1:]
        w = jnp.ones(pop, diff.dtype) if self.weights is None else jnp.broadcast_to(self.weights, pop).astype(diff.dtype)
        scale = jnp.sqrt(self.mse_weight * w / (diff.shape[0] * jnp.sum(w)))
        return (diff * scale).reshape(-1)

    def __call__(self, params: HHParams) -> Float[Array, ""]:
        n = _steps(self.duration, self.dt, "TraceObjective")
        V = self.simulate(params).V if self.horizon is None else self._forced(params, n)
        data = self.V_data[: n + 1].astype(V.dtype)
        loss = self.mse_weight * trace_mse(V, data, weights=self.weights)
        if self.summary_weight:
            spw = max(2, round(self.summary_window / self.dt))
            spw = min(spw, n + 1)
            loss = loss + self.summary_weight * summary_loss(V, data, samples_per_window=spw, weights=self.weights)
        return loss


class SpikeTimeObjective(AbstractObjective):
    """Spike-time loss (ms²) against recorded spike times only, via :func:`spike_time_loss`.

    **Arguments:** `stimulus`; `t_data`: recorded spike times, ms, ``[slots, *pop]`` padded with
    ``+inf``; `dt`, `duration`: ms; `y0`, `stepper`, `weights` as `TraceObjective`;
    `max_spikes`: model spike slots, default ``slots + 5``; `backend` as `TraceObjective`.

    **Example:** ``SpikeTimeObjective(Step(jnp.array([5.0, 10.0, 20.0])), times, dt=0.025, duration=100.0)``.
    """

    stimulus: AbstractStimulus
    t_data: Array
    weights: Array | None
    y0: HHState | None
    stepper: AbstractStepper
    dt: float = eqx.field(static=True)
    duration: float = eqx.field(static=True)
    max_spikes: int = eqx.field(static=True)
    backend: AbstractBackend | None

    def __init__(self, stimulus, t_data, *, dt: float, duration: float, y0=None,
                 stepper: AbstractStepper = ExpEuler(), weights=None, max_spikes: int | None = None,
                 backend: AbstractBackend | None = None):
        t_data = _data("SpikeTimeObjective.t_data", t_data, allow_inf=True)
        _check_options("SpikeTimeObjective", dt, stepper, backend)
        if t_data.ndim < 1:
            raise ValueError(f"SpikeTimeObjective.t_data must be [slots, *pop], got shape {t_data.shape}.")
        _steps(duration, dt, "SpikeTimeObjective")
        self.stimulus, self.t_data, self.y0, self.stepper = stimulus, t_data, y0, stepper
        self.weights = None if weights is None else jnp.asarray(weights)
        self.dt, self.duration = float(dt), float(duration)
        self.max_spikes = int(t_data.shape[0] + 5 if max_spikes is None else max_spikes)
        self.backend = backend

    def reverse_mode_fused(self) -> bool:
        """Through `simulate`: with the fused kernel's adjoint where its loop is the kernel."""
        return uses_fused_adjoint(self.stepper, self.backend)

    def _model_times(self, params):
        r = simulate(params, self.stimulus, duration=self.duration, dt=self.dt, y0=self.y0,
                     stepper=self.stepper, backend=self.backend, record=(), max_spikes=self.max_spikes,
                     throw=False)
        return r.spike_times

    def residuals(self, params: HHParams) -> Float[Array, " N"]:
        """Residuals ``r`` (ms) with ``Σ r² =`` the loss, for least squares (`polish`)."""
        a = self._model_times(params)
        n = max(a.shape[0], self.t_data.shape[0])

        def pad(x):
            x = jnp.minimum(x, self.duration)
            return jnp.pad(x, [(0, n - x.shape[0])] + [(0, 0)] * (x.ndim - 1), constant_values=self.duration)

        d = pad(a) - pad(self.t_data.astype(a.dtype))
        pop = d.shape[1:]
        w = jnp.ones(pop, d.dtype) if self.weights is None else jnp.broadcast_to(self.weights, pop).astype(d.dtype)
        return (d * jnp.sqrt(w / (n * jnp.sum(w)))).reshape(-1)

    def __call__(self, params: HHParams) -> Float[Array, ""]:
        times = self._model_times(params)
        return spike_time_loss(times, self.t_data.astype(times.dtype),
                               t_end=self.duration, weights=self.weights)

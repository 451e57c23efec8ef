"""The fused CPU kernel of `ExpEuler`: the whole time loop in one XLA FFI call.

XLA's CPU backend splits one exponential-Euler step into ~16 kernels (it never fuses an
exponential into two consumers), so a `lax.scan` step streams the population through memory
~16 times and pays a kernel launch each time. ``_kernel/hh_expeuler.cc`` runs blocks of 128
neurons through *all* steps with the state in L1 cache, vectorised by the compiler, on every
core. `_kernel_build.py` compiles it once per machine with the system C++ compiler (``$CXX``,
default ``g++``) into ``$HH_JAX_CACHE_DIR`` (default ``~/.cache/hh_jax``), verifies and loads it,
and registers it as an XLA FFI target.

The `FusedCPU` backend (`_backends.py`) runs it, and `simulate` chooses that backend for `ExpEuler`
on the CPU when the stimulus can be tabulated (a constant, a population-wide waveform, or a small
per-neuron one); otherwise, or when no compiler is found, it runs the `lax.scan` loop
(`ScanLoop`), which computes the same mathematics (results agree to rounding). Derivatives
(`jax.grad`, `jax.jvp`) are those of the `lax.scan` loop, through a custom JVP.
"""

import functools
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._kernel_build import kernel_path as kernel_path
from ._kernel_build import library as _library
from . import _model
from ._params import HHParams
from ._prepare import Problem
from ._spikes import Crossings
from ._vector_field import HHState

_TARGETS = {jnp.dtype(jnp.float32): "hh_jax_expeuler_f32", jnp.dtype(jnp.float64): "hh_jax_expeuler_f64"}
_STATE = "Vmhn"
MAX_TABLE = 2**25
"""Largest tabulated stimulus (elements, steps × neurons) the fused kernel takes."""


def unavailable_reason(stimulus, shape: tuple[int, ...], n_steps: int, dtype) -> str | None:
    """Why the fused kernel cannot run `n_steps` steps of a population of `shape` in `dtype`
    under `stimulus` (None: it can)."""
    if jax.default_backend() != "cpu":
        return f"it runs on the CPU only (default backend: {jax.default_backend()})"
    if jnp.dtype(dtype) not in _TARGETS:
        return f"dtype {jnp.dtype(dtype)} (float32 and float64 only)"
    rows, cols = _table_shape(stimulus, shape, n_steps, dtype)
    if rows * cols > MAX_TABLE:
        return (f"the stimulus varies per neuron and in time; its table ({rows} steps × {cols} "
                f"neurons) exceeds {MAX_TABLE} elements")
    _, reason = _library()
    return reason


def _table_shape(stimulus, shape: tuple[int, ...], n_steps: int, dtype) -> tuple[int, int]:
    """``(rows, cols)`` of the mid-step current table: one row for a time-invariant stimulus
    (its `time_invariant` property, never the number of steps), else one per step; one column
    for a population-wide stimulus, else one per neuron."""
    N = int(np.prod(shape, dtype=np.int64))
    out = jax.eval_shape(stimulus, jax.ShapeDtypeStruct((), dtype))
    cols = 1 if out.size == 1 else N
    rows = 1 if stimulus.time_invariant else n_steps
    return rows, cols


def _table(stimulus, ts, shape, cols):
    """The current (µA/cm²) at times `ts` as ``[len(ts), cols]``, or as ``[1, cols]`` (evaluated
    at ``ts[0]``) where the stimulus is time-invariant."""
    values = stimulus(ts[0])[None] if stimulus.time_invariant else jax.vmap(stimulus)(ts)
    if cols == 1:
        return values.reshape(values.shape[0], 1)
    # the stimulus' shape broadcasts against the population's from the right
    out = values.shape[1:]
    values = values.reshape(values.shape[:1] + (1,) * (len(shape) - len(out)) + out)
    return jnp.broadcast_to(values, values.shape[:1] + tuple(shape)).reshape(values.shape[0], cols)


def fused_arrays(params: HHParams, stimulus, y0: HHState, *, problem: Problem, staggered: bool, states: str):
    """Run the kernel for `problem`. `params` and `y0` are broadcast to ``problem.shape`` and of one dtype;
    `states` names the state variables to record (a subset of ``"Vmhn"``).

    **Returns:** (final `HHState`, spike counts, the `Crossings` record (``[S, N]`` rows: the
    kernel locates no crossing, `_spikes.refine` does), ``{v: [samples, *shape]}`` for v in
    `states`).
    """
    lib, reason = _library()  # registers the FFI targets
    if lib is None:
        raise RuntimeError(f"the fused kernel is unavailable: {reason}")
    shape = problem.shape
    N = int(np.prod(shape, dtype=np.int64))
    dtype = y0.V.dtype
    dt = jnp.asarray(problem.dt, dtype)
    t0 = jnp.asarray(problem.t0, dtype)
    k = jnp.arange(problem.n_steps + 1, dtype=jnp.int32).astype(dtype)
    t_steps = t0 + k * dt
    _, cols = _table_shape(stimulus, shape, problem.n_steps, dtype)
    # [1 or n_steps, cols] and [1 or n_steps + 1, cols]: one row only for a time-invariant
    # stimulus (with n_steps = 1, a varying one has two rows of step-end currents)
    imid = _table(stimulus, t_steps[:-1] + 0.5 * dt, shape, cols)
    S = problem.max_spikes
    C = problem.spike_interpolation.bracket_size  # values per crossing; 4: with dV/dt at both ends
    if S > 0 and C == 4:
        iend = _table(stimulus, t_steps, shape, cols)
    else:
        iend = jnp.zeros((1, 1), dtype)
    needed = states
    mask = sum(1 << _STATE.index(v) for v in needed)
    n_rec = problem.n_steps // problem.record_every + 1 if needed else 0
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(N).astype(dtype)
    y0a = jnp.stack([flat(getattr(y0, v)) for v in _STATE])[None]
    par = jnp.stack([flat(row) for row in _model.kernel_param_rows(params)])[None]  # the generated layout
    out_types = (
        jax.ShapeDtypeStruct((1, 4, N), dtype),
        jax.ShapeDtypeStruct((1, N), jnp.int32),
        jax.ShapeDtypeStruct((1, n_rec, len(needed), N), dtype),
        jax.ShapeDtypeStruct((1, S, N), jnp.int32),
        jax.ShapeDtypeStruct((1, S, N, C), dtype),
    )
    yf, count, rec, steps, brackets = jax.ffi.ffi_call(
        _TARGETS[jnp.dtype(dtype)], out_types, vmap_method="broadcast_all"
    )(
        y0a, par, imid[None], iend[None], jnp.stack([t0, dt])[None],  # traced: no recompilation per t0/dt
        n_steps=np.int64(problem.n_steps),
        every=np.int64(problem.record_every), rec_mask=np.int64(mask),
        staggered=np.int64(staggered), threads=np.int64(_threads()),
    )
    final = HHState(*(yf[0, i].reshape(shape) for i in range(4)))
    traces = {v: rec[0, :, needed.index(v)].reshape((n_rec,) + shape) for v in needed}
    return final, count[0].reshape(shape), Crossings(steps[0], brackets[0]), traces


@functools.lru_cache(maxsize=None)
def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

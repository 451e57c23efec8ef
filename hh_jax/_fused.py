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
(`ScanLoop`), which computes the same mathematics (results agree to rounding).

Derivatives: `run_adjoint` is the kernel's discrete adjoint (reverse mode, `_adjoint.py`), from
the checkpoints `run_kernel` stores; forward mode is the `lax.scan` loop's, through a custom JVP.
Under `jax.vmap` both calls run a batch that shares t0 and dt as one population (`custom_vmap`).
"""

import dataclasses
import functools
import os
from typing import NamedTuple

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
_VJP_TARGETS = {jnp.dtype(jnp.float32): "hh_jax_expeuler_vjp_f32",
                jnp.dtype(jnp.float64): "hh_jax_expeuler_vjp_f64"}
TILE = 128
"""Neurons per block of the adjoint (``TILE`` in the C++): its partial sums come in ``ceil(N / TILE)`` rows."""
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


class Raw(NamedTuple):
    """The kernel's differentiable inputs, in its layout (P = 1 batch row): ``y0 [1, 4, N]``,
    ``par [1, N_PAR, N]`` (`_model.KERNEL_PARAMS`), the current tables ``imid [1, Tm, cols]``
    and ``iend [1, Te, cols]`` (µA/cm²), ``times [1, 2]`` (t0, dt in ms)."""

    y0: jax.Array
    par: jax.Array
    imid: jax.Array
    iend: jax.Array
    times: jax.Array


def raw_inputs(params: HHParams, stimulus, y0: HHState, t0, dt, *, problem: Problem) -> Raw:
    """`Raw` from the model's objects (a JAX function: `jax.vjp` of it carries the kernel's
    cotangents back to `params`, the stimulus' own parameters, `y0`, `t0` and `dt`)."""
    shape = problem.shape
    N = int(np.prod(shape, dtype=np.int64))
    dtype = y0.V.dtype
    dt = jnp.asarray(dt, dtype)
    t0 = jnp.asarray(t0, dtype)
    k = jnp.arange(problem.n_steps + 1, dtype=jnp.int32).astype(dtype)
    t_steps = t0 + k * dt
    _, cols = _table_shape(stimulus, shape, problem.n_steps, dtype)
    # [1 or n_steps, cols] and [1 or n_steps + 1, cols]: one row only for a time-invariant
    # stimulus (with n_steps = 1, a varying one has two rows of step-end currents)
    imid = _table(stimulus, t_steps[:-1] + 0.5 * dt, shape, cols)
    if problem.max_spikes > 0 and problem.spike_interpolation.bracket_size == 4:
        iend = _table(stimulus, t_steps, shape, cols)  # dV/dt at both bracket ends
    else:
        iend = jnp.zeros((1, 1), dtype)
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(N).astype(dtype)
    y0a = jnp.stack([flat(getattr(y0, v)) for v in _STATE])[None]
    par = jnp.stack([flat(row) for row in _model.kernel_param_rows(params)])[None]  # the generated layout
    return Raw(y0a, par, imid[None].astype(dtype), iend[None].astype(dtype), jnp.stack([t0, dt])[None])


def checkpoints(n_steps: int, every: int) -> int:
    """How many checkpoints a run of `n_steps` stores every `every` steps (states at steps 0,
    every, 2·every, …, below `n_steps`; at least the initial state)."""
    return max(1, -(-n_steps // every))


def run_kernel(raw: Raw, *, problem: Problem, staggered: bool, states: str, ck_every: int = 0):
    """The forward kernel on `raw`. `ck_every` > 0 also stores the adjoint's checkpoints.

    **Returns:** ``(yf [1, 4, N], count [1, N], rec [1, n_rec, len(states), N], steps [1, S, N],
    brackets [1, S, N, C], ck [1, n_ck, 4, N])``.
    """
    lib, reason = _library()  # registers the FFI targets
    if lib is None:
        raise RuntimeError(f"the fused kernel is unavailable: {reason}")
    dtype = raw.y0.dtype
    N = raw.y0.shape[-1]
    S = problem.max_spikes
    C = problem.spike_interpolation.bracket_size  # values per crossing; 4: with dV/dt at both ends
    mask = sum(1 << _STATE.index(v) for v in states)
    n_rec = problem.n_steps // problem.record_every + 1 if states else 0
    n_ck = checkpoints(problem.n_steps, ck_every) if ck_every else 0
    out_types = (
        jax.ShapeDtypeStruct((1, 4, N), dtype),
        jax.ShapeDtypeStruct((1, N), jnp.int32),
        jax.ShapeDtypeStruct((1, n_rec, len(states), N), dtype),
        jax.ShapeDtypeStruct((1, S, N), jnp.int32),
        jax.ShapeDtypeStruct((1, S, N, C), dtype),
        jax.ShapeDtypeStruct((1, n_ck, 4, N), dtype),
    )
    call = jax.ffi.ffi_call(_TARGETS[jnp.dtype(dtype)], out_types, vmap_method="broadcast_all")
    attrs = dict(n_steps=np.int64(problem.n_steps), every=np.int64(problem.record_every),
                 rec_mask=np.int64(mask), staggered=np.int64(staggered),
                 threads=np.int64(_threads()), ck_every=np.int64(ck_every))
    kernel = jax.custom_batching.custom_vmap(lambda *r: call(*r, **attrs))  # t0/dt traced: no recompilation

    @kernel.def_vmap
    def folded(B, in_batched, *r):
        # A batch (vmap) of populations sharing t0 and dt runs as one population of B·N neurons
        # (vectorised across the batch; a batch row per element would run each small
        # population on its own); the outputs are split back.
        r = Raw(*r)
        batched = Raw(*in_batched)
        if batched.times or not _foldable(r, batched, B):
            return jax.vmap(lambda *a: call(*a, **attrs), axis_size=B,
                            in_axes=tuple(0 if b else None for b in in_batched))(*r), (True,) * 6
        merged = Raw(_merge(r.y0, batched.y0, B, 2), _merge(r.par, batched.par, B, 2),
                     _merge_table(r.imid, batched.imid, B, N), _merge_table(r.iend, batched.iend, B, N),
                     r.times)
        out = run_kernel(merged, problem=dataclasses.replace(problem, shape=(B * N,)),
                         staggered=staggered, states=states, ck_every=ck_every)
        axes = (2, 1, 3, 2, 2, 3)  # each output's neuron axis
        return tuple(_split(x, a, B) for x, a in zip(out, axes)), (True,) * 6

    return kernel(*raw)


def _foldable(raw: Raw, batched: Raw, B: int) -> bool:
    """Whether a batch of `B` can run as one population: its per-neuron tables stay within
    `MAX_TABLE` (a batched table becomes per neuron)."""
    N = raw.y0.shape[-1]
    for table, b in ((raw.imid, batched.imid), (raw.iend, batched.iend)):
        rows = table.shape[-2]
        if (b or table.shape[-1] > 1) and rows * B * N > MAX_TABLE:
            return False
    return True


def _merge(x, batched: bool, B: int, axis: int):
    """``[B?, 1, ..., N, ...]`` (neuron axis `axis` of the unbatched array) → ``[1, ..., B·N, ...]``."""
    if not batched:
        x = jnp.broadcast_to(x, (B,) + x.shape)
    x = jnp.moveaxis(x, 0, axis)  # [1, ..., B, N, ...]
    return x.reshape(x.shape[:axis] + (B * x.shape[axis + 1],) + x.shape[axis + 2:])


def _merge_table(table, batched: bool, B: int, N: int):
    """A current table ``[B?, 1, T, 1 or N]`` as one population's ``[1, T, 1 or B·N]``: an
    unbatched population-wide table stays one column; otherwise per neuron."""
    if not batched and table.shape[-1] == 1:
        return table
    if not batched:
        table = jnp.broadcast_to(table, (B,) + table.shape)
    return _merge(jnp.broadcast_to(table, table.shape[:-1] + (N,)), True, B, 2)


def _split(x, axis: int, B: int):
    """``[1, ..., B·N, ...]`` → ``[B, 1, ..., N, ...]`` (neuron axis `axis`)."""
    x = x.reshape(x.shape[:axis] + (B, x.shape[axis] // B) + x.shape[axis + 1:])
    return jnp.moveaxis(x, axis, 0)


def unpack(outputs, *, problem: Problem, states: str):
    """`run_kernel`'s outputs as (final `HHState`, spike counts ``[*shape]``, `Crossings`,
    ``{v: [samples, *shape]}``)."""
    yf, count, rec, steps, brackets, _ = outputs
    shape = problem.shape
    n_rec = rec.shape[1]
    final = HHState(*(yf[0, i].reshape(shape) for i in range(4)))
    traces = {v: rec[0, :, states.index(v)].reshape((n_rec,) + shape) for v in states}
    return final, count[0].reshape(shape), Crossings(steps[0], brackets[0]), traces


def fused_arrays(params: HHParams, stimulus, y0: HHState, *, problem: Problem, staggered: bool, states: str):
    """Run the kernel for `problem`. `params` and `y0` are broadcast to ``problem.shape`` and of one dtype;
    `states` names the state variables to record (a subset of ``"Vmhn"``).

    **Returns:** (final `HHState`, spike counts, the `Crossings` record (``[S, N]`` rows: the
    kernel locates no crossing, `_spikes.refine` does), ``{v: [samples, *shape]}`` for v in
    `states`).
    """
    raw = raw_inputs(params, stimulus, y0, problem.t0, problem.dt, problem=problem)
    out = run_kernel(raw, problem=problem, staggered=staggered, states=states)
    return unpack(out, problem=problem, states=states)


def run_adjoint(raw: Raw, ck, steps, ct_yf, ct_rec, ct_br, *, problem: Problem, staggered: bool,
                states: str, ck_every: int) -> Raw:
    """The discrete adjoint of `run_kernel` (``_kernel/hh_expeuler.cc``, reverse mode): from the
    cotangents of the final state ``[1, 4, N]``, the records ``[1, n_rec, R, N]`` and the
    brackets ``[1, S, N, C]``, the cotangents of `raw` (a `Raw`), the exact derivative of the
    kernel's discrete map. `ck`, `steps`: the forward's checkpoints and crossing steps."""
    dtype = raw.y0.dtype
    N = raw.y0.shape[-1]
    g_y0, g_par, g_dt, g_imid, g_iend = _adjoint_call(
        raw.par, raw.imid, raw.iend, raw.times, ck, steps, ct_yf, ct_rec, ct_br, N=N, problem=problem,
        staggered=staggered, states=states, ck_every=ck_every)
    # per-block partial sums of a population-wide table (cols = 1): [1, U, T] -> [1, T, 1]
    g_imid = g_imid if raw.imid.shape[-1] > 1 else g_imid.sum(axis=1)[..., None]
    g_iend = g_iend if raw.iend.shape[-1] > 1 else g_iend.sum(axis=1)[..., None]
    g_times = jnp.stack([jnp.zeros((), dtype), g_dt.sum()])[None]  # t0 enters through the tables
    return Raw(g_y0, g_par, g_imid, g_iend, g_times)


def _adjoint_call(par, imid, iend, times, ck, steps, ct_yf, ct_rec, ct_br, *, N, problem, staggered,
                  states, ck_every):
    """The adjoint's FFI call: ``(g_y0 [1, 4, N], g_par [1, N_PAR, N], g_dt [1, N], g_imid,
    g_iend)``, a table's cotangent per neuron ``[1, T, N]`` or as per-block partial sums
    ``[1, U, T]`` (U = ⌈N / TILE⌉) for a population-wide table. Under `jax.vmap`, a batch
    sharing t0 and dt runs as one population (as `run_kernel`)."""
    dtype = par.dtype
    U = -(-N // TILE)
    (Tm, Nm), (Te, Ne) = imid.shape[1:], iend.shape[1:]
    mask = sum(1 << _STATE.index(v) for v in states)
    out_types = (
        jax.ShapeDtypeStruct((1, 4, N), dtype),
        jax.ShapeDtypeStruct(par.shape, dtype),
        jax.ShapeDtypeStruct((1, N), dtype),
        jax.ShapeDtypeStruct((1, Tm, N) if Nm > 1 else (1, U, Tm), dtype),
        jax.ShapeDtypeStruct((1, Te, N) if Ne > 1 else (1, U, Te), dtype),
    )
    call = jax.ffi.ffi_call(_VJP_TARGETS[jnp.dtype(dtype)], out_types, vmap_method="broadcast_all")
    attrs = dict(n_steps=np.int64(problem.n_steps), every=np.int64(problem.record_every),
                 rec_mask=np.int64(mask), staggered=np.int64(staggered),
                 threads=np.int64(_threads()), ck_every=np.int64(ck_every))
    adjoint = jax.custom_batching.custom_vmap(lambda *a: call(*a, **attrs))

    @adjoint.def_vmap
    def folded(B, in_batched, par, imid, iend, times, ck, steps, ct_yf, ct_rec, ct_br):
        b_par, b_imid, b_iend, b_times, b_ck, b_steps, b_yf, b_rec, b_br = in_batched
        # tables per neuron: a population-wide table's cotangent is summed per element below
        per_neuron = lambda t: t.shape[-2] * B * N <= MAX_TABLE
        if b_times or not (per_neuron(imid) and per_neuron(iend)):
            return jax.vmap(lambda *a: call(*a, **attrs), axis_size=B,
                            in_axes=tuple(0 if b else None for b in in_batched))(
                par, imid, iend, times, ck, steps, ct_yf, ct_rec, ct_br), (True,) * 5
        table = lambda t, b: _merge(jnp.broadcast_to(t, t.shape[:-1] + (N,)), b, B, 2)
        out = _adjoint_call(
            _merge(par, b_par, B, 2), table(imid, b_imid), table(iend, b_iend), times,
            _merge(ck, b_ck, B, 3), _merge(steps, b_steps, B, 2), _merge(ct_yf, b_yf, B, 2),
            _merge(ct_rec, b_rec, B, 3), _merge(ct_br, b_br, B, 2), N=B * N, problem=problem,
            staggered=staggered, states=states, ck_every=ck_every)
        g_y0, g_par, g_dt, g_imid, g_iend = (_split(x, a, B) for x, a in zip(out, (2, 2, 1, 2, 2)))

        def as_given(g, cols):  # [B, 1, T, N] -> the unbatched call's layout
            if cols > 1:
                return g
            partial = jnp.zeros((B, 1, U, g.shape[2]), g.dtype)
            return partial.at[:, :, 0, :].set(g.sum(axis=-1))

        return (g_y0, g_par, g_dt, as_given(g_imid, Nm), as_given(g_iend, Ne)), (True,) * 5

    return adjoint(par, imid, iend, times, ck, steps, ct_yf, ct_rec, ct_br)


@functools.lru_cache(maxsize=None)
def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

"""The GPU kernel of `ExpEuler`: the whole time loop of a block of neurons in one Pallas kernel.

On a GPU the `lax.scan` loop launches its kernels at every time step (a few µs each, whatever
the population), and streams the state through device memory at every step. Here a grid of
programs each takes a block of `block` neurons (one lane each) through *all* steps, with the
state (V, m, h, n, the spike count) in registers; device memory sees only the inputs once, the
decimated records, the final state and the crossing records. The step is the model's own
:func:`hh_jax._model.exp_euler_step` (and :func:`hh_jax._model.membrane_dvdt` for the spike
brackets), called on the kernel's values: no formula is written here.

It computes what the fused CPU kernel computes (`_fused.fused_arrays`, same contract, same
tables of the current from `_fused`): decimated records of any of V, m, h, n; spike counts
(exact beyond `max_spikes`); per crossing (up to `max_spikes` per neuron) its step and the
bracket `_spikes.refine` needs; `t0`; float32 and float64; per-neuron parameters; constant,
population-wide and per-neuron tabulated stimuli; `vmap` (the batching rule of `pallas_call`
adds a grid axis).

**Lowering: Triton** (``jax.experimental.pallas.triton``), not Mosaic GPU. Each neuron is one
lane; the kernel needs (1) a `lax.fori_loop` over the steps with the state as its carry,
(2) per-lane *dynamic* stores: the crossing record of a lane goes to row ``count[lane]`` of
its column, a masked scatter (``store(ref.at[rows, lanes], v, mask=crossed)``), and
(3) float64. Triton lowers all three directly (a pointer tensor with a mask, ``scf.for``,
libdevice's f64 ``exp``/``expm1``); its refs are pointers to device memory, so a block of
records (``[samples, block]``) needs no staging in shared memory. Mosaic GPU (the default GPU
lowering in jax 0.10.2) is built around warpgroup-wide arrays, TMA copies of whole tiles
through shared memory and tensor-core matmuls: a per-lane scatter at a data-dependent row has
no direct form there, and float64 is not its target. Nothing of this kernel uses what Mosaic
GPU adds (TMA, WGMMA, cluster barriers): it is latency-bound arithmetic per lane.

`interpret=True` runs the same kernel body with `jax.numpy` on any backend (the CPU tests).
"""

import math
import types

import jax
import jax.numpy as jnp
import numpy as np

from . import _model
from ._fused import _table, _table_shape
from ._observables import state_names
from ._spikes import Crossings
from ._vector_field import HHState

_STATE = "Vmhn"
_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64))
_PAR_NAMES = tuple(name for name, _ in _model.KERNEL_PARAMS)
MAX_TABLE = 2**27
"""Largest tabulated stimulus (elements, steps × neurons) the GPU kernel takes."""
MAX_ELEMENTS = 2**31 - 1
"""Largest array (elements) the kernel addresses: Triton's offsets are 32-bit."""
BLOCK = 128
"""Default neurons per program (one lane each; a power of 2)."""
NUM_WARPS = 4
"""Most warps per program (32 threads each): a block of 128 lanes or more has 4 warps (one
neuron per thread at 128), a smaller one block/32 (at least 1)."""


def _pallas():
    """``(pallas, pallas.triton)``, imported on first use (``import hh_jax`` never needs them)."""
    from jax.experimental import pallas as pl
    from jax.experimental.pallas import triton as plt

    return pl, plt


def pallas_unavailable_reason(stimulus, config, dtype, *, interpret: bool = False) -> str | None:
    """Why the Pallas GPU kernel cannot run this simulation (None: it can).

    **Arguments:** `stimulus`: the `AbstractStimulus`; `config`: the `_prepare.Problem` (``n_steps``,
    ``shape``, ``record``, ``record_every``, ``max_spikes``, ``spike_interpolation``); `dtype`: the
    working dtype; `interpret`: True for the interpreter (any backend).

    **Returns:** a sentence, or None.

    **Example:** ``pallas_unavailable_reason(Constant(1.0), config, jnp.float32)`` on a CPU
    says ``"it runs on a GPU only (default backend: cpu)"``.
    """
    if not interpret and jax.default_backend() != "gpu":
        return f"it runs on a GPU only (default backend: {jax.default_backend()})"
    try:
        _pallas()
    except ImportError as e:  # an older jax
        return f"jax {jax.__version__} has no Pallas Triton lowering ({e})"
    if jnp.dtype(dtype) not in _DTYPES:
        return f"dtype {jnp.dtype(dtype)} (float32 and float64 only)"
    rows, cols = _table_shape(stimulus, config.shape, config.n_steps, dtype)
    if rows * cols > MAX_TABLE:
        return (f"the stimulus varies per neuron and in time; its table ({rows} steps × {cols} "
                f"neurons) exceeds {MAX_TABLE} elements")
    N = _padded(int(np.prod(config.shape, dtype=np.int64)), BLOCK)
    S = config.max_spikes
    n_rec = config.n_steps // config.record_every + 1
    n_states = len(state_names(config.record))
    C = config.spike_interpolation.bracket_size
    biggest = max(rows * cols, S * N * C, n_rec * n_states * N)
    if biggest > MAX_ELEMENTS:
        return f"an array of {biggest} elements exceeds the kernel's 32-bit offsets ({MAX_ELEMENTS})"
    return None


def _padded(N: int, block: int) -> int:
    return -(-N // block) * block


def _block_size(N: int, block: int | None) -> int:
    if block is None:
        block = min(BLOCK, 1 << max(N - 1, 0).bit_length())
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of 2, got {block}.")
    return block


def _kernel(*refs, n_steps, every, n_samples, states, staggered, S, C, tm, nm, te, ne, block):
    """One program: `block` neurons through all `n_steps` steps (see `pallas_arrays`)."""
    _, plt = _pallas()
    y0_ref, par_ref, imid_ref, iend_ref, times_ref = refs[:5]
    refs = refs[5 if S == 0 else 7:]  # the aliased crossing inputs are read through the outputs
    yf_ref, count_ref = refs[:2]
    refs = refs[2:]
    rec_ref = refs[0] if states else None
    steps_ref, bracket_ref = refs[-2:] if S > 0 else (None, None)

    dt = times_ref[1]  # (t0 is element 0: the tables of the current carry the times)
    p = types.SimpleNamespace(**{name: par_ref[i, :] for i, name in enumerate(_PAR_NAMES)})
    lanes = jnp.arange(block, dtype=jnp.int32)

    def load_current(ref, row, n_cols):
        if n_cols > 1:
            return ref[row, :]
        return jnp.broadcast_to(ref[row, 0], (block,))

    # a time-invariant current is loaded once, outside the loop
    fixed = {id(ref): load_current(ref, 0, n) for ref, t, n in ((imid_ref, tm, nm), (iend_ref, te, ne)) if t == 1}

    def current(ref, k, t_rows, n_cols):
        return fixed[id(ref)] if t_rows == 1 else load_current(ref, k, n_cols)

    def record(r, y):
        for j, v in enumerate(states):
            rec_ref[r, j, :] = y[_STATE.index(v)]

    def step(k, carry):
        V, m, h, n, count = carry
        I = current(imid_ref, k, tm, nm)
        V1, m1, h1, n1 = _model.exp_euler_step(p, V, m, h, n, I, dt, staggered, factor=p.rate_factor)
        crossed = (V < p.V_th) & (V1 >= p.V_th)
        if S > 0:
            # a lane's crossing goes to row count[lane] of its column: a masked per-lane store
            ok = crossed & (count < S)
            rows = jnp.minimum(count, S - 1)
            plt.store(steps_ref.at[rows, lanes], jnp.broadcast_to(k, (block,)), mask=ok)
            ends = [V, V1]
            if C == 4:  # dV/dt at both ends, the current at t_k and t_k + dt
                ends += [_model.membrane_dvdt(p, V, m, h, n, current(iend_ref, k, te, ne)),
                         _model.membrane_dvdt(p, V1, m1, h1, n1, current(iend_ref, k + 1, te, ne))]
            for c, e in enumerate(ends):
                plt.store(bracket_ref.at[rows, lanes, c], e, mask=ok)
        return V1, m1, h1, n1, count + crossed.astype(jnp.int32)

    i32 = lambda x: jnp.asarray(x, jnp.int32)  # loop indices int32 in both dtypes (x64 too)

    def steps(carry, k0, n):
        return jax.lax.fori_loop(i32(k0), i32(k0) + i32(n), step, carry)

    y = tuple(y0_ref[i, :] for i in range(4))
    carry = (*y, jnp.zeros((block,), jnp.int32))
    if states:
        record(0, y)

        def sample(r, carry):
            carry = steps(carry, r * every, every)
            record(r + 1, carry[:4])
            return carry

        carry = jax.lax.fori_loop(i32(0), i32(n_samples), sample, carry)
        done = n_samples * every
    else:
        done = 0
    if n_steps > done:
        carry = steps(carry, done, n_steps - done)
    for i in range(4):
        yf_ref[i, :] = carry[i]
    count_ref[:] = carry[4]


def pallas_arrays(params, stimulus, y0: HHState, *, config, staggered: bool, states: str,
                  interpret: bool = False, block: int | None = None):
    """Run the Pallas kernel: the contract of `_fused.fused_arrays`.

    **Arguments:**

    - `params`: `HHParams`, broadcast to ``config.shape``, in the dtype of `y0`.
    - `stimulus`: the `AbstractStimulus` (tabulated at mid-steps, and at step ends for the
      Hermite brackets, by `_fused._table`).
    - `y0`: `HHState` broadcast to ``config.shape`` (float32 or float64).
    - `config`: ``n_steps``, ``dt`` and ``t0`` (ms, 0-d, may be traced), ``record_every``,
      ``max_spikes``, ``shape``, ``spike_interpolation``.
    - `staggered`: the `ExpEuler` variant.
    - `states`: the state variables to record, a subset of ``"Vmhn"`` (in this order in the
      record).
    - `interpret`: run the kernel with the Pallas interpreter (any backend; for tests).
      Default False (Triton, a GPU).
    - `block`: neurons per program, a power of 2. Default: 128, or fewer for a smaller
      population.

    **Returns:** (final `HHState`, spike counts int32 ``shape``, the `Crossings` record
    (``[S, N]`` rows), ``{v: [samples, *shape]}`` for v in `states`).

    **Example:** ``pallas_arrays(p, Constant(10.0), y0, config=c, staggered=True, states="V",
    interpret=True)``.
    """
    pl, plt = _pallas()
    shape = tuple(config.shape)
    N = int(np.prod(shape, dtype=np.int64))
    dtype = y0.V.dtype
    if jnp.dtype(dtype) not in _DTYPES:
        raise TypeError(f"y0: the Pallas kernel runs float32 or float64, got {dtype}.")
    S = int(config.max_spikes)
    C = config.spike_interpolation.bracket_size
    if N == 0:  # an empty population: nothing to launch
        n_rec = config.n_steps // config.record_every + 1 if states else 0
        empty = lambda *lead: jnp.zeros(lead + shape, dtype)
        return (HHState(*(empty() for _ in range(4))), jnp.zeros(shape, jnp.int32),
                Crossings(jnp.zeros((S, 0), jnp.int32), jnp.zeros((S, 0, C), dtype)),
                {v: empty(n_rec) for v in states})
    B = _block_size(N, block)
    Np = _padded(N, B)
    dt = jnp.asarray(config.dt, dtype)
    t0 = jnp.asarray(config.t0, dtype)
    k = jnp.arange(config.n_steps + 1, dtype=jnp.int32).astype(dtype)
    t_steps = t0 + k * dt
    _, cols = _table_shape(stimulus, shape, config.n_steps, dtype)
    pad = lambda x: x if Np == N else jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, Np - N)], mode="edge")
    imid = _table(stimulus, t_steps[:-1] + 0.5 * dt, shape, cols).astype(dtype)
    if S > 0 and C == 4:
        iend = _table(stimulus, t_steps, shape, cols).astype(dtype)
    else:
        iend = jnp.zeros((1, 1), dtype)
    if cols > 1:
        imid = pad(imid)
        if iend.shape[1] > 1:
            iend = pad(iend)
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(N).astype(dtype)
    y0a = pad(jnp.stack([flat(getattr(y0, v)) for v in _STATE]))
    par = pad(jnp.stack([flat(row) for row in _model.kernel_param_rows(params)]))
    n_samples = config.n_steps // config.record_every if states else 0
    n_rec = n_samples + 1 if states else 0

    tm, nm = imid.shape
    te, ne = iend.shape
    lane = lambda rows: pl.BlockSpec((rows, B), lambda i: (0, i))
    whole = lambda a: pl.BlockSpec(a.shape, lambda i: (0,) * a.ndim)
    in_specs = [lane(4), lane(len(_PAR_NAMES)),
                lane(tm) if nm > 1 else whole(imid), lane(te) if ne > 1 else whole(iend),
                pl.BlockSpec((2,), lambda i: (0,))]
    inputs = [y0a, par, imid, iend, jnp.stack([t0, dt])]
    out_shape = [jax.ShapeDtypeStruct((4, Np), dtype), jax.ShapeDtypeStruct((Np,), jnp.int32)]
    out_specs = [lane(4), pl.BlockSpec((B,), lambda i: (i,))]
    if states:
        out_shape.append(jax.ShapeDtypeStruct((n_rec, len(states), Np), dtype))
        out_specs.append(pl.BlockSpec((n_rec, len(states), B), lambda i: (0, 0, i)))
    aliases = {}
    if S > 0:
        # empty rows (step −1, bracket 0) come from the aliased inputs; the kernel writes crossings
        inputs += [jnp.full((S, Np), -1, jnp.int32), jnp.zeros((S, Np, C), dtype)]
        in_specs += [lane(S), pl.BlockSpec((S, B, C), lambda i: (0, i, 0))]
        out_shape += [jax.ShapeDtypeStruct((S, Np), jnp.int32), jax.ShapeDtypeStruct((S, Np, C), dtype)]
        out_specs += [lane(S), pl.BlockSpec((S, B, C), lambda i: (0, i, 0))]
        aliases = {5: len(out_shape) - 2, 6: len(out_shape) - 1}
    kernel = lambda *refs: _kernel(
        *refs, n_steps=config.n_steps, every=config.record_every, n_samples=n_samples,
        states=states, staggered=staggered, S=S, C=C, tm=tm, nm=nm, te=te, ne=ne, block=B)
    outs = pl.pallas_call(
        kernel,
        out_shape=out_shape,
        grid=(Np // B,),
        in_specs=in_specs,
        out_specs=out_specs,
        input_output_aliases=aliases,
        interpret=interpret,
        compiler_params=plt.CompilerParams(num_warps=max(1, min(NUM_WARPS, B // 32)), num_stages=1),
        name="hh_jax_expeuler",
    )(*inputs)
    yf, count = outs[0][:, :N], outs[1][:N]
    final = HHState(*(yf[i].reshape(shape) for i in range(4)))
    traces = {}
    if states:
        rec = outs[2][..., :N]
        traces = {v: rec[:, j].reshape((n_rec,) + shape) for j, v in enumerate(states)}
    if S > 0:
        crossings = Crossings(outs[-2][:, :N], outs[-1][:, :N])
    else:
        crossings = Crossings(jnp.zeros((0, N), jnp.int32), jnp.zeros((0, N, C), dtype))
    return final, count.reshape(shape), crossings, traces

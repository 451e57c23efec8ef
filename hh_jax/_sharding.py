"""Populations sharded across devices: the neuron axis over a `jax.sharding.Mesh`.

HH neurons do not interact, so a population splits into independent slices, one per device, with
no communication during the run. :func:`simulate_sharded` runs :func:`hh_jax.simulate` on each
slice under `jax.shard_map` and reassembles the result; on one device it is `simulate`.

On CPU, XLA runs the time loop of one program on one core; :func:`use_cpu_devices` splits the host
into several XLA devices (one per core) so that a sharded run uses every core.

Multi-host: start every process with ``jax.distributed.initialize(...)`` *before* any other JAX
call, then call :func:`simulate_sharded` with the same arguments in every process; ``jax.devices()``
is then the global device list and each process runs its own slices. The results are global
arrays; gather them to every host with
``jax.experimental.multihost_utils.process_allgather(result.spike_count)``. See
``docs/performance.md``.
"""

import dataclasses
import math
from typing import Sequence

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ._params import HHParams
from ._backends import DiffraxAdapter
from ._prepare import default_y0, prepare
from ._spikes import HermiteSpikes
from ._result import SimulationResult
from ._simulate import simulate
from ._stimulus import AbstractStimulus, AbstractWrapper, as_stimulus
from ._validate import as_int
from ._vector_field import HHState

_AXIS = "neurons"


def use_cpu_devices(n: int | None = None) -> int:
    """Split the host CPU into `n` XLA devices (default: one per core) so sharded runs use every core.

    Must run before JAX initialises its backend (before the first array is made); it sets the
    ``jax_num_cpu_devices`` option, the same as ``--xla_force_host_platform_device_count``.

    **Arguments:** `n`: number of CPU devices, ≥ 1. Default: ``os.cpu_count()``.

    **Returns:** the number of CPU devices now configured.

    **Example:** ``hh_jax.use_cpu_devices(2)`` at the top of a script, then
    ``hh_jax.simulate_sharded(...)``.
    """
    import os

    if n is None:
        n = os.cpu_count() or 1
    n = as_int("n", n, minimum=1)
    try:
        jax.config.update("jax_num_cpu_devices", int(n))
    except RuntimeError as e:  # the backend already exists
        current = len(jax.devices("cpu"))
        if current == n:
            return current
        raise RuntimeError(
            f"use_cpu_devices({n}) must be called before JAX creates its first array; "
            f"the CPU backend already has {current} device(s). ({e})"
        ) from None
    return int(n)


class _SliceStimulus(AbstractWrapper):
    """The part of a population stimulus that belongs to this device's slice of neurons."""

    stimulus: AbstractStimulus
    shape: tuple[int, ...] = eqx.field(static=True)
    padded: int = eqx.field(static=True)
    local: int = eqx.field(static=True)

    def __call__(self, t):
        I = self.stimulus(t)
        if jnp.ndim(I) == 0:
            return I
        I = jnp.broadcast_to(I, self.shape).reshape(-1)
        I = jnp.pad(I, (0, self.padded - I.shape[0]), mode="edge")
        start = jax.lax.axis_index(_AXIS) * self.local
        return jax.lax.dynamic_slice_in_dim(I, start, self.local)


def _mesh(devices) -> Mesh:
    if isinstance(devices, Mesh):
        if devices.axis_names != (_AXIS,):
            raise ValueError(f"devices: a Mesh must have the single axis {_AXIS!r}, got {devices.axis_names}.")
        return devices
    if devices is None:
        devices = jax.devices()
    if isinstance(devices, (str, jax.Device)) or not isinstance(devices, (list, tuple, np.ndarray)):
        raise TypeError(f"devices must be a sequence of jax.Device or a Mesh, got {devices!r}.")
    devices = list(np.ravel(np.asarray(devices, dtype=object))) if isinstance(devices, np.ndarray) else list(devices)
    if not devices:
        raise ValueError("devices must not be empty.")
    bad = [d for d in devices if not isinstance(d, jax.Device)]
    if bad:
        raise TypeError(f"devices must hold jax.Device objects (e.g. jax.devices()), got {bad[0]!r}.")
    if len(set(devices)) != len(devices):
        raise ValueError(f"devices must not repeat a device, got {devices}.")
    return Mesh(np.array(devices), (_AXIS,))


def _pad_flat(x, shape, padded, sharding):
    x = jnp.broadcast_to(jnp.asarray(x), shape).reshape(-1)
    x = jnp.pad(x, (0, padded - x.shape[0]), mode="edge")
    return jax.device_put(x, sharding)


def simulate_sharded(
    params: HHParams,
    stimulus: AbstractStimulus | float = 0.0,
    *,
    duration: float,
    dt: float,
    devices: Sequence[jax.Device] | Mesh | None = None,
    y0: HHState | None = None,
    throw: bool = True,
    **kwargs,
) -> SimulationResult:
    """:func:`hh_jax.simulate` with the neurons split over devices (same arguments, same result).

    The population is flattened, padded to a multiple of the device count (padding neurons copy
    the last one and are dropped again), and each device simulates its slice. The result has the
    same fields, shapes and values as ``simulate(...)`` on one device, as global arrays sharded
    over the neuron axis.

    **Arguments:**

    - `params`, `stimulus`, `duration`, `dt`, `y0`, `throw`: as in :func:`hh_jax.simulate`.
    - `devices`: the devices (or a one-axis `Mesh` with axis ``"neurons"``). Default:
      ``jax.devices()`` (all devices, of every process in a multi-host run).
    - `**kwargs`: the other keyword options of :func:`hh_jax.simulate` (`stepper`, `record`,
      `backend`, `record`, `record_every`, `max_spikes`, `t0`, `spike_interpolation`).

    **Returns:** a `SimulationResult`.

    **Example:**

    ```python
    import hh_jax
    hh_jax.use_cpu_devices(2)  # before any other JAX call
    r = hh_jax.simulate_sharded(hh_jax.HHParams(), 10.0, duration=100.0, dt=0.01,
                                record=(), max_spikes=0, y0=hh_jax.steady_state_at(shape=10_000))
    ```
    """
    # the simulate family's shared checks: same messages as simulate for the same bad value
    pre = prepare(params, stimulus, duration=duration, dt=dt, y0=y0, record=kwargs.get("record", ("V",)),
                  record_every=kwargs.get("record_every", 1), max_spikes=kwargs.get("max_spikes"),
                  t0=kwargs.get("t0", 0.0), throw=throw,
                  spike_interpolation=kwargs.get("spike_interpolation", HermiteSpikes()))
    problem, stimulus, y0 = pre.problem, pre.stimulus, pre.y0
    if y0 is None:  # the default, laid out over the devices with the rest
        y0 = default_y0(problem.shape, problem.dtype)
    mesh = _mesh(devices)
    n_dev = mesh.devices.size
    shape = problem.shape
    N = math.prod(shape)
    local = -(-N // n_dev)
    padded = local * n_dev
    if jax.default_backend() == "cpu":  # the slices share the host's memory: check their sum
        diffrax_run = (isinstance(kwargs.get("stepper"), diffrax.AbstractSolver)
                       or isinstance(kwargs.get("backend"), DiffraxAdapter))
        dataclasses.replace(problem, shape=(padded,)).memory(
            spike_interpolation=None if diffrax_run else problem.spike_interpolation)
    sharding = NamedSharding(mesh, P(_AXIS))
    flat = lambda tree: jax.tree_util.tree_map(lambda x: _pad_flat(x, shape, padded, sharding), tree)
    p_flat, y_flat = flat(params), flat(y0)
    stim = _SliceStimulus(stimulus, shape=shape, padded=padded, local=local)

    kwargs = dict(kwargs, record=problem.record)
    kwargs.pop("t0", None)
    duration, dt = pre.grid["duration"], pre.grid["dt"]
    # t0 is traced (a 0-d array): one compilation serves every start time
    t, count, times, final, finite, traces = _sharded_call(
        p_flat, y_flat, stim, problem.t0, mesh, duration, dt, tuple(sorted(kwargs.items(), key=lambda kv: kv[0]))
    )
    unflat = lambda x, axis: jax.lax.slice_in_dim(x, 0, N, axis=axis).reshape(x.shape[:axis] + shape)
    result = SimulationResult(
        t=t,
        spike_count=unflat(count, 0),
        spike_times=unflat(times, 1),
        final_state=jax.tree_util.tree_map(lambda x: unflat(x, 0), final),
        finite=jnp.all(finite),
        **{k: unflat(v, 1) for k, v in traces.items()},
        **pre.grid,
    )
    if problem.throw:
        result = eqx.error_if(
            result, jnp.logical_not(result.finite),
            "hh_jax.simulate_sharded: the state became NaN/Inf (check parameters, current and dt).",
        )
    return result



@eqx.filter_jit
def _sharded_call(p_flat, y_flat, stim, t0, mesh, duration, dt, kwargs):
    """One compiled program per (mesh, options, shapes): `simulate` on every slice."""
    kwargs = dict(kwargs)
    record = kwargs["record"]

    def run(p, y, s, t0):
        r = simulate(p, s, duration=duration, dt=dt, y0=y, t0=t0, throw=False, **kwargs)
        traces = {k: getattr(r, k) for k in record}
        return r.t, r.spike_count, r.spike_times, r.final_state, r.finite[None], traces

    lane, row = P(_AXIS), P(None, _AXIS)
    out_specs = (P(), lane, row, lane, lane, {k: row for k in record})
    sharded = jax.shard_map(run, mesh=mesh, in_specs=(lane, lane, P(), P()), out_specs=out_specs,
                            check_vma=False)
    return sharded(p_flat, y_flat, stim, t0)

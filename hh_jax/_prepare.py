"""What the simulate family shares before and after its loop (issue 13, item 3, in part): the
default initial state and the sample-time grid, written once for `simulate`, `simulate_chunked`,
`simulate_sharded` and the fit objectives."""

import jax
import jax.numpy as jnp

from ._initial_state import steady_state_at
from ._vector_field import HHState


def default_y0(shape: tuple[int, ...], dtype) -> HHState:
    """The default initial state: V = −65 mV, every gate at its steady state, broadcast to the
    population `shape`, in the working `dtype` (float32 parameters run in float32).

    **Example:** ``default_y0((10,), jnp.float64).V.shape`` = ``(10,)``.
    """
    return _default_y0(jnp.asarray(-65.0, dtype), tuple(shape))


@jax.jit(static_argnums=1)
def _default_y0(V, shape):
    # jitted: one compilation instead of one per eager operation (first call); in V's dtype
    # (the working dtype; steady_state_at computes in the default float)
    return jax.tree_util.tree_map(lambda x: x.astype(V.dtype), steady_state_at(V, shape=shape))


def sample_times(t0, dt, n_steps: int, record_every: int, dtype):
    """The times (ms) of the recorded samples of a fixed-step run: ``t0 + dt·k`` for
    ``k = 0, record_every, 2·record_every, …`` up to `n_steps`, in `dtype` (`t0`, `dt`: 0-d,
    possibly traced).

    **Example:** ``sample_times(0.0, 0.5, 4, 2, jnp.float64)`` = ``[0.0, 1.0, 2.0]``.
    """
    k = record_every * jnp.arange(n_steps // record_every + 1)
    return jnp.asarray(t0, dtype) + jnp.asarray(dt, dtype) * k.astype(dtype)

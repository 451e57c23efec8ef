"""How the optimiser's gradients are computed: forward or reverse mode, as objects (not strings)."""

import abc
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp


class AbstractGradientMode(eqx.Module):
    """A way to compute ``u ↦ (f(u), ∇f(u))`` for a scalar `f` of the unconstrained vector `u`."""

    @abc.abstractmethod
    def value_and_grad(self, f: Callable) -> Callable:
        """``u ↦ (f(u), ∂f/∂u)`` for one start (`u`: ``[k]``)."""


class ReverseMode(AbstractGradientMode):
    """Backpropagation (`jax.value_and_grad`): one backward pass whatever the number of fields.
    On the CPU the default simulation loop's reverse mode is the fused kernel's discrete adjoint
    (memory O(N·√T)); elsewhere the transposed `lax.scan` loop.

    **Example:** ``hh_jax.fit.optimize(obj, space, mode=hh_jax.fit.ReverseMode())``.
    """

    def value_and_grad(self, f):
        return jax.value_and_grad(f)


class ForwardMode(AbstractGradientMode):
    """One `jax.jvp` per fitted field, batched: cheaper on CPU for a few fields, and memory
    independent of the trace length.

    **Example:** ``hh_jax.fit.value_and_grad(obj, space, mode=hh_jax.fit.ForwardMode())``.
    """

    def value_and_grad(self, f):
        def forward(v):
            basis = jnp.eye(v.shape[0], dtype=v.dtype)
            return jax.vmap(lambda e: jax.jvp(f, (v,), (e,)), out_axes=(None, 0))(basis)

        return forward


def check_mode(where: str, mode) -> AbstractGradientMode:
    """`mode` if it is an `AbstractGradientMode`; a `TypeError` naming it otherwise (strings too)."""
    if not isinstance(mode, AbstractGradientMode):
        raise TypeError(
            f"{where}mode must be a gradient mode, fit.ForwardMode() or fit.ReverseMode(), got {mode!r}."
        )
    return mode


FORWARD_MAX_FIELDS = 8
"""Where a loss's reverse mode transposes a `lax.scan` loop, forward mode is used for up to this
many fitted fields (`benchmarks/fit_mode.py`: forward was faster for every k ≤ 7 fields at 3 and
48 neurons, on the scan loop and the teacher-forced window, by 1.1–9×)."""


def default_mode(loss_fn, n_fields: int) -> AbstractGradientMode:
    """The gradient mode `optimize` uses when none is given, from measurement
    (`benchmarks/fit_mode.py`, `benchmarks/results/fit_mode.md`): `ReverseMode()` where the
    loss's reverse mode runs the fused kernel's adjoint (3–6× faster than forward mode for every
    k ≥ 1 at 3 and 48 neurons), else `ForwardMode()` for up to `FORWARD_MAX_FIELDS` fields.

    Whether the adjoint runs is the objective's `reverse_mode_fused()` (an `AbstractObjective`),
    or for any other callable whether `simulate`'s default loop would run it here.

    **Example:** ``default_mode(TraceObjective(stim, V, dt=0.025), 5)`` → ``ReverseMode()`` on a
    CPU with the kernel.
    """
    from .._backends import fused_adjoint_by_default
    from .._validate import as_int
    from ._objective import AbstractObjective

    if not callable(loss_fn):
        raise TypeError(f"default_mode: loss_fn must be callable (HHParams -> scalar), got {loss_fn!r}.")
    n_fields = as_int("default_mode: n_fields", n_fields, minimum=1)
    fused = (loss_fn.reverse_mode_fused() if isinstance(loss_fn, AbstractObjective)
             else fused_adjoint_by_default())
    if fused:
        return ReverseMode()
    return ForwardMode() if n_fields <= FORWARD_MAX_FIELDS else ReverseMode()

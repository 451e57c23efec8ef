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
    """Backpropagation (`jax.value_and_grad`): one backward pass whatever the number of fields;
    memory grows with the trace length (every step is kept).

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

"""The optimisation loop: K starts optimised together by one vmapped, jitted Optax step."""

import math
import warnings
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._params import HHParams
from .._validate import as_int
from ._gradients import AbstractGradientMode, ForwardMode, ReverseMode, check_mode, default_mode
from ._objective import AbstractObjective
from ._transforms import ParamSpace


class FitResult(eqx.Module):
    """What :func:`optimize` returns.

    **Fields:**

    - `params`: the best parameters seen over all starts and steps (`HHParams`, scalar fields).
    - `loss`: their loss.
    - `best_params`: per start, the best parameters seen (`HHParams`, fitted fields ``[K]``).
    - `best_loss`: ``[K]``; `best_u`: their unconstrained values ``[K, k]``.
    - `final_u`: unconstrained values after the last step, ``[K, k]``.
    - `history`: loss of every start at every step, ``[steps, K]`` (NaN where rejected).
    - `n_rejected`: per start, steps rejected for a non-finite loss or gradient, ``[K]``.
    - `space`: the `ParamSpace`.
    """

    params: HHParams
    loss: Array
    best_params: HHParams
    best_loss: Float[Array, " K"]
    best_u: Float[Array, "K k"]
    final_u: Float[Array, "K k"]
    history: Float[Array, "steps K"]
    n_rejected: Int[Array, " K"]
    space: ParamSpace

    def values(self) -> dict[str, float]:
        """The best start's fitted values, ``{name: float}`` (units of `HHParams`)."""
        return {n: float(getattr(self.params, n)) for n in self.space.names}

    def spread(self) -> dict[str, tuple[float, float, float]]:
        """Per fitted field, (min, median, max) over the starts' best values."""
        out = {}
        for n in self.space.names:
            v = np.asarray(getattr(self.best_params, n))
            out[n] = (float(v.min()), float(np.median(v)), float(v.max()))
        return out

    def summary(self) -> str:
        """A few lines: best loss, best values, spread over starts, rejected steps."""
        lines = [f"best loss {float(self.loss):.6g} over {self.best_loss.shape[0]} start(s); "
                 f"start losses min/median/max {np.min(self.best_loss):.4g}/"
                 f"{np.median(self.best_loss):.4g}/{np.max(self.best_loss):.4g}"]
        for n, (lo, med, hi) in self.spread().items():
            lines.append(f"  {n:4s} = {float(getattr(self.params, n)):.6g}   (starts: min {lo:.5g}, "
                         f"median {med:.5g}, max {hi:.5g})")
        rej = int(np.sum(self.n_rejected))
        lines.append(f"rejected non-finite steps: {rej}")
        return "\n".join(lines)


def _where_tree(ok, new, old):
    def pick(a, b):
        if not eqx.is_array(a) or a.ndim == 0:
            return a
        cond = ok.reshape((-1,) + (1,) * (a.ndim - 1))
        return jnp.where(cond, a, b)

    return jax.tree_util.tree_map(pick, new, old)


class _LoopState(eqx.Module):
    u: Array  # current point, [K, k]
    opt_state: optax.OptState
    good_u: Array  # last point with a finite loss and gradient
    good_state: optax.OptState
    scale: Array  # step multiplier [K]: halved after a rejection, regrown (x1.5) after a success
    best_u: Array
    best_loss: Array
    n_rejected: Array


def value_and_grad(loss_fn, space, *, mode: AbstractGradientMode = ReverseMode()):
    """``u ↦ (loss, ∂loss/∂u)`` for one start; `mode` `ReverseMode()` (backprop, the default) or
    `ForwardMode()` (one `jax.jvp` per fitted field, batched: cheaper on CPU for a few parameters
    and with constant memory in the trace length).

    **Example:** ``hh_jax.fit.value_and_grad(obj, space, mode=hh_jax.fit.ForwardMode())(u)``.
    """
    if not callable(loss_fn):
        raise TypeError("value_and_grad: loss_fn must be callable: HHParams -> scalar loss.")
    if not isinstance(space, ParamSpace):
        raise TypeError(f"value_and_grad: space must be a ParamSpace, got {type(space).__name__}.")
    mode = check_mode("value_and_grad: ", mode)

    def single(v):
        return loss_fn(space.to_params(v))

    return mode.value_and_grad(single)


@eqx.filter_jit
def _step(loss_fn, optimizer, space, s: _LoopState, mode):
    value, grad = jax.vmap(value_and_grad(loss_fn, space, mode=mode))(s.u)
    ok = jnp.isfinite(value) & jnp.all(jnp.isfinite(grad), axis=-1)
    grad = jnp.where(ok[:, None], grad, 0.0)
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes Python floats and int counters
        updates, new_state = jax.vmap(optimizer.update)(grad, s.opt_state, s.u)
    new_u = s.u + s.scale[:, None] * updates
    scale = jnp.where(ok, jnp.minimum(1.5 * s.scale, 1.0), 0.5 * s.scale)
    better = ok & (value < s.best_loss)
    # accepted: remember this point as good, move on; rejected: go back to the last good point
    # (and its optimiser state) and retry with half the step.
    return _LoopState(
        u=jnp.where(ok[:, None], new_u, s.good_u),
        opt_state=_where_tree(ok, new_state, s.good_state),
        good_u=jnp.where(ok[:, None], s.u, s.good_u),
        good_state=_where_tree(ok, s.opt_state, s.good_state),
        scale=scale,
        best_u=jnp.where(better[:, None], s.u, s.best_u),
        best_loss=jnp.where(better, value, s.best_loss),
        n_rejected=s.n_rejected + (~ok).astype(s.n_rejected.dtype),
    ), jnp.where(ok, value, jnp.nan)


@eqx.filter_jit
def _evaluate(loss_fn, space, u):
    return jax.vmap(lambda v: loss_fn(space.to_params(v)))(u)


def optimize(
    loss_fn: Callable[[HHParams], Array],
    space: ParamSpace,
    *,
    steps: int = 200,
    optimizer: optax.GradientTransformation | None = None,
    clip: float | None = None,
    n_starts: int = 1,
    key: PRNGKeyArray | None = None,
    rel: float = 0.5,
    init: "Float[Array, 'K k'] | FitResult | None" = None,
    progress: bool = True,
    description: str = "fit",
    mode: AbstractGradientMode | None = None,
) -> FitResult:
    """Fit the fields of `space` by minimising `loss_fn` from K starts at once.

    All starts advance together in one `eqx.filter_jit`-compiled step that vmaps
    ``jax.value_and_grad`` and the Optax update over the starts. A start whose loss or gradient
    is non-finite is rejected: it returns to its last parameters with a finite loss (and their
    optimiser state) and retries with half the step; rejections are counted in `n_rejected` and
    reported as warnings. The best parameters seen are kept per start and never lost.

    **Arguments:**

    - `loss_fn`: ``HHParams → scalar``, pure and jit-able (e.g. a `TraceObjective`).
    - `space`: a `ParamSpace` (the fitted fields and their bounds).
    - `steps`: optimiser steps, ≥ 1. Default 200.
    - `optimizer`: any Optax `GradientTransformation`. Default ``optax.adam(0.02)`` (steps in
      the unconstrained coordinates, which are O(1) per field).
    - `clip`: if given, gradients are clipped to this global norm first.
    - `n_starts`: K, random starts from ``space.sample(key, K, rel=rel)``. Default 1.
    - `key`: PRNG key for the starts. Default ``jax.random.key(0)``.
    - `rel`: relative half-width of the random starts around ``space.base``. Default 0.5.
    - `init`: explicit starts instead: unconstrained ``[K, k]``, or a `FitResult` to continue
      from (its per-start best values).
    - `progress`: show a tqdm bar with the best loss. Default True.
    - `description`: the bar's label.
    - `mode`: gradient by `ForwardMode()` (one JVP per fitted field, through the `lax.scan`
      loop's tangents; memory independent of the trace length) or `ReverseMode()`. Default
      None: `fit.default_mode(loss_fn, k)`, chosen by measurement (`benchmarks/fit_mode.py`):
      reverse where the loss's reverse mode is the fused kernel's adjoint (the CPU default),
      else forward for up to 8 fitted fields.

    **Returns:** a `FitResult`.

    **Example:**

    ```python
    res = optimize(objective, ParamSpace(HHParams.hh1952(), ("gNa", "gK", "gL")), n_starts=8, steps=300)
    res.params, res.summary()
    ```
    """
    if not isinstance(space, ParamSpace):
        raise TypeError(f"space must be a ParamSpace, got {type(space).__name__}.")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable: HHParams -> scalar loss.")
    as_int("steps", steps, minimum=1)
    as_int("n_starts", n_starts, minimum=1)
    if mode is None:
        mode = default_mode(loss_fn, space.size)
    mode = check_mode("", mode)
    if optimizer is None:
        optimizer = optax.adam(0.02)
    if clip is not None:
        if not (isinstance(clip, (int, float)) and math.isfinite(clip) and clip > 0):
            raise ValueError(f"clip must be a positive number, got {clip!r}.")
        optimizer = optax.chain(optax.clip_by_global_norm(clip), optimizer)
    if isinstance(init, FitResult):
        u = init.best_u
    elif init is not None:
        u = jnp.asarray(init, space.base.dtype)
        if u.ndim == 1:
            u = u[None]
        if u.ndim != 2 or u.shape[1] != space.size:
            raise ValueError(f"init must have shape [K, {space.size}], got {u.shape}.")
        if not bool(jnp.all(jnp.isfinite(u))):
            raise ValueError("init contains non-finite values.")
    else:
        u = space.sample(jax.random.key(0) if key is None else key, n_starts, rel=rel)
    K = u.shape[0]
    with jax.numpy_dtype_promotion("standard"):
        opt_state = jax.vmap(optimizer.init)(u)
    state = _LoopState(u=u, opt_state=opt_state, good_u=u, good_state=opt_state,
                       scale=jnp.ones((K,), u.dtype), best_u=u,
                       best_loss=jnp.full((K,), jnp.inf, u.dtype),
                       n_rejected=jnp.zeros((K,), jnp.int32))
    history = np.full((steps, K), np.nan)
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(bar, desc=description, leave=False)
    reported = 0
    for i in bar:
        state, value = _step(loss_fn, optimizer, space, state, mode)
        history[i] = np.asarray(value)
        if progress:
            bar.set_postfix(best=f"{float(jnp.min(state.best_loss)):.4g}", refresh=False)
        n_rej = int(np.sum(np.isnan(history[i])))
        if n_rej and reported < 5:
            reported += 1
            warnings.warn(f"optimize: step {i}: {n_rej} start(s) gave a non-finite loss or gradient; "
                          "went back to their last good parameters with half the step.", RuntimeWarning,
                          stacklevel=2)
    u, best_u, best_loss, n_rejected = state.u, state.best_u, state.best_loss, state.n_rejected
    # the last update has not been evaluated yet
    final = _evaluate(loss_fn, space, u)
    better = jnp.isfinite(final) & (final < best_loss)
    best_loss = jnp.where(better, final, best_loss)
    best_u = jnp.where(better[:, None], u, best_u)
    if not bool(jnp.any(jnp.isfinite(best_loss))):
        raise ValueError("optimize: no start reached a finite loss; check the data, protocol and bounds.")
    i_best = int(jnp.nanargmin(jnp.where(jnp.isfinite(best_loss), best_loss, jnp.inf)))
    per_start = space.values(best_u)
    return FitResult(
        params=space.to_params(best_u[i_best]),
        loss=best_loss[i_best],
        best_params=space.base.replace(**per_start),
        best_loss=best_loss,
        best_u=best_u,
        final_u=u,
        history=jnp.asarray(history),
        n_rejected=n_rejected,
        space=space,
    )


def polish(
    objective,
    result: FitResult,
    *,
    max_steps: int = 30,
    rtol: float = 1e-8,
    atol: float = 1e-8,
) -> FitResult:
    """Refine every start of `result` by Levenberg–Marquardt (Optimistix) on the objective's residuals.

    Gradient descent crawls along the flat valleys of a trace loss; a Gauss–Newton method with
    a handful of parameters converges in a few steps once a start is in the right basin. All
    starts are solved together (vmapped). A start whose polished loss is not finite or not
    lower keeps its previous best.

    **Arguments:**

    - `objective`: an `AbstractObjective`: ``residuals(params) -> [N]`` with ``Σ r²`` equal to
      its loss (e.g. a `TraceObjective` with ``summary_weight=0``).
    - `result`: a `FitResult` (its `space` and per-start best points are used).
    - `max_steps`: LM iterations. Default 30. `rtol`, `atol`: Optimistix tolerances.

    **Returns:** a new `FitResult` (same `history`).

    **Example:** ``res = polish(objective, optimize(objective, space, n_starts=16))``.
    """

    if not isinstance(objective, AbstractObjective):
        raise TypeError(
            "polish: objective must be an AbstractObjective (e.g. TraceObjective), with a "
            f"residuals(params) method, got {type(objective).__name__}."
        )
    if not isinstance(result, FitResult):
        raise TypeError(f"polish: result must be a FitResult, got {type(result).__name__}.")
    space = result.space
    u = _polish(objective, space, result.best_u, max_steps, rtol, atol)
    final = _evaluate(objective, space, u)
    before = _evaluate(objective, space, result.best_u)  # `result` may come from another objective
    before = jnp.where(jnp.isfinite(before), before, jnp.inf)
    better = jnp.isfinite(final) & jnp.all(jnp.isfinite(u), axis=-1) & (final < before)
    best_loss = jnp.where(better, final, before)
    best_u = jnp.where(better[:, None], u, result.best_u)
    i_best = int(jnp.argmin(jnp.where(jnp.isfinite(best_loss), best_loss, jnp.inf)))
    return FitResult(
        params=space.to_params(best_u[i_best]),
        loss=best_loss[i_best],
        best_params=space.base.replace(**space.values(best_u)),
        best_loss=best_loss,
        best_u=best_u,
        final_u=u,
        history=result.history,
        n_rejected=result.n_rejected,
        space=space,
    )


@eqx.filter_jit
def _polish(objective, space, u0, max_steps, rtol, atol):
    import optimistix as optx

    solver = optx.LevenbergMarquardt(rtol=rtol, atol=atol)

    def solve(u):
        sol = optx.least_squares(lambda v, _: objective.residuals(space.to_params(v)), solver, u,
                                 max_steps=max_steps, throw=False)
        return sol.value

    with jax.numpy_dtype_promotion("standard"):
        return jax.vmap(solve)(u0)

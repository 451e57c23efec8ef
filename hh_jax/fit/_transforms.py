"""Trainable subsets of `HHParams`, with bounds enforced by reparametrisation.

The optimiser works on an unconstrained vector ``u`` (one entry per fitted field); the model
only ever sees ``x = transform(u)``, which lies strictly inside the bounds for every finite
``u``. Scales are chosen so that ``u`` is O(1) for every field, whatever its unit and size, so
one learning rate suits them all.
"""

import abc
import math
from typing import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._params import HHParams
from .._validate import as_int, as_number


class AbstractTransform(eqx.Module):
    """A smooth bijection from the real line onto the allowed values of one parameter."""

    @abc.abstractmethod
    def forward(self, u):
        """Constrained value from unconstrained `u`."""

    @abc.abstractmethod
    def inverse(self, x):
        """Unconstrained value from constrained `x` (which must lie inside the bounds)."""

    @abc.abstractmethod
    def bounds(self) -> tuple[float, float]:
        """(lower, upper) of the constrained values; ``±inf`` where unbounded."""


class Positive(AbstractTransform):
    """``x = lower + scale·softplus(u)``: values in ``(lower, ∞)``.

    **Arguments:** `scale`: the typical size of ``x − lower`` (unit of the parameter), > 0;
    `lower`: default 0.0.

    **Example:** ``Positive(scale=120.0)`` for gNa in mS/cm².
    """

    scale: float = eqx.field(static=True)
    lower: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        as_number("Positive.scale", self.scale, positive=True)
        as_number("Positive.lower", self.lower)

    def forward(self, u):
        return self.lower + self.scale * jax.nn.softplus(u)

    def inverse(self, x):
        y = (x - self.lower) / self.scale
        return y + jnp.log(-jnp.expm1(-y))  # softplus⁻¹(y) = log(expm1(y)), stably

    def bounds(self) -> tuple[float, float]:
        return (self.lower, math.inf)


class Interval(AbstractTransform):
    """``x = lower + (upper − lower)·sigmoid(u)``: values in ``(lower, upper)``.

    **Arguments:** `lower`, `upper`: finite bounds, ``lower < upper`` (unit of the parameter).

    **Example:** ``Interval(-150.0, -20.0)`` for EK in mV.
    """

    lower: float = eqx.field(static=True)
    upper: float = eqx.field(static=True)

    def __check_init__(self):
        as_number("Interval.lower", self.lower, finite=False)
        as_number("Interval.upper", self.upper, finite=False)
        if not (math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower < self.upper):
            raise ValueError(
                f"Interval needs finite lower < upper, got lower={self.lower}, upper={self.upper}."
            )

    def forward(self, u):
        return self.lower + (self.upper - self.lower) * jax.nn.sigmoid(u)

    def inverse(self, x):
        p = (x - self.lower) / (self.upper - self.lower)
        return jnp.log(p) - jnp.log1p(-p)

    def bounds(self) -> tuple[float, float]:
        return (self.lower, self.upper)


DEFAULT_BOUNDS = {"ENa": (0.0, 150.0), "EK": (-150.0, -20.0), "EL": (-120.0, 0.0)}
"""Default `Interval` bounds (mV) of the reversal potentials when no transform is given."""


def _default_transform(name: str, value: float) -> AbstractTransform:
    if name in ("C", "gNa", "gK", "gL"):
        return Positive(scale=abs(value) if value > 0 else 1.0)
    if name in DEFAULT_BOUNDS:
        return Interval(*DEFAULT_BOUNDS[name])
    raise ValueError(f"fit: field {name!r} cannot be fitted; choose from {list(FITTABLE)}.")


FITTABLE = ("C", "gNa", "ENa", "gK", "EK", "gL", "EL")
"""`HHParams` fields that can be fitted (``V_th`` is a detection threshold, not a model parameter)."""


class ParamSpace(eqx.Module):
    """Which `HHParams` fields are fitted, and how each is kept inside its bounds.

    The fields not fitted keep their values in `base`. An unconstrained vector ``u`` of shape
    ``[len(names)]`` maps to an `HHParams` by :meth:`to_params`.

    **Arguments:**

    - `base`: `HHParams` with scalar fields: the fixed values, and the reference point (initial
      guess) of the fitted ones.
    - `fit`: names of fields to fit (e.g. ``("gNa", "gK", "gL")``), or a mapping from names to
      `AbstractTransform` (``None`` for the default: `Positive` with the base value as scale for
      C and conductances, `Interval` with `DEFAULT_BOUNDS` for reversal potentials).

    **Example:**

    ```python
    space = ParamSpace(HHParams.hh1952(), fit={"gNa": None, "EK": Interval(-100.0, -50.0)})
    p = space.to_params(space.to_unconstrained(space.base))
    ```
    """

    base: HHParams
    names: tuple[str, ...] = eqx.field(static=True)
    transforms: tuple[AbstractTransform, ...]

    def __init__(self, base: HHParams, fit: Sequence[str] | Mapping[str, AbstractTransform | None]):
        if not isinstance(base, HHParams):
            raise TypeError(f"ParamSpace.base must be an HHParams, got {type(base).__name__}.")
        if base.pop_shape != ():
            raise ValueError(f"ParamSpace.base must have scalar fields, got population shape {base.pop_shape}.")
        if isinstance(fit, str):
            fit = [f.strip() for f in fit.split(",") if f.strip()]
        items = dict(fit) if isinstance(fit, Mapping) else {n: None for n in fit}
        if not items:
            raise ValueError("ParamSpace.fit must name at least one field.")
        if len(items) != len(list(fit)):
            raise ValueError(f"ParamSpace.fit has repeated names: {list(fit)}.")
        transforms = []
        for name, tr in items.items():
            if name not in FITTABLE:
                raise ValueError(f"ParamSpace.fit: unknown or unfittable field {name!r}; choose from {list(FITTABLE)}.")
            value = float(getattr(base, name))
            if tr is None:
                tr = _default_transform(name, value)
            if not isinstance(tr, AbstractTransform):
                raise TypeError(f"ParamSpace.fit[{name!r}] must be an AbstractTransform or None, got {tr!r}.")
            lo, hi = tr.bounds()
            if not lo < value < hi:
                raise ValueError(f"ParamSpace.base.{name} = {value} lies outside its bounds ({lo}, {hi}).")
            transforms.append(tr)
        self.base = base
        self.names = tuple(items)
        self.transforms = tuple(transforms)

    @property
    def size(self) -> int:
        """Number of fitted fields."""
        return len(self.names)

    def to_params(self, u: Float[Array, " k"]) -> HHParams:
        """`HHParams` with the fitted fields set from unconstrained `u` (shape ``[k]``)."""
        values = {n: tr.forward(u[i]) for i, (n, tr) in enumerate(zip(self.names, self.transforms))}
        return self.base.replace(**values)

    def values(self, u: Float[Array, "*batch k"]) -> dict[str, Array]:
        """The fitted fields' constrained values, ``{name: array[*batch]}``."""
        return {n: tr.forward(u[..., i]) for i, (n, tr) in enumerate(zip(self.names, self.transforms))}

    def to_unconstrained(self, params: HHParams | Mapping[str, float]) -> Float[Array, "*batch k"]:
        """Unconstrained ``u`` of an `HHParams` or a mapping of the fitted fields' values.

        A value outside its bounds raises `ValueError` naming the field (for concrete values).
        """
        cols = []
        for n, tr in zip(self.names, self.transforms):
            x = params[n] if isinstance(params, Mapping) else getattr(params, n)
            x = jnp.asarray(x, dtype=self.base.dtype)
            if not isinstance(x, jax.core.Tracer):
                lo, hi = tr.bounds()
                arr = np.asarray(x)
                if not np.all((arr > lo) & (arr < hi)):
                    raise ValueError(f"{n} = {arr} lies outside its bounds ({lo}, {hi}).")
            cols.append(tr.inverse(x))
        return jnp.stack(cols, axis=-1)

    def sample(self, key: PRNGKeyArray, n: int, *, rel: float = 0.5) -> Float[Array, "n k"]:
        """`n` random starts, each fitted field uniform in ``base·(1 ± rel)`` (clipped to the bounds).

        **Arguments:** `key`: PRNG key; `n`: number of starts, ≥ 1; `rel`: relative half-width,
        0 < rel < 1 for positive fields (default 0.5, i.e. ±50 %).

        **Returns:** unconstrained starts, shape ``[n, k]``.
        """
        n = as_int("sample: n", n, minimum=1)
        if not (isinstance(rel, (int, float)) and 0 < rel):
            raise ValueError(f"sample: rel must be a positive number, got {rel!r}.")
        dtype = self.base.dtype
        r = jax.random.uniform(key, (n, self.size), dtype=dtype, minval=-rel, maxval=rel)
        cols = {}
        for i, (name, tr) in enumerate(zip(self.names, self.transforms)):
            b = jnp.asarray(getattr(self.base, name), dtype)
            x = b * (1.0 + r[:, i])
            lo, hi = tr.bounds()
            width = (hi - lo) if math.isfinite(hi - lo) else abs(float(b)) + 1.0
            eps = 1e-3 * width
            cols[name] = jnp.clip(x, lo + eps, hi - eps)
        return self.to_unconstrained(cols)

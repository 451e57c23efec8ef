"""The objective contract (issue 13 item 5): `AbstractObjective` with an abstract `residuals`;
`polish` takes only objectives that subclass it (no duck typing)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
import hh_jax.fit as hf


class _Target(hf.AbstractObjective):
    gNa: float

    def residuals(self, params):
        return jnp.atleast_1d(params.gNa - self.gNa)

    def __call__(self, params):
        return jnp.sum(self.residuals(params) ** 2)


def test_ready_made_objectives_are_abstract_objectives():
    assert issubclass(hf.TraceObjective, hf.AbstractObjective)
    assert issubclass(hf.SpikeTimeObjective, hf.AbstractObjective)
    with pytest.raises(TypeError, match="abstract"):
        hf.AbstractObjective()

    class NoResiduals(hf.AbstractObjective):
        def __call__(self, params):
            return params.gNa

    with pytest.raises(TypeError, match="abstract"):
        NoResiduals()


def test_polish_refuses_a_duck_typed_objective_and_accepts_a_subclass():
    space = hf.ParamSpace(hh_jax.HHParams(), ["gNa"])
    obj = _Target(100.0)
    res = hf.optimize(obj, space, n_starts=2, steps=2, key=jax.random.key(0), progress=False)

    class Duck:  # what `hasattr(objective, "residuals")` used to accept
        residuals = staticmethod(obj.residuals)
        __call__ = staticmethod(obj)

    with pytest.raises(TypeError, match=r"polish: objective must be an AbstractObjective .*got Duck"):
        hf.polish(Duck(), res)
    polished = hf.polish(obj, res, max_steps=20)
    np.testing.assert_allclose(np.asarray(polished.best_params.gNa), 100.0, rtol=1e-6)

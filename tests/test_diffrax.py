"""The Diffrax path of `simulate`: accuracy vs SciPy, pulses under adaptive steps, adjoints."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from helpers import central_fd, reference_spikes


def _spikes(r):
    t = np.asarray(r.spike_times)
    return t[np.isfinite(t)]


def test_tsit5_reproduces_reference():
    ref = reference_spikes("hh1952", 10.0)
    r = hh_jax.simulate(
        hh_jax.HHParams.hh1952(), 10.0, duration=200.0, dt=0.1, record=(),
        backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8)),
    )
    got = _spikes(r)
    assert len(got) == len(ref) == int(r.spike_count)
    assert np.max(np.abs(got - ref)) < 1e-4
    assert bool(r.finite)


@pytest.mark.parametrize("solver", [diffrax.Tsit5(), diffrax.Dopri5(), diffrax.Dopri8(),
                                    diffrax.Heun(), diffrax.Kvaerno5()],
                         ids=lambda s: type(s).__name__)
def test_short_pulse_is_not_stepped_over(solver):
    # Quiescent neuron; one 0.5 ms, 40 uA/cm^2 pulse at an arbitrary time. Without the jump
    # times an adaptive solver at rest takes steps of several ms and never sees the pulse.
    stim = hh_jax.PulseTrain([13.37], widths=0.5, amplitudes=40.0)
    r = hh_jax.simulate(
        hh_jax.HHParams.hh1952(), stim, duration=25.0, dt=0.5, record=(),
        backend=hh_jax.DiffraxAdapter(solver, stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-3)),
    )
    t = _spikes(r)
    assert int(r.spike_count) == 1
    assert 13.37 < t[0] < 13.37 + 5.0


def _loss(adjoint, dt=0.02):
    # A smooth problem (constant current; one spike in 5 ms) so that the continuous adjoint of
    # BacksolveAdjoint and the discrete gradient agree to the discretisation error.
    def loss(gNa, amp):
        r = hh_jax.simulate(
            hh_jax.HHParams.hh1952(gNa=gNa), hh_jax.Constant(amp), duration=5.0, dt=dt,
            backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), adjoint=adjoint), record=("V",),
        )
        return jnp.mean(r.V)

    return loss


@pytest.mark.parametrize(
    "adjoint,rtol",
    [(None, 1e-5), (diffrax.BacksolveAdjoint(), 1e-3)],
    ids=["recursive", "backsolve"],
)
def test_adjoint_gradients_match_fd(adjoint, rtol):
    # One compilation serves the gradient and the finite differences: the loss values are the
    # primal of the same jitted value_and_grad (arrays, not Python floats, so no retrace).
    value_and_grad = jax.jit(jax.value_and_grad(_loss(adjoint), argnums=(0, 1)))
    loss = lambda gNa, amp: float(value_and_grad(jnp.asarray(gNa), jnp.asarray(amp))[0])  # noqa: E731
    g = value_and_grad(jnp.asarray(120.0), jnp.asarray(10.0))[1]
    fd = (
        central_fd(lambda v: loss(v, 10.0), 120.0, 1e-3),
        central_fd(lambda v: loss(120.0, v), 10.0, 1e-4),
    )
    for gi, fi in zip(g, fd):
        assert abs(float(gi) - fi) <= rtol * abs(fi), (float(gi), fi)


def test_population_modes_agree_and_record():
    p = hh_jax.HHParams.hh1952(gNa=jnp.array([110.0, 120.0, 130.0]))
    kw = dict(duration=15.0, dt=0.05, record=("V", "INa", "I"), record_every=4)
    adapter = lambda population: hh_jax.DiffraxAdapter(  # noqa: E731
        diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-8), population=population)
    a = hh_jax.simulate(p, 10.0, backend=adapter(hh_jax.PerNeuronODE()), **kw)
    b = hh_jax.simulate(p, 10.0, backend=adapter(hh_jax.BatchedODE()), **kw)
    s = hh_jax.simulate(p, 10.0, duration=15.0, dt=0.05, record=("V", "INa", "I"), record_every=4)
    assert a.V.shape == b.V.shape == s.V.shape == (76, 3)
    np.testing.assert_allclose(a.t, s.t)
    np.testing.assert_array_equal(a.spike_count, b.spike_count)
    np.testing.assert_allclose(_spikes(a), _spikes(b), atol=1e-6)
    np.testing.assert_allclose(a.V, b.V, atol=1e-4)
    np.testing.assert_allclose(a.INa, b.INa, atol=1e-3)
    np.testing.assert_allclose(a.I, 10.0)
    assert np.all(np.asarray(a.spike_count) >= 1)


def test_bad_options_name_the_argument():
    p = hh_jax.HHParams()
    with pytest.raises(TypeError, match=r"population must be hh_jax\.BatchedODE\(\) or hh_jax\.PerNeuronODE\(\)"):
        hh_jax.DiffraxAdapter(diffrax.Tsit5(), population="vmap")
    with pytest.raises(TypeError, match="stepsize_controller"):
        hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=1)
    with pytest.raises(ValueError, match="max_steps"):
        hh_jax.DiffraxAdapter(diffrax.Tsit5(), max_steps=0)
    with pytest.raises(ValueError, match="implicit"):
        hh_jax.simulate(p, 10.0, duration=1.0, dt=0.1, stepper=diffrax.Kvaerno5())
    with pytest.raises(TypeError, match="spike_interpolation"):
        hh_jax.simulate(p, 10.0, duration=1.0, dt=0.1, spike_interpolation="linear")
    sampled = hh_jax.Sampled(jnp.zeros((11, 2)), dt=0.1)
    with pytest.raises(ValueError, match=r"population=PerNeuronODE\(\)"):
        hh_jax.simulate(p, sampled, duration=1.0, dt=0.1,
                        backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), population=hh_jax.PerNeuronODE()))


def test_implicit_solver_takes_the_controllers_tolerances_without_private_diffrax():
    """`_SpikeRecorder` hides the implicit solver from `diffeqsolve`, so hh_jax hands the
    controller's rtol/atol/norm to the root finder itself (issue 13 item 5: through Diffrax's
    public API only)."""
    import optimistix as optx

    from hh_jax._diffrax import _with_tolerances

    ctrl = diffrax.PIDController(rtol=1e-5, atol=1e-7)
    s = _with_tolerances(diffrax.Kvaerno5(), ctrl)
    assert s.root_finder.rtol == 1e-5 and s.root_finder.atol == 1e-7 and s.root_finder.norm is ctrl.norm
    # a root finder made with the public helper is filled the same way; explicit ones are kept
    s = _with_tolerances(diffrax.Kvaerno5(root_finder=diffrax.with_stepsize_controller_tols(optx.Chord)()), ctrl)
    assert s.root_finder.rtol == 1e-5 and s.root_finder.atol == 1e-7
    explicit = diffrax.Kvaerno5(root_finder=optx.Chord(rtol=1e-3, atol=1e-4))
    assert _with_tolerances(explicit, ctrl) is explicit
    assert _with_tolerances(diffrax.Tsit5(), ctrl) == diffrax.Tsit5()
    with pytest.raises(ValueError, match="implicit"):
        _with_tolerances(diffrax.Kvaerno5(), diffrax.ConstantStepSize())


def test_no_private_imports_from_diffrax():
    import pathlib
    import re

    root = pathlib.Path(hh_jax.__file__).parent
    bad = [f"{p.relative_to(root)}: {line.strip()}" for p in root.rglob("*.py")
           for line in p.read_text().splitlines()
           if re.search(r"\b(from|import)\s+diffrax\._|\bdiffrax\._[a-z]", line)]
    assert not bad, bad

"""The jump-time contract (`AbstractStimulus.jump_times(t0, t1)`, abstract, forwarded by every
wrapper): adaptive solvers step exactly onto pulse edges, at any time of the run."""

import diffrax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax

# Short strong pulses: at rest an adaptive solver takes steps of several ms and steps over a
# 0.2 ms pulse unless the edge is a jump time (without the late edges: 1 spike of 4).
PULSES = hh_jax.Square(200.0, frequency=10.0, duty=0.002)  # 0.2 ms every 100 ms
SOLVER = dict(backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-6, atol=1e-6)))


def test_square_edges_late_in_a_run_are_jump_times():
    """The edges used to stop at 10 s."""
    np.testing.assert_allclose(PULSES.jump_times(12_000.0, 12_200.0),
                               [12_000.0, 12_000.2, 12_100.0, 12_100.2, 12_200.0])
    with pytest.raises(ValueError, match="infinitely many jumps"):
        PULSES.jump_times(0.0, np.inf)


@pytest.mark.parametrize("t0", [0.0, 12_000.0])
def test_adaptive_solver_sees_every_pulse_late_in_a_run(t0):
    exact = hh_jax.simulate(hh_jax.HHParams(), PULSES, duration=400.0, dt=0.005, t0=t0, record=())
    r = hh_jax.simulate(hh_jax.HHParams(), PULSES, duration=400.0, dt=0.1, t0=t0, record=(), **SOLVER)
    assert int(exact.spike_count) == 4
    assert int(r.spike_count) == 4


def test_sharded_and_chunked_wrappers_forward_jump_times(tmp_path):
    from hh_jax._chunked import _Shifted
    from hh_jax._sharding import _SliceStimulus

    steps = hh_jax.Step(1.0, onset=5.0, offset=7.0) + PULSES
    np.testing.assert_allclose(_Shifted(steps, jnp.asarray(100.0)).jump_times(0.0, 10.0), [0.0, 0.2])
    sliced = _SliceStimulus(steps, shape=(4,), padded=4, local=2)
    np.testing.assert_allclose(sliced.jump_times(0.0, 10.0), [0.0, 0.2, 5.0, 7.0])


def test_a_stimulus_must_say_where_it_jumps():
    class NoJumps(hh_jax.AbstractStimulus):
        def __call__(self, t):
            return 0.0 * t

    with pytest.raises(TypeError, match="abstract"):
        NoJumps()

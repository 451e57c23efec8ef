"""Temperature (issue 13, item 10): every rate × φ, φ = q10^((temperature − 6.3)/10), from the one
model description (`hh_jax._model.rate_factor`) and the `HHParams` fields `temperature` (°C) and
`q10`, in every backend.

(a) 6.3 °C reproduces the spike times from before the change; (b) 10 and 15 °C agree with an
independent SciPy reference written out here; (c) the derivatives of the first spike time and of
the resting potential with respect to the temperature match central differences; (d) every
backend agrees at 15 °C; (e) the temperature is fittable.
"""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import hh_jax
from hh_jax import HHParams
from hh_jax._fused import kernel_path

# Spike times (ms) of HHParams() (6.3 °C), constant I = 10 µA/cm², 200 ms, dt = 0.01, float64,
# ExpEuler() through simulate's default backend (the fused kernel), computed on main at commit
# 0a8bce3 (before temperature existed) with:
#   r = hh_jax.simulate(hh_jax.HHParams(), 10.0, duration=200.0, dt=0.01, record=())
#   [float(x) for x in r.spike_times if np.isfinite(x)]
BEFORE = [2.1564118170178737, 16.541408779151727, 30.696356136229422, 44.84233890169902,
          58.9876001161484, 73.13299543619573, 87.27822270239709, 101.42360821394125,
          115.5688498310742, 129.71421778683222, 143.85948578202607, 158.00482550145284,
          172.15013219089278, 186.29543254873943]

HAS_KERNEL = kernel_path() is not None


def _spikes(r):
    s = np.asarray(r.spike_times).ravel()
    return s[np.isfinite(s)]


@pytest.mark.parametrize("fused", [pytest.param(True, marks=pytest.mark.skipif(
    not HAS_KERNEL, reason="no C++ compiler: no fused kernel")), False])
def test_the_reference_temperature_changes_nothing(fused):
    p = HHParams()
    assert float(p.temperature) == 6.3 and float(p.q10) == 3.0
    r = hh_jax.simulate(p, 10.0, duration=200.0, dt=0.01, record=(), backend=hh_jax.FusedCPU() if fused else hh_jax.ScanLoop())
    np.testing.assert_allclose(_spikes(r), BEFORE, rtol=0, atol=1e-8)


# --- an independent reference: the HH equations written out, solved by SciPy ----------------
def _ref_rates(V, phi):
    x = -(V + 40.0) / 10.0
    am = x / np.expm1(x) if abs(x) > 1e-9 else 1.0 - x / 2
    y = -(V + 55.0) / 10.0
    an = 0.1 * (y / np.expm1(y) if abs(y) > 1e-9 else 1.0 - y / 2)
    bm = 4.0 * np.exp(-(V + 65.0) / 18.0)
    ah = 0.07 * np.exp(-(V + 65.0) / 20.0)
    bh = 1.0 / (1.0 + np.exp(-(V + 35.0) / 10.0))
    bn = 0.125 * np.exp(-(V + 65.0) / 80.0)
    return [phi * r for r in (am, bm, ah, bh, an, bn)]


def _reference_spikes(temperature, I=10.0, duration=100.0):
    phi = 3.0 ** ((temperature - 6.3) / 10.0)
    gNa, ENa, gK, EK, gL, EL, C = 120.0, 50.0, 36.0, -77.0, 0.03, -54.387, 1.0

    def rhs(t, y):
        V, m, h, n = y
        am, bm, ah, bh, an, bn = _ref_rates(V, phi)
        i_ion = gNa * m**3 * h * (V - ENa) + gK * n**4 * (V - EK) + gL * (V - EL)
        return [(I - i_ion) / C, am * (1 - m) - bm * m, ah * (1 - h) - bh * h, an * (1 - n) - bn * n]

    am, bm, ah, bh, an, bn = _ref_rates(-65.0, 1.0)  # simulate's default y0: gates at x∞(−65 mV)
    y0 = [-65.0, am / (am + bm), ah / (ah + bh), an / (an + bn)]
    event = lambda t, y: y[0] - 20.0
    event.direction = 1.0
    sol = solve_ivp(rhs, (0.0, duration), y0, method="LSODA", rtol=1e-10, atol=1e-12, events=event)
    assert sol.status == 0
    return sol.t_events[0]


@pytest.mark.parametrize("temperature", [10.0, 15.0])
def test_warmer_spikes_match_an_independent_reference(temperature):
    ref = _reference_spikes(temperature)
    r = hh_jax.simulate(HHParams(temperature=temperature), 10.0, duration=100.0, dt=0.01, record=())
    got = _spikes(r)
    assert got.shape == ref.shape and len(ref) > 8
    np.testing.assert_allclose(got, ref, rtol=0, atol=0.02)
    # and faster than at 6.3 °C: more spikes in the same time
    assert len(ref) > sum(t < 100.0 for t in BEFORE)


def _first_spike(temperature):
    p = HHParams(temperature=temperature)
    r = hh_jax.simulate(p, 10.0, duration=12.0, dt=0.01, record=(), backend=hh_jax.ScanLoop())
    return r.spike_times[0]


def test_first_spike_time_derivative_matches_central_differences():
    T0, h = 12.0, 1e-3
    g = float(jax.grad(_first_spike)(jnp.asarray(T0)))
    fd = (float(_first_spike(T0 + h)) - float(_first_spike(T0 - h))) / (2 * h)
    assert np.isfinite(g) and g < 0  # warmer: faster rates, earlier spike
    np.testing.assert_allclose(g, fd, rtol=1e-5)


def test_rest_derivative_matches_central_differences():
    """φ cancels in every x∞ = α/(α+β): the resting potential does not move with temperature
    in this model (only the kinetics do) — the derivative and the differences are both 0."""
    rest = lambda T: hh_jax.equilibrium(HHParams.hh1952(temperature=T), 2.0).V
    T0, h = 15.0, 1e-2
    g = float(jax.grad(rest)(jnp.asarray(T0)))
    fd = (float(rest(T0 + h)) - float(rest(T0 - h))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-9)
    assert abs(g) < 1e-9
    # the kinetics do move: the time constants scale by 1/φ
    phi = 3.0 ** ((T0 - 6.3) / 10.0)
    np.testing.assert_allclose(
        hh_jax.time_constant("n", jnp.asarray(-65.0), params=HHParams(temperature=T0)),
        hh_jax.time_constant("n", jnp.asarray(-65.0)) / phi, rtol=1e-13)


def test_every_backend_agrees_at_15_degrees(tmp_path):
    p = HHParams(temperature=jnp.asarray([15.0, 15.0, 20.0]))  # per-neuron temperatures too
    kw = dict(duration=25.0, dt=0.01)
    scan = hh_jax.simulate(p, 10.0, record=(), backend=hh_jax.ScanLoop(), **kw)
    ref = np.asarray(scan.spike_times)
    assert int(scan.spike_count[0]) >= 4
    runs = {"sharded": hh_jax.simulate_sharded(p, 10.0, record=(), backend=hh_jax.ScanLoop(), **kw)}
    if HAS_KERNEL:
        runs["kernel"] = hh_jax.simulate(p, 10.0, record=(), backend=hh_jax.FusedCPU(), **kw)
    for name, r in runs.items():
        np.testing.assert_allclose(np.asarray(r.spike_times), ref, rtol=0, atol=1e-9, err_msg=name)
    chunked = hh_jax.simulate_chunked(p, 10.0, out=tmp_path / "c", chunk_steps=1500, progress=False, **kw)
    np.testing.assert_array_equal(chunked.spike_count, np.asarray(scan.spike_count))
    table = chunked.spike_table()
    for i in range(3):
        np.testing.assert_allclose(np.sort(table[table[:, 0] == i, 1]), _spikes_of(ref, i), rtol=0, atol=1e-9)
    # Diffrax (an adaptive solver: a different scheme, so to the scan's accuracy)
    dfx = hh_jax.simulate(p, 10.0, record=(), dt=0.01, duration=25.0, backend=hh_jax.DiffraxAdapter(
        diffrax.Tsit5(), stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10), max_steps=100_000))
    np.testing.assert_allclose(np.asarray(dfx.spike_times), ref, rtol=0, atol=0.02)
    # and the temperature matters: the spike trains at 15 °C and 20 °C differ by far more
    a, b = ref[:, 0], ref[:, 2]
    assert np.any(np.isfinite(a) != np.isfinite(b)) or np.max(np.abs(a - b)[np.isfinite(a)]) > 0.5


def _spikes_of(times, i):
    s = times[:, i]
    return s[np.isfinite(s)]


def test_temperature_is_fittable():
    target = _spikes(hh_jax.simulate(HHParams(temperature=14.0), 10.0, duration=15.0, dt=0.01, record=(),
                                     backend=hh_jax.ScanLoop()))

    def loss(p):
        r = hh_jax.simulate(p, 10.0, duration=15.0, dt=0.01, record=(), backend=hh_jax.ScanLoop())
        return jnp.sum((r.spike_times[:2] - target[:2]) ** 2)

    p0 = HHParams(temperature=12.0)
    g = jax.grad(loss)(p0)
    h = 1e-4  # the second spike time curves: h = 1e-3 leaves a 5e-4 relative FD error
    fd = (float(loss(p0.replace(temperature=12.0 + h))) - float(loss(p0.replace(temperature=12.0 - h)))) / (2 * h)
    assert np.isfinite(float(g.temperature)) and float(g.temperature) < 0  # warmer is closer
    np.testing.assert_allclose(float(g.temperature), fd, rtol=1e-4)


def test_invalid_temperature_and_q10():
    with pytest.raises(ValueError, match="temperature"):
        HHParams(temperature=-300.0)
    with pytest.raises(ValueError, match="q10"):
        HHParams(q10=0.0)
    with pytest.raises(ValueError, match="q10"):
        HHParams(q10=float("nan"))


def test_cli_temperature(tmp_path, capsys):
    """``--temperature`` (the CLI's shared option vocabulary, `hh_jax._cli_args`): the spike
    times written by ``hh-jax simulate`` are those of `simulate` at that temperature."""
    import csv

    from hh_jax._cli import main

    out = tmp_path / "run"
    assert main(["simulate", "--temperature", "15", "--duration", "20", "--no-plot", "--out", str(out)]) == 0
    with open(out / "spikes.csv") as f:
        got = [float(r[1]) for r in list(csv.reader(f))[1:]]
    want = _spikes(hh_jax.simulate(HHParams(temperature=15.0), 10.0, duration=20.0, dt=0.01, record=()))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    for bad in ("-300", "nan", "warm"):
        capsys.readouterr()
        try:
            code = main(["simulate", "--temperature", bad, "--no-plot", "--out", str(tmp_path / "x")])
        except SystemExit as e:
            code = e.code
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--temperature" in err[0], err


def test_hopf_points_move_with_temperature():
    """The 6.3 and 15 °C rows of the table in docs/dynamics.md."""
    from hh_jax import analysis as A

    for T, want in ((6.3, [9.775438, 154.522434]), (15.0, [14.658502, 155.010682])):
        got = np.asarray(A.hopf_points(HHParams.hh1952(temperature=T), I_max=400.0, num=201))
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-6)

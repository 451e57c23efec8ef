"""The simulate family (simulate, simulate_chunked, simulate_sharded): one set of argument checks,
traced t0/dt (one compilation for every start time), in-jit parameter checks, working-dtype
casts, memory estimates up front (issue 12)."""

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
from hh_jax import HHParams

from compile_count import count_compiles

P = HHParams


# --- 1. t0 and dt are traced: one compilation serves them all ---------------------------------

def _kw(path) -> dict:
    """simulate keywords for a path: a stepper (backend chosen automatically) or a backend."""
    return dict(backend=path) if isinstance(path, hh_jax.AbstractBackend) else dict(stepper=path)


STEPPERS = [
    pytest.param(hh_jax.ExpEuler(), id="fused"),
    pytest.param(hh_jax.ScanLoop(), id="scan"),
    pytest.param(hh_jax.RK4(), id="rk4"),
    pytest.param(diffrax.Tsit5(), id="diffrax"),
]


@pytest.mark.parametrize("stepper", STEPPERS)
def test_new_t0_and_dt_do_not_recompile(stepper):
    p = P(gNa=jnp.array([120.0, 110.0]))
    stim = hh_jax.Step(10.0, onset=0.3, offset=0.8)
    kw = dict(**_kw(stepper), record=("V",), max_spikes=2)
    hh_jax.simulate(p, stim, duration=0.5, dt=0.01, t0=0.0, **kw)  # warm-up (compiles)
    with count_compiles() as n:
        rs = [hh_jax.simulate(p, stim, duration=50 * dt, dt=dt, t0=t0, **kw)
              for t0, dt in ((0.1, 0.01), (1.7, 0.02), (-3.0, 0.005), (12.25, 0.01), (1e3, 0.025))]
        jax.block_until_ready(rs)
    assert n[0] == 0
    # ... and the results are those of each t0/dt (not of the first call's)
    assert [r.dt for r in rs] == [0.01, 0.02, 0.005, 0.01, 0.025]
    np.testing.assert_allclose(np.asarray(rs[1].t)[[0, -1]], [1.7, 2.7])
    np.testing.assert_allclose(np.asarray(rs[4].t)[[0, -1]], [1e3, 1e3 + 1.25])


def test_simulate_under_jit_with_traced_t0_traces_once():
    p = P()

    @jax.jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def run(t0, y0):
        r = hh_jax.simulate(p, hh_jax.Step(10.0, onset=1.0, offset=1.5), duration=0.01,
                            dt=0.01, t0=t0, y0=y0, record=())
        return r.final_state

    y = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float64), hh_jax.steady_state_at(-65.0))
    ref = y
    for k in range(5):  # a closed loop of one-step calls
        y = run(jnp.asarray(0.01 * k), y)
        ref = hh_jax.simulate(p, hh_jax.Step(10.0, onset=1.0, offset=1.5), duration=0.01,
                              dt=0.01, t0=0.01 * k, y0=ref, record=()).final_state
    np.testing.assert_allclose(np.asarray(y.V), np.asarray(ref.V), rtol=0, atol=1e-12)


def test_fused_kernel_takes_t0_under_vmap():
    """t0 is a kernel operand: vmapped over start times, each batch uses its own."""
    p = P()
    stim = hh_jax.Step(20.0, onset=1.0, offset=2.0)
    f = jax.vmap(lambda t0: hh_jax.simulate(p, stim, duration=3.0, dt=0.01, t0=t0, record=(),
                                            max_spikes=1).spike_times[0])
    got = f(jnp.array([0.0, -0.5]))
    ref = [hh_jax.simulate(p, stim, duration=3.0, dt=0.01, t0=t0, record=(), max_spikes=1,
                           backend=hh_jax.ScanLoop()).spike_times[0] for t0 in (0.0, -0.5)]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    assert not np.allclose(got[0], got[1])


def test_sharded_new_t0_does_not_recompile():
    p = P(gNa=jnp.array([120.0, 110.0]))
    hh_jax.simulate_sharded(p, 10.0, duration=0.2, dt=0.01, t0=0.0)
    with count_compiles() as n:
        jax.block_until_ready([hh_jax.simulate_sharded(p, 10.0, duration=0.2, dt=0.01, t0=t0)
                               for t0 in (1.0, 2.0, 3.5)])
    assert n[0] == 0


# --- 2. one set of checks for the whole simulate family ---------------------------------------

def _simulate(**kw):
    args = dict(duration=1.0, dt=0.01)
    args.update(kw)
    return hh_jax.simulate(P(), 10.0, **args)


def _chunked(tmp, **kw):
    args = dict(duration=1.0, dt=0.01, out=tmp, progress=False)
    args.update(kw)
    return hh_jax.simulate_chunked(P(), 10.0, **args)


def _sharded(**kw):
    args = dict(duration=1.0, dt=0.01)
    args.update(kw)
    return hh_jax.simulate_sharded(P(), 10.0, **args)


NAN, INF = float("nan"), float("inf")
# (id, keyword arguments, error type, regex); `record_every` rows also set record, which
# simulate_chunked needs for record_every to matter
BAD_FAMILY = [
    ("t0 NaN", dict(t0=NAN), ValueError, r"t0 must be a finite number \(ms\), got nan"),
    ("t0 inf", dict(t0=INF), ValueError, r"t0 must be a finite number \(ms\), got inf"),
    ("t0 -inf", dict(t0=-INF), ValueError, r"t0 must be a finite number \(ms\), got -inf"),
    ("t0 bool", dict(t0=True), ValueError, r"t0 must be a finite number \(ms\), got True"),
    ("t0 string", dict(t0="0"), ValueError, r"t0 must be a finite number \(ms\), got '0'"),
    ("t0 None", dict(t0=None), ValueError, r"t0 must be a finite number \(ms\), got None"),
    ("t0 array", dict(t0=np.zeros(2)), ValueError, r"t0 must be a finite number \(ms\)"),
    ("t0 NaN 0-d array", dict(t0=jnp.asarray(NAN)), ValueError, r"t0 must be a finite number \(ms\), got nan"),
    ("dt negative", dict(dt=-0.01), ValueError, r"dt must be a positive finite number \(ms\), got -0\.01"),
    ("dt zero", dict(dt=0.0), ValueError, r"dt must be a positive finite number \(ms\), got 0\.0"),
    ("dt NaN", dict(dt=NAN), ValueError, r"dt must be a positive finite number \(ms\), got nan"),
    ("dt inf", dict(dt=INF), ValueError, r"dt must be a positive finite number \(ms\), got inf"),
    ("dt bool", dict(dt=True), TypeError, r"dt must be a number \(ms\), got True"),
    ("dt string", dict(dt="0.01"), TypeError, r"dt must be a number \(ms\), got '0\.01'"),
    ("duration negative", dict(duration=-1.0), ValueError, r"duration must be a positive finite number \(ms\), got -1\.0"),
    ("duration NaN", dict(duration=NAN), ValueError, r"duration must be a positive finite number \(ms\), got nan"),
    ("duration inf", dict(duration=INF), ValueError, r"duration must be a positive finite number \(ms\), got inf"),
    ("duration bool", dict(duration=True), TypeError, r"duration must be a number \(ms\), got True"),
    ("duration string", dict(duration="1"), TypeError, r"duration must be a number \(ms\), got '1'"),
    ("duration not a whole number of steps", dict(duration=1.0, dt=0.03), ValueError, r"duration \(1\.0 ms\) must be a whole number of steps dt \(0\.03 ms\)"),
    ("y0 tuple", dict(y0=(-65.0, 0.05, 0.6, 0.32)), TypeError, r"y0 must be an HHState, got tuple"),
    ("y0 NaN", dict(y0=hh_jax.HHState(V=NAN, m=0.05, h=0.6, n=0.32)), ValueError, r"y0\.V must be finite"),
    ("y0 gate > 1", dict(y0=hh_jax.HHState(V=-65.0, m=1.5, h=0.6, n=0.32)), ValueError, r"y0\.m \(a gate\) must lie in \[0, 1\]"),
    ("record unknown", dict(record=("Q",)), ValueError, r"record: unknown variable\(s\) \['Q'\]"),
    ("record None", dict(record=None), TypeError, r"record must be a sequence of names .*got None; pass record=\(\) to record nothing"),
    ("record number", dict(record=3), TypeError, r"record must be a sequence of names \(e\.g\. \('V', 'm'\)\), got 3"),
    ("record_every 0", dict(record=("V",), record_every=0), ValueError, r"record_every must be an integer >= 1, got 0"),
    ("record_every float", dict(record=("V",), record_every=2.5), ValueError, r"record_every must be an integer >= 1, got 2\.5"),
    ("max_spikes negative", dict(max_spikes=-1), ValueError, r"max_spikes must be an integer >= 0, got -1"),
    ("max_spikes bool", dict(max_spikes=True), ValueError, r"max_spikes must be an integer >= 0, got True"),
    ("throw string", dict(throw="yes"), TypeError, r"throw must be a bool, got 'yes'"),
]
ENTRY_POINTS = ["simulate", "simulate_chunked", "simulate_sharded"]


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("kw, exc, pattern", [r[1:] for r in BAD_FAMILY], ids=[r[0] for r in BAD_FAMILY])
def test_family_rejects_bad_values_alike(entry, kw, exc, pattern, tmp_path):
    call = {"simulate": _simulate, "simulate_sharded": _sharded,
            "simulate_chunked": lambda **k: _chunked(tmp_path / "run", **k)}[entry]
    with pytest.raises(exc, match=pattern):
        call(**kw)
    assert not (tmp_path / "run" / "chunk_00000.npz").exists()  # nothing ran


# --- 3. invalid traced parameters are caught inside jit ----------------------------------------

BAD_TRACED = [
    ("C", 0.0, r"HHParams\.C \(capacitance, uF/cm\^2\) must be > 0"),
    ("C", -1.0, r"HHParams\.C \(capacitance, uF/cm\^2\) must be > 0"),
    ("gNa", -5.0, r"HHParams\.gNa \(conductance, mS/cm\^2\) must be >= 0"),
    ("gK", -1.0, r"HHParams\.gK \(conductance, mS/cm\^2\) must be >= 0"),
    ("gL", -0.1, r"HHParams\.gL \(conductance, mS/cm\^2\) must be >= 0"),
    ("V_th", NAN, r"HHParams\.V_th must be finite"),
]
PATHS = [("fused", hh_jax.ExpEuler()), ("scan", hh_jax.ScanLoop()), ("diffrax", diffrax.Tsit5())]


def _traced_run(field, stepper, throw):
    @jax.jit
    def run(value):
        p = P(**{field: value})
        return hh_jax.simulate(p, 10.0, duration=0.5, dt=0.01, **_kw(stepper), throw=throw, record=("V",))

    return run


CASES = [pytest.param(*r, PATHS[0][1], id=f"{r[0]}={r[1]}-fused") for r in BAD_TRACED] + [
    pytest.param(*BAD_TRACED[1], st, id=f"C=-1-{name}") for name, st in PATHS[1:]
]


@pytest.mark.parametrize("field, value, pattern, stepper", CASES)
def test_invalid_traced_params_raise_naming_the_field(field, value, pattern, stepper):
    with pytest.raises(Exception, match=pattern):
        jax.block_until_ready(_traced_run(field, stepper, True)(jnp.asarray(value)))
    assert not bool(_traced_run(field, stepper, False)(jnp.asarray(value)).finite)


def test_valid_traced_params_run_and_differentiate():
    r = _traced_run("gK", hh_jax.ExpEuler(), True)(jnp.asarray(36.0))
    ref = hh_jax.simulate(P(), 10.0, duration=0.5, dt=0.01)
    np.testing.assert_allclose(r.V, ref.V, rtol=0, atol=1e-12)
    assert bool(r.finite)
    g = jax.grad(lambda gK: hh_jax.simulate(P(gK=gK), 10.0, duration=2.0, dt=0.01).V[-1])(36.0)
    assert np.isfinite(g)
    # vmapped over a population of parameters: the bad neuron fails the whole run
    f = jax.vmap(lambda C: hh_jax.simulate(P(C=C), 10.0, duration=1.0, dt=0.01, throw=False, record=()).finite)
    np.testing.assert_array_equal(f(jnp.array([1.0, -1.0])), [True, False])


# --- 4. stimulus and y0 in the working dtype, on every path -----------------------------------

DTYPE_PATHS = [("fused", hh_jax.ExpEuler()), ("scan", hh_jax.ScanLoop()),
               ("rk4", hh_jax.RK4()), ("diffrax", diffrax.Tsit5())]
STIMULI = [("python float", 10.0), ("Sine", hh_jax.Sine(5.0, frequency=0.1, offset=5.0)),
           ("float64 Sampled", hh_jax.Sampled(np.full(101, 10.0), dt=0.01))]
# every stimulus on the kernel and the scan loop; one on the other paths (compiling is slow)
DTYPE_CASES = [pytest.param(st, stim, id=f"{sn}-{pn}") for pn, st in DTYPE_PATHS[:2] for sn, stim in STIMULI] + [
    pytest.param(st, STIMULI[0][1], id=f"python float-{pn}") for pn, st in DTYPE_PATHS[2:]]


@pytest.mark.parametrize("stepper", [p[1] for p in DTYPE_PATHS], ids=[p[0] for p in DTYPE_PATHS])
def test_float32_current_with_float64_params(stepper):
    kw = dict(duration=0.5, dt=0.01, **_kw(stepper), max_spikes=2)
    r = hh_jax.simulate(P(), jnp.full(2, 10.0, jnp.float32), **kw)  # was: FFI "bad operands"
    ref = hh_jax.simulate(P(), jnp.full(2, 10.0), **kw)
    assert r.V.dtype == jnp.float64
    np.testing.assert_allclose(r.V, ref.V, rtol=0, atol=1e-12)
    if isinstance(stepper, hh_jax.ExpEuler):  # grad: the kernel's JVP is the scan loop's
        g = jax.grad(lambda a: hh_jax.simulate(P(), a * jnp.ones(2, jnp.float32), **kw).V[-1, 0])(jnp.float32(10.0))
        assert g.dtype == jnp.float32 and np.isfinite(g)


@pytest.mark.parametrize("stepper, stim", DTYPE_CASES)
def test_float32_params_run_in_float32_under_x64(stepper, stim):
    p32 = P().astype(jnp.float32)
    kw = dict(duration=0.5, dt=0.01, **_kw(stepper), max_spikes=2)
    r = hh_jax.simulate(p32, stim, **kw)  # was: a dtype-promotion or scan carry-type error
    assert r.V.dtype == r.final_state.m.dtype == r.spike_times.dtype == jnp.float32
    ref = hh_jax.simulate(P(), stim, **kw)
    np.testing.assert_allclose(r.V, ref.V, rtol=0, atol=1e-3)
    if isinstance(stepper, hh_jax.ExpEuler):
        g = jax.grad(lambda gK: hh_jax.simulate(p32.replace(gK=gK), stim, **kw).V[-1])(jnp.float32(36.0))
        assert g.dtype == jnp.float32 and np.isfinite(g)


def test_python_float_y0_follows_float32_params_and_array_y0_promotes():
    p32 = P().astype(jnp.float32)
    y = hh_jax.HHState(V=-65.0, m=0.05, h=0.6, n=0.32)
    assert hh_jax.simulate(p32, 10.0, duration=0.1, dt=0.01, y0=y).V.dtype == jnp.float32
    y64 = hh_jax.steady_state_at(jnp.asarray(-65.0, jnp.float64))
    for stepper in (hh_jax.ExpEuler(), diffrax.Tsit5()):
        r = hh_jax.simulate(p32, 10.0, duration=0.1, dt=0.01, y0=y64, stepper=stepper)
        assert r.V.dtype == jnp.float64
    r = hh_jax.simulate_sharded(p32, 10.0, duration=0.1, dt=0.01, y0=y)
    assert r.V.dtype == jnp.float32


# --- 5. memory up front -----------------------------------------------------------------------

@pytest.mark.parametrize("entry", ["simulate", "simulate_sharded"])
def test_a_run_that_cannot_fit_is_refused_before_allocating(entry):
    n = 10**7
    I = jnp.full((n,), 10.0)  # 80 MB; the run would need ~8 TB (V at every step for 1000 ms)
    f = getattr(hh_jax, entry)
    with count_compiles() as compiles:
        with pytest.raises(ValueError, match=r"needs at least [\d.e+]+ GiB \(traces [\d.e+]+ GiB.*10000000 neurons, "
                                             r"100000 steps\) but only [\d.e+]+ GiB of .*memory is available"):
            f(P(), I, duration=1000.0, dt=0.01, record=("V",))
    assert compiles[0] == 0  # refused before anything compiled (or ran)


def test_default_max_spikes_is_bounded():
    from hh_jax._simulate_checks import MAX_SPIKES_CAP

    # 10^4 neurons x 1000 s asked for 40 GB of spike times (a row per 2 ms); now 1000 rows
    out = jax.eval_shape(lambda: hh_jax.simulate(P(), jnp.full((10**4,), 10.0), duration=1e6, dt=0.01,
                                                 record=()))
    assert out.spike_times.shape == (MAX_SPIKES_CAP, 10**4) == (1000, 10**4)
    assert hh_jax.simulate(P(), 10.0, duration=100.0, dt=0.01, record=()).spike_times.shape == (51,)
    # truncation is flagged, counts stay exact
    r = hh_jax.simulate(P(), 10.0, duration=100.0, dt=0.01, record=(), max_spikes=2)
    assert bool(r.spike_overflow) and int(r.spike_count) > 2


# --- 6. small things: longdouble / bool parameters, float32 dt underflow ----------------------

@pytest.mark.parametrize("kw, pattern", [
    (dict(gNa=np.longdouble(120.0)), r"HHParams\.gNa: dtype float128 \(long double\) is not supported"),
    (dict(C=np.full(3, 1.0, np.longdouble)), r"HHParams\.C: dtype float128 \(long double\) is not supported"),
    (dict(gK=True), r"HHParams\.gK must be a number or a float array, got a bool \(True\)"),
    (dict(gL=np.array([True, False])), r"HHParams\.gL must be a number or a float array, got a bool"),
], ids=["longdouble scalar", "longdouble array", "bool conductance", "bool array"])
def test_params_reject_longdouble_and_bool_naming_the_field(kw, pattern):
    if np.dtype(np.longdouble).itemsize <= 8 and "long" in pattern:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match=pattern):
        P(**kw)
    with pytest.raises(TypeError, match=pattern):
        P().replace(**kw)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_float32_dt_that_underflows_or_does_not_advance_the_clock(entry, tmp_path, float32):
    p = P().astype(jnp.float32)
    run = {"simulate": hh_jax.simulate, "simulate_sharded": hh_jax.simulate_sharded,
           "simulate_chunked": lambda *a, **k: hh_jax.simulate_chunked(*a, out=tmp_path, progress=False, **k)}[entry]
    with pytest.raises(ValueError, match=r"dt \(1e-50 ms\) is 0 in the working dtype float32"):
        run(p, 10.0, duration=1e-50, dt=1e-50)
    if entry != "simulate_chunked":  # (chunks run from a local time 0)
        with pytest.raises(ValueError, match=r"dt \(0\.01 ms\) is below the resolution of float32 at t = 1000000\.0 ms"):
            run(p, 10.0, duration=0.1, dt=0.01, t0=1e6)
    # in float64 the same small step is fine
    with jax.enable_x64(True):
        r = hh_jax.simulate(P(), 10.0, duration=1e-50, dt=1e-50, record=())
        assert r.dt == 1e-50


# --- found in review of the merged change -------------------------------------------------


def test_chunked_default_max_spikes_keeps_every_spike_time(tmp_path):
    """`simulate`'s cap on its default (1000 rows) is not applied per chunk: a 20 s chunk at
    70 Hz keeps all ~1400 spike times (the capped default kept the first 1000, silently)."""
    r = hh_jax.simulate_chunked(P(), 10.0, duration=20_000.0, dt=0.2, chunk_steps=100_000,
                                out=tmp_path / "run", progress=False)
    table = r.spike_table()
    assert int(r.spike_count) > 1000 and len(table) == int(r.spike_count)
    assert table[-1, 1] > 19_900.0


def test_chunked_warns_once_when_a_chunk_overflows_its_spike_rows(tmp_path):
    with pytest.warns(UserWarning, match=r"more spikes per neuron \(\d+\) than max_spikes=1") as caught:
        r = hh_jax.simulate_chunked(P(), 10.0, duration=100.0, dt=0.01, chunk_steps=5000,
                                    max_spikes=1, out=tmp_path / "run", progress=False)
    assert len([w for w in caught if "max_spikes" in str(w.message)]) == 1
    assert int(r.spike_count) > 5


@pytest.mark.parametrize("field, value", [("C", -1.0), ("C", 0.0), ("gK", -36.0), ("gNa", -1.0), ("V_th", np.nan)])
def test_invalid_params_set_with_tree_at_raise_naming_the_field(field, value):
    """`eqx.tree_at` bypasses the constructor; concrete fields are checked before the run."""
    bad = eqx.tree_at(lambda p: getattr(p, field), P(), jnp.asarray(value))
    with pytest.raises(ValueError, match=rf"HHParams\.{field}"):
        hh_jax.simulate(bad, 10.0, duration=1.0, dt=0.01)
    with pytest.raises(ValueError, match=rf"HHParams\.{field}"):
        hh_jax.simulate_sharded(bad, 10.0, duration=1.0, dt=0.01)


@pytest.mark.parametrize("entry", ["sharded", "jit"])
def test_sampled_stimulus_grid_is_checked_with_a_traced_t0(entry):
    """simulate_sharded (which traces t0) and simulate under the caller's jit check a sampled
    stimulus's grid as simulate does (they ran with a stimulus that did not cover the run)."""
    short = hh_jax.Sampled(np.zeros(1001), dt=0.01)  # 0..10 ms
    off_grid = hh_jax.Sampled(np.zeros(3001), dt=0.015)
    if entry == "sharded":
        run = lambda s: hh_jax.simulate_sharded(P(), s, duration=20.0, dt=0.01)  # noqa: E731
        with pytest.raises(ValueError, match=r"stimulus samples cover \[0\.0, 10\.01\] ms"):
            run(short)
    else:
        run = lambda s: jax.jit(lambda t0: hh_jax.simulate(P(), s, duration=20.0, dt=0.01, t0=t0).V)(0.0)  # noqa: E731
    with pytest.raises(ValueError, match=r"not a whole multiple of the simulation dt"):
        run(off_grid)


def test_sharded_per_neuron_constant_stays_tabulated_once():
    """The sharding slice forwards `time_invariant`: a per-neuron constant over 4000 neurons ×
    10 000 steps (beyond the kernel's per-step table limit) still runs in the fused kernel."""
    I = jnp.linspace(0.0, 20.0, 4000)
    kw = dict(duration=100.0, dt=0.01, record=(), backend=hh_jax.FusedCPU())
    a = hh_jax.simulate_sharded(P(), hh_jax.Constant(I), **kw)
    b = hh_jax.simulate(P(), hh_jax.Constant(I), **kw)
    np.testing.assert_array_equal(np.asarray(a.spike_count), np.asarray(b.spike_count))


def test_chunked_float32_params_run_in_float32(tmp_path):
    p = P().astype(jnp.float32) if hasattr(P(), "astype") else jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), P())
    r = hh_jax.simulate_chunked(p, 10.0, duration=10.0, dt=0.01, chunk_steps=500,
                                out=tmp_path / "run", progress=False)
    assert r.final_state.V.dtype == jnp.float32
    assert hh_jax.simulate(p, 10.0, duration=10.0, dt=0.01).final_state.V.dtype == jnp.float32

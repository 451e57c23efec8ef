"""Bad input, everywhere public: one test per row of docs/bad_input.md.

`ROWS` is the table: (public name, invalid input, callable, error type, message fragment). Each
row checks the type and that the message names the culprit. `test_docs_table_is_in_sync` keeps
docs/bad_input.md equal to the table (regenerate it with
``PYTHONPATH=. python tests/test_bad_input.py``), and `test_every_public_name_has_a_row` makes
a new public name fail until it has a row (or an entry in `NO_INPUT`).

Rows already covered elsewhere (tests/test_params.py, test_stimulus.py, test_simulate.py) are
listed once here as the table's representative; the other files hold their variants.

Data-dependent failures inside jit (values unknown until run time) are the second table,
`RUNTIME_ROWS`: they surface through `eqx.error_if` (with ``throw=True``) or
`SimulationResult.finite` (with ``throw=False``), never as a silent NaN.
"""

import math
import os
import re
import sys

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hh_jax
import hh_jax.analysis
import hh_jax.fit
import hh_jax.plot
from hh_jax import HHParams

import bad_input_rows

P = HHParams
Y = hh_jax.HHState(V=-65.0, m=0.05, h=0.6, n=0.32)
KEY = jax.random.key(0)
NAN = float("nan")


def _raise(error):
    """Raise `error` (a row whose case cannot arise on this machine states its message)."""
    raise error


def _sim(stimulus=10.0, params=None, **kw):
    args = dict(duration=1.0, dt=0.01)
    args.update(kw)
    return hh_jax.simulate(P(gNa=jnp.array([120.0, 100.0])) if params is None else params, stimulus, **args)


def _result(**kw):
    return hh_jax.simulate(P(), 10.0, duration=1.0, dt=0.01, **kw)


# (public name, invalid input, callable, exception type, regex the message must match)
ROWS = [
    # parameters
    ("HHParams", "C <= 0", lambda: P(C=0.0), ValueError, r"HHParams\.C .*must be > 0"),
    ("HHParams", "negative conductance", lambda: P(gK=-1.0), ValueError, r"HHParams\.gK .*>= 0"),
    ("HHParams", "non-finite field", lambda: P(ENa=NAN), ValueError, r"HHParams\.ENa must be finite"),
    ("HHParams", "string field", lambda: P(gNa="120"), TypeError, r"HHParams\.gNa must be a number"),
    ("HHParams", "complex field", lambda: P(EK=1j), TypeError, r"HHParams\.EK must be real"),
    ("HHParams", "fields that do not broadcast", lambda: P(gNa=np.ones(3), gK=np.ones(4)), ValueError, r"do not broadcast together: gNa\(3,\), gK\(4,\)"),
    ("HHParams", "positional arguments", lambda: P(1.0), TypeError, r"positional argument"),
    ("HHParams.from_preset", "unknown preset name", lambda: P.from_preset("hh1953"), ValueError, r"unknown preset 'hh1953'"),
    ("HHParams.replace", "unknown field name", lambda: P().replace(gX=1.0), ValueError, r"no field\(s\) \['gX'\]"),
    ("HHParams.astype", "non-float dtype", lambda: P().astype(jnp.int32), TypeError, r"astype: dtype must be a float dtype"),
    ("HHParams.astype", "unknown dtype", lambda: P().astype("foo"), TypeError, r"astype: dtype must be a float dtype, got 'foo'"),
    # rates
    ("alpha_m", "string V", lambda: hh_jax.alpha_m("a"), TypeError, r"alpha_m: V \(mV\)"),
    ("beta_m", "None V", lambda: hh_jax.beta_m(None), TypeError, r"beta_m: V \(mV\)"),
    ("alpha_h", "complex V", lambda: hh_jax.alpha_h(jnp.asarray(1j)), TypeError, r"alpha_h: V \(mV\) must be real"),
    ("beta_h", "string V", lambda: hh_jax.beta_h("a"), TypeError, r"beta_h: V \(mV\)"),
    ("alpha_n", "string V", lambda: hh_jax.alpha_n("a"), TypeError, r"alpha_n: V \(mV\)"),
    ("beta_n", "string V", lambda: hh_jax.beta_n("a"), TypeError, r"beta_n: V \(mV\)"),
    ("bernoulli", "string u", lambda: hh_jax.bernoulli("a"), TypeError, r"bernoulli: u"),
    ("exprel", "string z", lambda: hh_jax.exprel("a"), TypeError, r"exprel: z"),
    ("steady_state", "unknown gate", lambda: hh_jax.steady_state("x", -65.0), ValueError, r"unknown gate 'x'"),
    ("steady_state", "gate not a string", lambda: hh_jax.steady_state(["m"], -65.0), ValueError, r"unknown gate \['m'\]"),
    ("steady_state", "string V", lambda: hh_jax.steady_state("m", "a"), TypeError, r"steady_state: V \(mV\)"),
    ("time_constant", "unknown gate", lambda: hh_jax.time_constant("q", -65.0), ValueError, r"unknown gate 'q'"),
    ("time_constant", "None V", lambda: hh_jax.time_constant("n", None), TypeError, r"time_constant: V \(mV\)"),
    # state, vector field
    ("HHState", "string field", lambda: hh_jax.HHState("a", 0.0, 0.0, 0.0), TypeError, r"HHState\.V must be a number"),
    ("HHState", "fields that do not broadcast", lambda: hh_jax.HHState(np.ones(2), np.ones(3), 0.0, 0.0), ValueError, r"HHState fields do not broadcast together: V\(2,\), m\(3,\)"),
    ("currents", "params not HHParams", lambda: hh_jax.currents({"gNa": 120.0}, Y), TypeError, r"currents: params must be an HHParams, got dict"),
    ("conductances", "y not HHState", lambda: hh_jax.conductances(P(), -65.0), TypeError, r"conductances: y must be an HHState, got float"),
    ("derivatives", "I does not broadcast", lambda: hh_jax.derivatives(P(gNa=np.full(2, 120.0)), Y, np.ones(3)), ValueError, r"derivatives: shapes do not broadcast: I \(3,\), params \(2,\)"),
    ("derivatives", "string I", lambda: hh_jax.derivatives(P(), Y, "10"), TypeError, r"derivatives: I \(uA/cm\^2\)"),
    ("vector_field", "args not a pair", lambda: hh_jax.vector_field(0.0, Y, P()), TypeError, r"vector_field: args must be a pair \(params, stimulus\), got HHParams"),
    ("vector_field", "args of length 3", lambda: hh_jax.vector_field(0.0, Y, (P(), 1.0, 2.0)), TypeError, r"vector_field: args must be a pair.*of length 3"),
    ("vector_field", "args[0] not HHParams", lambda: hh_jax.vector_field(0.0, Y, (10.0, P())), TypeError, r"vector_field: args\[0\] must be an HHParams, got float"),
    # initial states
    ("steady_state_at", "string V", lambda: hh_jax.steady_state_at("a"), TypeError, r"steady_state_at: V \(mV\)"),
    ("steady_state_at", "non-finite V", lambda: hh_jax.steady_state_at(NAN), ValueError, r"steady_state_at: V \(mV\) must be finite"),
    ("steady_state_at", "V does not broadcast to shape", lambda: hh_jax.steady_state_at(np.ones(2), shape=3), ValueError, r"V of shape \(2,\) does not broadcast to shape=\(3,\)"),
    ("steady_state_at", "zero size", lambda: hh_jax.steady_state_at(shape=0), ValueError, r"shape must have positive sizes, got \(0,\)"),
    ("steady_state_at", "shape not ints", lambda: hh_jax.steady_state_at(shape="a"), TypeError, r"shape must be an int or a tuple of ints, got 'a'"),
    ("brainpy_initial_state", "key not a PRNG key", lambda: hh_jax.brainpy_initial_state(0, 3), TypeError, r"brainpy_initial_state: key must be a jax.random key"),
    ("brainpy_initial_state", "negative size", lambda: hh_jax.brainpy_initial_state(KEY, -1), ValueError, r"shape must have positive sizes, got \(-1,\)"),
    ("equilibrium", "params not HHParams", lambda: hh_jax.equilibrium("hh1952"), TypeError, r"equilibrium: params must be an HHParams, got str"),
    ("equilibrium", "I does not broadcast", lambda: hh_jax.equilibrium(P(gNa=np.full(2, 120.0)), np.ones(3)), ValueError, r"equilibrium: shapes do not broadcast: params \(2,\), I \(3,\)"),
    ("equilibrium", "non-finite I", lambda: hh_jax.equilibrium(P(), NAN), ValueError, r"equilibrium: I \(uA/cm\^2\) must be finite"),
    ("equilibrium", "string I", lambda: hh_jax.equilibrium(P(), "a"), TypeError, r"equilibrium: I \(uA/cm\^2\)"),
    ("equilibrium", "rtol <= 0", lambda: hh_jax.equilibrium(P(), rtol=-1.0), ValueError, r"equilibrium: rtol must be a positive number"),
    # steppers
    ("AbstractStepper", "instantiating the abstract class", lambda: hh_jax.AbstractStepper(), TypeError, r"abstract"),
    ("ExpEuler", "staggered not a bool", lambda: hh_jax.ExpEuler(staggered="no"), TypeError, r"ExpEuler\.staggered must be a bool"),
    ("simulate", "backend=FusedCPU() with a per-neuron stimulus too large to tabulate", lambda: hh_jax.simulate(P(), hh_jax.WhiteNoise(jax.random.key(0), sigma=1.0, dt=0.01, shape=(20000,)), duration=200.0, dt=0.01, backend=hh_jax.FusedCPU()), ValueError, r"backend FusedCPU cannot run this simulation: .*exceeds"),
    ("simulate", "backend=FusedCPU() with a stepper other than ExpEuler", lambda: _sim(stepper=hh_jax.RK4(), backend=hh_jax.FusedCPU()), ValueError, r"backend FusedCPU cannot run this simulation: it runs ExpEuler only, got stepper=RK4\(\)"),
    ("simulate", "backend=ScanLoop() with a Diffrax solver as stepper", lambda: _sim(stepper=diffrax.Tsit5(), backend=hh_jax.ScanLoop()), ValueError, r"backend ScanLoop cannot run this simulation: it runs a fixed-step stepper .*got stepper=Tsit5\(\)"),
    ("simulate", "a DiffraxAdapter with a fixed-step stepper", lambda: _sim(stepper=hh_jax.RK4(), backend=hh_jax.DiffraxAdapter(diffrax.Tsit5())), ValueError, r"backend DiffraxAdapter cannot run this simulation: it runs its own solver Tsit5\(\); stepper=RK4\(\) contradicts it"),
    ("simulate", "backend not an AbstractBackend", lambda: _sim(backend="scan"), TypeError, r"backend must be an AbstractBackend .*got 'scan'"),
    ("simulate", "a removed keyword (checkpoint=, now ScanLoop(checkpoint=...))", lambda: _sim(checkpoint=True), TypeError, r"unexpected keyword argument 'checkpoint'"),
    ("AbstractBackend", "instantiating the abstract class", lambda: hh_jax.AbstractBackend(), TypeError, r"abstract"),
    ("ScanLoop", "unroll < 1", lambda: hh_jax.ScanLoop(unroll=0), ValueError, r"ScanLoop\.unroll must be an integer >= 1, got 0"),
    ("ScanLoop", "checkpoint not a bool", lambda: hh_jax.ScanLoop(checkpoint="yes"), TypeError, r"ScanLoop\.checkpoint must be a bool, got 'yes'"),
    ("FusedCPU", "derivative neither a FusedAdjoint nor a ScanLoop", lambda: hh_jax.FusedCPU(derivative=hh_jax.RK4()), TypeError, r"FusedCPU\.derivative must be a FusedAdjoint or a ScanLoop, got RK4\(\)"),
    ("FusedAdjoint", "checkpoint_every < 1", lambda: hh_jax.FusedAdjoint(checkpoint_every=0), ValueError, r"FusedAdjoint\.checkpoint_every must be an integer >= 1, got 0"),
    ("FusedAdjoint", "tangent not a ScanLoop", lambda: hh_jax.FusedAdjoint(tangent=hh_jax.RK4()), TypeError, r"FusedAdjoint\.tangent must be a ScanLoop, got RK4\(\)"),
    ("simulate", "backend=PallasGPU() on a machine without a GPU", lambda: _sim(backend=hh_jax.PallasGPU()) if jax.default_backend() != "gpu" else _raise(ValueError("backend PallasGPU cannot run this simulation: it runs on a GPU only")), ValueError, r"backend PallasGPU cannot run this simulation: it runs on a GPU only"),
    ("PallasGPU", "block not a power of 2", lambda: hh_jax.PallasGPU(block=96), ValueError, r"PallasGPU\.block must be a power of 2 \(neurons per program\), got 96"),
    ("PallasGPU", "derivative not a ScanLoop", lambda: hh_jax.PallasGPU(derivative=hh_jax.RK4()), TypeError, r"PallasGPU\.derivative must be a ScanLoop, got RK4\(\)"),
    ("DiffraxAdapter", "solver not a Diffrax solver", lambda: hh_jax.DiffraxAdapter(hh_jax.RK4()), TypeError, r"DiffraxAdapter\.solver must be a diffrax\.AbstractSolver \(e\.g\. diffrax\.Tsit5\(\)\), got RK4\(\)"),
    ("DiffraxAdapter", "stepsize_controller not a Diffrax controller", lambda: hh_jax.DiffraxAdapter(diffrax.Tsit5(), stepsize_controller="pid"), TypeError, r"DiffraxAdapter\.stepsize_controller must be a diffrax\.AbstractStepSizeController .*got 'pid'"),
    ("DiffraxAdapter", "adjoint not a Diffrax adjoint", lambda: hh_jax.DiffraxAdapter(diffrax.Tsit5(), adjoint="backsolve"), TypeError, r"DiffraxAdapter\.adjoint must be a diffrax\.AbstractAdjoint .*got 'backsolve'"),
    ("DiffraxAdapter", "max_steps < 1", lambda: hh_jax.DiffraxAdapter(diffrax.Tsit5(), max_steps=0), ValueError, r"DiffraxAdapter\.max_steps must be an integer >= 1, got 0"),
    ("DiffraxAdapter", "population given as a string", lambda: hh_jax.DiffraxAdapter(diffrax.Tsit5(), population="vmap"), TypeError, r"DiffraxAdapter\.population must be hh_jax\.BatchedODE\(\) or hh_jax\.PerNeuronODE\(\), got 'vmap'"),
    ("AbstractPopulationMode", "instantiating the abstract class", lambda: hh_jax.AbstractPopulationMode(), TypeError, r"abstract"),
    ("simulate", "PerNeuronODE with a stimulus that is not per-neuron", lambda: _sim(hh_jax.Sampled(np.ones((200, 2)), dt=0.01), backend=hh_jax.DiffraxAdapter(diffrax.Tsit5(), population=hh_jax.PerNeuronODE())), ValueError, r"population=PerNeuronODE\(\) needs a stimulus whose arrays are scalars or per-neuron"),
    ("ExpEuler.step", "args not a pair", lambda: hh_jax.ExpEuler().step(0.0, Y, 0.01, P()), TypeError, r"ExpEuler\.step: args must be a pair"),
    ("RK4.step", "args not a pair", lambda: hh_jax.RK4().step(0.0, Y, 0.01, P()), TypeError, r"vector_field: args must be a pair"),
    ("ExpMidpoint.step", "args not a pair", lambda: hh_jax.ExpMidpoint().step(0.0, Y, 0.01, P()), TypeError, r"ExpMidpoint\.step: args must be a pair \(params, stimulus\), got HHParams"),
    ("ExpRK4.step", "args not a pair", lambda: hh_jax.ExpRK4().step(0.0, Y, 0.01, P()), TypeError, r"ExpRK4\.step: args must be a pair \(params, stimulus\), got HHParams"),
    ("Euler.step", "args[0] not HHParams", lambda: hh_jax.Euler().step(0.0, Y, 0.01, (None, 1.0)), TypeError, r"args\[0\] must be an HHParams, got NoneType"),
    ("STEPPERS", "unknown name", lambda: hh_jax.STEPPERS["rk45"], KeyError, r"rk45"),
    # stimuli
    ("AbstractStimulus", "instantiating the abstract class", lambda: hh_jax.AbstractStimulus(), TypeError, r"abstract"),
    ("Constant", "string amplitude", lambda: hh_jax.Constant("a"), TypeError, r"Constant\.amplitude must be a number"),
    ("Constant", "non-finite amplitude", lambda: hh_jax.Constant(NAN), ValueError, r"Constant\.amplitude must be finite"),
    ("Step", "non-finite onset", lambda: hh_jax.Step(1.0, onset=NAN), ValueError, r"Step\.onset must be a finite number"),
    ("Step", "offset <= onset (negative width)", lambda: hh_jax.Step(1.0, onset=5.0, offset=2.0), ValueError, r"Step\.offset \(2\.0\) must be > onset \(5\.0\)"),
    ("Sections", "durations not a sequence", lambda: hh_jax.Sections([1.0], 5.0), TypeError, r"Sections\.durations must be a 1-D sequence"),
    ("Sections", "negative duration", lambda: hh_jax.Sections([1.0], [-1.0]), ValueError, r"Sections\.durations must be a positive finite number"),
    ("Sections", "values/durations mismatch", lambda: hh_jax.Sections([1.0, 2.0], [1.0]), ValueError, r"Sections\.values must have one entry per duration"),
    ("Ramp", "t_end <= t_start (negative width)", lambda: hh_jax.Ramp(0.0, 1.0, t_start=5.0, t_end=1.0), ValueError, r"Ramp\.t_end \(1\.0\) must be > t_start"),
    ("Ramp", "string time", lambda: hh_jax.Ramp(0.0, 1.0, t_start=0.0, t_end="a"), TypeError, r"Ramp\.t_end must be a number"),
    ("PulseTrain", "negative width", lambda: hh_jax.PulseTrain([1.0], widths=-1.0, amplitudes=1.0), ValueError, r"PulseTrain\.widths must be > 0"),
    ("PulseTrain", "zero width", lambda: hh_jax.PulseTrain([1.0], widths=0.0, amplitudes=1.0), ValueError, r"PulseTrain\.widths must be > 0"),
    ("PulseTrain", "widths shape != times", lambda: hh_jax.PulseTrain([1.0, 2.0], widths=[1.0, 2.0, 3.0], amplitudes=1.0), ValueError, r"PulseTrain\.widths must be a number or have shape \(2,\), got \(3,\)"),
    ("PulseTrain", "non-finite time", lambda: hh_jax.PulseTrain([NAN], widths=1.0, amplitudes=1.0), ValueError, r"PulseTrain\.times must be finite"),
    ("PulseTrain", "2-D times", lambda: hh_jax.PulseTrain([[1.0]], widths=1.0, amplitudes=1.0), ValueError, r"PulseTrain\.times must be 1-D"),
    ("Sine", "frequency <= 0", lambda: hh_jax.Sine(1.0, frequency=-1.0), ValueError, r"Sine\.frequency \(Hz\) must be > 0"),
    ("Square", "frequency <= 0", lambda: hh_jax.Square(1.0, frequency=0.0), ValueError, r"Square\.frequency must be a positive finite number"),
    ("Square", "duty outside (0, 1)", lambda: hh_jax.Square(1.0, frequency=10.0, duty=0.0), ValueError, r"Square\.duty must be in \(0, 1\)"),
    ("Sampled", "no time axis", lambda: hh_jax.Sampled(1.0, dt=0.1), ValueError, r"Sampled\.values must have a leading time axis, got shape \(\)"),
    ("Sampled", "NaN sample", lambda: hh_jax.Sampled(np.array([1.0, NAN]), dt=0.1), ValueError, r"Sampled\.values must be finite"),
    ("Sampled", "dt <= 0", lambda: hh_jax.Sampled(np.ones(3), dt=-0.1), ValueError, r"Sampled\.dt must be a positive finite number"),
    ("Sampled", "interpolation given as a string", lambda: hh_jax.Sampled(np.ones(3), dt=0.1, interpolation="linear"), TypeError, r"Sampled\.interpolation must be hh_jax\.HoldSamples\(\) or hh_jax\.LinearSamples\(\), got 'linear'"),
    ("AbstractSampleInterpolation", "instantiating the abstract class", lambda: hh_jax.AbstractSampleInterpolation(), TypeError, r"abstract"),
    ("WhiteNoise", "key not a PRNG key", lambda: hh_jax.WhiteNoise(0, sigma=1.0, dt=0.1), TypeError, r"WhiteNoise\.key must be a jax.random key"),
    ("WhiteNoise", "negative sigma", lambda: hh_jax.WhiteNoise(KEY, sigma=-1.0, dt=0.1), ValueError, r"WhiteNoise\.sigma must be >= 0"),
    ("WhiteNoise", "sigma does not broadcast to shape", lambda: hh_jax.WhiteNoise(KEY, sigma=np.ones(2), dt=0.1, shape=3), ValueError, r"WhiteNoise\.sigma of shape \(2,\) does not broadcast to shape=\(3,\)"),
    ("WhiteNoise", "negative size", lambda: hh_jax.WhiteNoise(KEY, sigma=1.0, dt=0.1, shape=-1), ValueError, r"WhiteNoise\.shape must have positive sizes"),
    ("OUNoise", "tau <= 0", lambda: hh_jax.OUNoise(KEY, mean=0.0, sigma=1.0, tau=0.0, dt=0.1, duration=1.0), ValueError, r"OUNoise\.tau must be a positive finite number"),
    ("OUNoise", "duration <= 0", lambda: hh_jax.OUNoise(KEY, mean=0.0, sigma=1.0, tau=1.0, dt=0.1, duration=-1.0), ValueError, r"OUNoise\.duration must be a positive finite number"),
    ("OUNoise", "mean does not broadcast to shape", lambda: hh_jax.OUNoise(KEY, mean=np.ones(2), sigma=1.0, tau=1.0, dt=0.1, duration=1.0, shape=3), ValueError, r"OUNoise\.mean of shape \(2,\) does not broadcast to shape=\(3,\)"),
    ("OUNoise", "key not a PRNG key", lambda: hh_jax.OUNoise(None, mean=0.0, sigma=1.0, tau=1.0, dt=0.1, duration=1.0), TypeError, r"OUNoise\.key must be a jax.random key"),
    ("Sum", "no terms", lambda: hh_jax.Sum([]), ValueError, r"Sum needs at least one stimulus"),
    ("Sum", "adding a string (stimulus + 'a')", lambda: hh_jax.Constant(1.0) + "a", TypeError, r"Constant\.amplitude must be a number or a float array, got 'a'"),
    ("Scaled", "string factor", lambda: hh_jax.Scaled(hh_jax.Constant(1.0), "a"), TypeError, r"Scaled\.factor must be a number"),
    ("Scaled", "stimulus times stimulus", lambda: hh_jax.Constant(1.0) * hh_jax.Constant(2.0), TypeError, r"stimuli can be scaled by numbers, not multiplied together"),
    ("Stack", "no stimuli", lambda: hh_jax.Stack([]), ValueError, r"Stack needs at least one stimulus"),
    # simulate
    ("simulate", "params not HHParams", lambda: hh_jax.simulate({"gNa": 120.0}, 10.0, duration=1.0, dt=0.01), TypeError, r"params must be an HHParams, got dict"),
    ("simulate", "dt <= 0", lambda: _sim(dt=0.0), ValueError, r"dt must be a positive finite number \(ms\), got 0\.0"),
    ("simulate", "duration not a number", lambda: _sim(duration="10"), TypeError, r"duration must be a number \(ms\), got '10'"),
    ("simulate", "duration not a whole number of steps", lambda: _sim(duration=1.0, dt=0.03), ValueError, r"duration \(1\.0 ms\) must be a whole number of steps dt \(0\.03 ms\)"),
    ("simulate", "more steps than an int32 counter", lambda: _sim(duration=1e300), ValueError, r"exceeds the int32 step counter"),
    ("simulate", "non-finite t0", lambda: _sim(t0=math.inf), ValueError, r"t0 must be a finite number"),
    ("simulate", "stepper given by name", lambda: _sim(stepper="rk4"), TypeError, r"stepper must be an AbstractStepper"),
    ("simulate", "stimulus sampled at a dt that is not a multiple of dt", lambda: _sim(hh_jax.Sampled(np.ones(100), dt=0.015)), ValueError, r"stimulus is sampled with dt=0\.015 ms, which is not a whole multiple of the simulation dt=0\.01 ms"),
    ("simulate", "OU noise grid disagrees with dt", lambda: _sim(hh_jax.OUNoise(KEY, mean=0.0, sigma=1.0, tau=1.0, dt=0.025, duration=1.0)), ValueError, r"stimulus is sampled with dt=0\.025 ms"),
    ("simulate", "sampled stimulus shorter than the run", lambda: _sim(hh_jax.Sampled(np.ones(50), dt=0.01)), ValueError, r"stimulus samples cover \[0\.0, 0\.5\] ms but the simulation runs over \[0\.0, 1\.0\] ms"),
    ("simulate", "stimulus shape does not broadcast with params", lambda: _sim(np.ones(3)), ValueError, r"population shapes do not broadcast: params \(2,\), stimulus \(3,\)"),
    ("simulate", "noise population does not broadcast with params", lambda: _sim(hh_jax.WhiteNoise(KEY, sigma=1.0, dt=0.01, shape=3)), ValueError, r"population shapes do not broadcast: params \(2,\), stimulus \(3,\)"),
    ("simulate", "summed stimuli whose shapes do not broadcast", lambda: _sim(hh_jax.Constant(np.ones(2)) + hh_jax.Constant(np.ones(3))), ValueError, r"stimulus could not be evaluated at t=0\.0 ms: .*\(2,\), \(3,\)"),
    ("simulate", "stacked stimuli whose shapes do not broadcast", lambda: _sim(hh_jax.Stack([hh_jax.Constant(np.ones(2)), hh_jax.Constant(np.ones(3))])), ValueError, r"stimulus could not be evaluated at t=0\.0 ms: .*\(2,\), \(3,\)"),
    ("simulate", "non-finite constant stimulus", lambda: _sim(np.array([1.0, NAN])), ValueError, r"stimulus: Constant\.amplitude must be finite"),
    ("simulate", "y0 not an HHState", lambda: _sim(y0=(-65.0, 0.1, 0.6, 0.3)), TypeError, r"y0 must be an HHState, got tuple"),
    ("simulate", "y0 does not broadcast with params", lambda: _sim(y0=hh_jax.steady_state_at(shape=3)), ValueError, r"population shapes do not broadcast: params \(2,\), stimulus \(\), y0 \(3,\)"),
    ("simulate", "y0 gate outside [0, 1]", lambda: _sim(y0=hh_jax.HHState(-65.0, 1.5, 0.6, 0.3)), ValueError, r"y0\.m \(a gate\) must lie in \[0, 1\]"),
    ("simulate", "non-finite y0", lambda: _sim(y0=hh_jax.HHState(NAN, 0.05, 0.6, 0.3)), ValueError, r"y0\.V must be finite"),
    ("simulate", "unknown recorded name", lambda: _sim(record=("V", "Vm")), ValueError, r"record: unknown variable\(s\) \['Vm'\]"),
    ("simulate", "record_every not a positive int", lambda: _sim(record_every=2.5), ValueError, r"record_every must be an integer >= 1, got 2\.5"),
    ("simulate", "negative max_spikes", lambda: _sim(max_spikes=-1), ValueError, r"max_spikes must be an integer >= 0, got -1"),
    ("simulate", "throw not a bool", lambda: _sim(throw="no"), TypeError, r"throw must be a bool, got 'no'"),
    ("simulate", "spike_interpolation given as a string", lambda: _sim(spike_interpolation="linear"), TypeError, r"spike_interpolation must be hh_jax\.HermiteSpikes\(\) or hh_jax\.LinearSpikes\(\), got 'linear'"),
    ("AbstractSpikeInterpolation", "instantiating the abstract class", lambda: hh_jax.AbstractSpikeInterpolation(), TypeError, r"abstract"),
    ("SimulationResult.trace", "unknown name", lambda: _result().trace("X"), ValueError, r"unknown variable 'X'"),
    ("SimulationResult.trace", "name not recorded", lambda: _result().trace("m"), ValueError, r"'m' was not recorded; pass record=\(\.\.\., 'm'\)"),
    ("plot.voltage", "not a SimulationResult", lambda: hh_jax.plot.voltage("x"), TypeError, r"result must be a SimulationResult, got str"),
    ("plot.voltage", "neuron index out of range", lambda: hh_jax.plot.voltage(_result(), neurons=[99]), ValueError, r"neurons: index 99 out of range for 1 neuron"),
    ("plot.gates", "gates not recorded", lambda: hh_jax.plot.gates(_result()), ValueError, r"'m' was not recorded"),
]

# Public names with no input to validate (data, result containers built by hh_jax itself).
NO_INPUT = {
    "UNITS": "a dict of unit strings",
    "PRESETS": "a dict of preset names (see HHParams.from_preset)",
    "RECORDABLE": "a tuple of names (see simulate(record=...))",
    "OBSERVABLES": "the table of recordable names: unit, label, state variables needed, formula",
    "Observable": "a row of OBSERVABLES (built by hh_jax itself)",
    "Currents": "returned by currents(); not validated",
    "Conductances": "returned by conductances(); not validated",
    "SimulationResult": "returned by simulate(); see SimulationResult.trace",
    "ChunkedResult": "returned by simulate_chunked(); ChunkedResult.trace rejects an unrecorded name (test_chunked.py)",
    "HermiteSpikes": "a spike interpolation without fields; no input",
    "HoldSamples": "an interpolation of Sampled without fields; no input",
    "LinearSamples": "an interpolation of Sampled without fields; no input",
    "BatchedODE": "a population mode of DiffraxAdapter without fields; no input",
    "PerNeuronODE": "a population mode of DiffraxAdapter without fields; no input",
    "LinearSpikes": "a spike interpolation without fields; no input",
    "plot": "a package; see the plot.* rows",
}

# save/load and the subpackages analysis, fit, plot: tests/bad_input_rows.py
ROWS += bad_input_rows.ROWS
NO_INPUT.update(bad_input_rows.NO_INPUT)
SUBPACKAGES = ("analysis", "fit", "plot")


def _explode_euler(throw):
    return hh_jax.simulate(P(), 10.0, duration=50.0, dt=0.1, stepper=hh_jax.Euler(), throw=throw, record=("V",))


def _nan_mid_run(throw):
    """A sampled current with one NaN sample at t = 5 ms, built inside jit (so unchecked)."""

    @eqx.filter_jit
    def run(values):
        return hh_jax.simulate(P(), hh_jax.Sampled(values, dt=0.01), duration=10.0, dt=0.01, throw=throw)

    return run(jnp.full(1000, 5.0).at[500].set(jnp.nan))


def _traced_nan_params(throw):
    return eqx.filter_jit(lambda gNa: hh_jax.simulate(P(gNa=gNa), 10.0, duration=5.0, dt=0.01, throw=throw))(jnp.nan)


# (public name, failure inside jit, run(throw) -> result, message when throw=True)
RUNTIME_ROWS = [
    ("simulate", "explicit stepper diverges (Euler, dt = 0.1 ms)", _explode_euler, r"the state became NaN/Inf"),
    ("simulate", "NaN appears in a stimulus mid-run (traced Sampled values)", _nan_mid_run, r"the state became NaN/Inf"),
    ("simulate", "NaN parameter passed through jit (unchecked at construction)", _traced_nan_params, r"the state became NaN/Inf"),
]


def _render() -> str:
    lines = [
        "# Bad input: what each public function rejects",
        "",
        "Generated from `tests/test_bad_input.py` (one test per row; regenerate with",
        "`PYTHONPATH=. python tests/test_bad_input.py`). Python-known shapes, types and values",
        "raise at call (or trace) time with a message naming the argument; nothing reaches an XLA",
        "error. The *message contains* column is the regular expression the test matches.",
        "",
        "| public name | invalid input | error | message contains |",
        "|---|---|---|---|",
    ]
    esc = lambda s: s.replace("|", "\\|")
    for name, what, _, exc, pattern in ROWS:
        lines.append(f"| `{name}` | {esc(what)} | `{exc.__name__}` | `{esc(pattern)}` |")
    lines += [
        "",
        "## Data-dependent failures inside jit",
        "",
        "Values that are traced (inside `jax.jit`, `jax.grad`, `jax.vmap`) cannot be checked in",
        "Python. `simulate` checks the final state with `eqx.error_if` when `throw=True` (the",
        "default): the run raises `EquinoxRuntimeError` (a `JaxRuntimeError` under plain",
        "`jax.jit`) with the message below. With `throw=False` it returns, and",
        "`result.finite` is `False`. `equilibrium` checks a traced `I` the same way",
        "(`equilibrium: I must be finite.`).",
        "",
        "| public name | failure | with `throw=True` | with `throw=False` |",
        "|---|---|---|---|",
    ]
    for name, what, _, pattern in RUNTIME_ROWS:
        lines.append(f"| `{name}` | {esc(what)} | raises, message contains `{esc(pattern)}` | `result.finite` is `False` |")
    lines += ["", "## Public names with no input to check", ""]
    lines += [f"- `{k}`: {v}." for k, v in NO_INPUT.items()]
    return "\n".join(lines) + "\n"


DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "bad_input.md")


@pytest.mark.parametrize(
    "name, what, call, exc, pattern", ROWS, ids=[f"{r[0]}: {r[1]}" for r in ROWS]
)
def test_bad_input_raises_a_named_error(name, what, call, exc, pattern):
    with pytest.raises(exc) as info:
        call()
    assert re.search(pattern, str(info.value)), str(info.value)
    # one clear line, not an XLA trace
    assert "Traceback" not in str(info.value) and len(str(info.value).splitlines()) <= 2


@pytest.mark.parametrize("name, what, run, pattern", RUNTIME_ROWS, ids=[r[1] for r in RUNTIME_ROWS])
def test_data_dependent_failure_inside_jit_is_never_silent(name, what, run, pattern):
    with pytest.raises(Exception, match=pattern):
        jax.block_until_ready(run(True))
    r = run(False)
    assert not bool(r.finite)


def test_nan_mid_run_leaves_the_trace_before_it_intact():
    r = _nan_mid_run(False)
    clean = hh_jax.simulate(P(), 5.0, duration=10.0, dt=0.01)
    V = np.asarray(r.V)
    np.testing.assert_allclose(V[:501], np.asarray(clean.V)[:501], rtol=1e-10)  # up to t = 5 ms
    assert np.all(np.isnan(V[502:]))  # from the NaN sample on: NaN, and finite is False


def test_traced_nan_current_in_resting_state_is_named():
    # a JAX array, so that filter_jit traces it (a Python NaN is static: refused at trace time)
    with pytest.raises(Exception, match=r"equilibrium: I must be finite"):
        jax.block_until_ready(eqx.filter_jit(lambda I: hh_jax.equilibrium(P(), I).V)(jnp.asarray(jnp.nan)))
    with pytest.raises(ValueError, match=r"equilibrium: I \(uA/cm\^2\) must be finite, got nan"):
        eqx.filter_jit(lambda I: hh_jax.equilibrium(P(), I).V)(jnp.nan)


def test_integer_arrays_are_accepted_where_floats_are():
    assert float(hh_jax.exprel(jnp.array(0))) == 1.0
    np.testing.assert_allclose(float(hh_jax.alpha_m(jnp.array(-40))), 1.0)


def _public(module, prefix=""):
    return {prefix + n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), type(os))}


def _covered(row_name):
    # "simulate", "HHParams.replace" -> top-level name; "fit.Recording.resample" -> "fit.Recording"
    parts = row_name.split(".")
    return ".".join(parts[:2]) if parts[0] in SUBPACKAGES else parts[0]


def test_every_public_name_has_a_row():
    public = _public(hh_jax) | {"analysis", "fit", "plot"}
    for sub in SUBPACKAGES:
        public |= _public(getattr(hh_jax, sub), sub + ".")
    covered = {_covered(r[0]) for r in ROWS} | set(NO_INPUT)
    covered |= {"RK4", "Euler"}  # rows "RK4.step", "Euler.step"
    missing = sorted(public - covered)
    assert not missing, f"public names without a bad-input row: {missing}"


def test_docs_table_is_in_sync():
    with open(DOC) as f:
        assert f.read() == _render(), "docs/bad_input.md is stale: run PYTHONPATH=. python tests/test_bad_input.py"


if __name__ == "__main__":
    with open(DOC, "w") as f:
        f.write(_render())
    print(f"wrote {os.path.normpath(DOC)} ({len(ROWS)} rows)")

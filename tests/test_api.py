"""The public API's names (issue 13, item 7): each renamed name is gone (AttributeError, never a
silent second meaning), its replacement exists, and no public name means two things."""

import importlib

import pytest

import hh_jax
import hh_jax.plot

# (module, old name, new name): the renames of CHANGELOG.md
RENAMES = [
    ("hh_jax.plot", "currents", "current_traces"),
    ("hh_jax.plot", "conductances", "conductance_traces"),
    ("hh_jax.plot", "eigenvalues", "spectrum"),
    ("hh_jax.plot", "phase_plane", "phase_portrait"),
    ("hh_jax.fit", "fit", "optimize"),
    ("hh_jax", "resting_state", "equilibrium"),
    ("hh_jax.analysis", "steady_state_current", "equilibrium_current"),
    ("hh_jax.analysis", "FromRest", "FromHolding"),
]
GONE = [("hh_jax.analysis", "equilibrium_voltage"), ("hh_jax", "SPIKE_INTERPOLATIONS")]
SUBPACKAGES = ("hh_jax", "hh_jax.analysis", "hh_jax.fit", "hh_jax.plot")


def _public(module):
    return {n for n in dir(module) if not n.startswith("_") and not isinstance(getattr(module, n), type(hh_jax))}


@pytest.mark.parametrize("module, old, new", RENAMES, ids=[f"{m}.{o}" for m, o, _ in RENAMES])
def test_old_name_fails_loudly_and_new_name_exists(module, old, new):
    mod = importlib.import_module(module)
    with pytest.raises(AttributeError):
        getattr(mod, old)
    assert callable(getattr(mod, new))


@pytest.mark.parametrize("module, old", GONE)
def test_removed_synonyms_fail_loudly(module, old):
    with pytest.raises(AttributeError):
        getattr(importlib.import_module(module), old)


def test_one_word_for_rest_and_equilibria():
    # equilibrium: a fixed point of the model; steady state: a gate's x_inf(V); "rest": no name
    names = set()
    for name in SUBPACKAGES:
        names |= _public(importlib.import_module(name))
    assert not [n for n in names if "rest" in n.lower()], names
    assert {n for n in names if "steady" in n.lower()} == {"steady_state", "steady_state_at"}


def test_no_public_name_means_two_things():
    seen = {}
    for name in SUBPACKAGES:
        for attr in _public(importlib.import_module(name)):
            seen.setdefault(attr, []).append(name)
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    assert not clashes, f"one name, several meanings: {clashes}"


def test_changelog_lists_every_rename():
    text = (hh_jax.__file__.rsplit("/hh_jax/", 1)[0] + "/CHANGELOG.md")
    with open(text, encoding="utf-8") as f:
        log = f.read()
    for module, old, new in RENAMES:
        assert f"`{module}.{old}` | `{module}.{new}`" in log, (old, new)


# --- the command line: one option vocabulary, no import cycle ------------------------------------

def test_the_subcommand_modules_import_before_the_cli_front():
    import subprocess
    import sys

    code = "import hh_jax.fit._cli, hh_jax.analysis._cli, hh_jax._output_dir, hh_jax._cli"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_subcommand_modules_do_not_import_the_cli_front():
    # hh_jax._cli imports the subcommands; they import only _cli_args and _output_dir (no cycle)
    import pathlib
    import re

    root = pathlib.Path(hh_jax.__file__).parent
    for path in (root / "fit" / "_cli.py", root / "analysis" / "_cli.py", root / "_cli_args.py", root / "_output_dir.py"):
        src = path.read_text(encoding="utf-8")
        assert not re.search(r"from \.+_cli import|import hh_jax\._cli\b|from \.\. import _cli\b", src), path


def _options(command):
    from hh_jax._cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {a.option_strings[0]: a for a in sub._actions if a.option_strings}


SHARED = ("--preset", "--dt", "--seed", "--out", "--no-plot")


def test_subcommands_share_one_option_vocabulary():
    opts = {c: _options(c) for c in ("simulate", "fi", "bifurcation", "fit")}
    for option in SHARED:
        actions = [o[option] for o in opts.values() if option in o]
        assert len(actions) >= 2, option
        kinds = {(getattr(a.type, "__name__", None), tuple(a.choices or ()), type(a).__name__) for a in actions}
        assert len(kinds) == 1, (option, kinds)
    assert "--preset" in opts["fit"] and "--dt" in opts["fit"]


@pytest.mark.parametrize("command", ["simulate", "fi", "bifurcation", "fit"])
def test_a_bad_preset_is_refused_alike_by_every_subcommand(command, capsys):
    from hh_jax._cli import main

    extra = ["--data", "x.csv", "--protocol", "10"] if command == "fit" else []
    with pytest.raises(SystemExit) as e:
        main([command, "--preset", "squid"] + extra)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--preset" in err and "squid" in err, err


def test_parameters_come_first():
    # every public function of the model taking `params` takes it first (I/O keeps numpy's
    # and Equinox's (path, object) order: save_params(path, params))
    import inspect

    late = []
    for name in SUBPACKAGES:
        mod = importlib.import_module(name)
        for attr in _public(mod):
            obj = getattr(mod, attr)
            if inspect.isfunction(obj) and attr != "save_params":
                # positional parameters: params first (a keyword-only `params=` may follow the
                # arguments it qualifies, e.g. alpha_m(V, *, params=None))
                sig = inspect.signature(obj).parameters
                ps = [k for k, v in sig.items() if v.kind is not inspect.Parameter.KEYWORD_ONLY]
                if "params" in ps and ps[0] != "params":
                    late.append(f"{name}.{attr}")
    assert not late, late


def test_one_word_for_sizes():
    # grid points: num; fit starts: n_starts; population: shape (never samples=, n=, size=)
    import inspect

    A, F = hh_jax.analysis, hh_jax.fit
    for fn in (A.equilibria, A.hopf_points, A.limit_cycle, A.cycle_branch, A.cycle_path):
        assert "num" in inspect.signature(fn).parameters and "samples" not in inspect.signature(fn).parameters
    assert "n_starts" in inspect.signature(F.optimize).parameters
    assert list(inspect.signature(F.ParamSpace.sample).parameters)[:3] == ["self", "key", "n_starts"]
    for fn in (hh_jax.steady_state_at, hh_jax.brainpy_initial_state):
        assert "shape" in inspect.signature(fn).parameters


def test_gradient_modes_are_objects():
    import jax.numpy as jnp

    F = hh_jax.fit
    space = F.ParamSpace(hh_jax.HHParams(), ("gL",))
    loss = lambda p: (p.gL - 0.5) ** 2
    u = jnp.zeros(1)
    (vf, gf), (vr, gr) = (F.value_and_grad(loss, space, mode=m)(u) for m in (F.ForwardMode(), F.ReverseMode()))
    assert jnp.allclose(vf, vr) and jnp.allclose(gf, gr)
    for bad in ("forward", "reverse", "auto"):
        with pytest.raises(TypeError, match="mode"):
            F.value_and_grad(loss, space, mode=bad)


def test_no_import_cycle_inside_the_package():
    # module-level and function-level imports alike: the package is a DAG
    import ast
    import pathlib

    root = pathlib.Path(hh_jax.__file__).parent
    mods = {}
    for p in root.rglob("*.py"):
        parts = p.relative_to(root.parent).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    edges = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m.split(".") if p.name == "__init__.py" else m.split(".")[:-1]
        for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(n, ast.ImportFrom):
                base = ".".join(pkg[: len(pkg) - n.level + 1] + ([n.module] if n.module else [])) if n.level else (n.module or "")
                # `from . import _x` imports the submodule (the package is already initialising)
                targets = ([base] if n.module else []) + [f"{base}.{a.name}" for a in n.names]
            elif isinstance(n, ast.Import):
                targets = [a.name for a in n.names]
            else:
                continue
            edges[m] |= {t for t in targets if t in mods and t != m}

    state = {}

    def visit(v, path):
        state[v] = "open"
        for w in edges[v]:
            assert state.get(w) != "open", "import cycle: " + " -> ".join(path + [w])
            if w not in state:
                visit(w, path + [w])
        state[v] = "done"

    for v in mods:
        if v not in state:
            visit(v, [v])


def test_spike_interpolations_are_objects():
    import jax.numpy as jnp

    kw = dict(duration=20.0, dt=0.025, record=())
    a = hh_jax.simulate(hh_jax.HHParams(), 10.0, **kw)
    b = hh_jax.simulate(hh_jax.HHParams(), 10.0, spike_interpolation=hh_jax.HermiteSpikes(), **kw)
    assert jnp.array_equal(a.spike_times, b.spike_times)  # the default
    for bad in ("hermite", "linear"):
        with pytest.raises(TypeError, match="spike_interpolation"):
            hh_jax.simulate(hh_jax.HHParams(), 10.0, spike_interpolation=bad, **kw)


def test_population_modes_are_objects():
    import diffrax

    assert hh_jax.DiffraxAdapter(diffrax.Tsit5()).population == hh_jax.BatchedODE()
    assert hh_jax.PerNeuronODE().per_neuron and not hh_jax.BatchedODE().per_neuron
    for bad in ("batched", "vmap"):
        with pytest.raises(TypeError, match="DiffraxAdapter.population"):
            hh_jax.DiffraxAdapter(diffrax.Tsit5(), population=bad)


def test_sample_interpolations_are_objects():
    import jax.numpy as jnp
    import numpy as np

    hold = hh_jax.Sampled(np.array([0.0, 2.0, 4.0]), dt=1.0)
    lin = hh_jax.Sampled(np.array([0.0, 2.0, 4.0]), dt=1.0, interpolation=hh_jax.LinearSamples())
    assert hold.interpolation == hh_jax.HoldSamples()
    t = jnp.asarray(1.5)
    assert float(hold(t)) == 2.0 and float(lin(t)) == 3.0
    for bad in ("hold", "linear"):
        with pytest.raises(TypeError, match="Sampled.interpolation"):
            hh_jax.Sampled(np.ones(3), dt=1.0, interpolation=bad)

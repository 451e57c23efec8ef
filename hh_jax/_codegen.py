"""C++ generated from the model's JAX description: the derivative code of the fused kernel.

The fused CPU kernel's discrete adjoint (`_kernel/hh_expeuler.cc`, reverse mode) needs the
vector–Jacobian product of one exponential-Euler step and of dV/dt (the spike brackets' slopes).
Neither is written by hand: `adjoint_header` traces ``jax.vjp`` of `_model.exp_euler_step` and of
`_model.membrane_dvdt` into jaxprs and translates them, equation by equation, into branch-free
C++ functions templated on the float type (``hh_adjoint.h``, generated at build time next to
``hh_model.h``). The C++ is therefore the same derivative `jax.grad` takes of the `lax.scan`
loop, with the kernel's own exponential; `tests/test_adjoint.py` checks it against `jax.vjp` of
one step on a grid of states.

The adjoint uses the step's VJP in two halves (`step_split`): a forward half that also returns
the step's exponentials and reciprocals, which the kernel stores while recomputing a segment, and
a backward half that reads them.

Only the primitives such a step lowers to are translated (arithmetic, comparisons, selects,
clamps, exp, expm1, sqrt, integer powers, nested ``jit``s and custom-JVP calls); any other raises
`NotImplementedError` at build time, naming it, so a change to the model that needs a new
primitive fails loudly.
"""

import types
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from . import _model

STEP_INPUTS = ("V", "m", "h", "n", "gNa", "gK", "gL", "ENa", "EK", "EL", "C", "phi", "I", "dt")
"""The inputs of the generated step VJP, in order (after them: the cotangents of V, m, h, n);
its outputs are their cotangents, prefixed ``g_``."""
DVDT_INPUTS = ("V", "m", "h", "n", "gNa", "gK", "gL", "ENa", "EK", "EL", "C", "I")
"""The inputs of the generated dV/dt VJP (after them: the cotangent of dV/dt)."""

_BINARY = {"add": "+", "add_any": "+", "sub": "-", "mul": "*"}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_UNARY = {"neg": "-({})", "exp": "vexp({})", "expm1": "vexpm1({})", "sqrt": "std::sqrt({})",
          "abs": "std::abs({})"}


def _params(gNa, gK, gL, ENa, EK, EL, C):
    return types.SimpleNamespace(gNa=gNa, gK=gK, gL=gL, ENa=ENa, EK=EK, EL=EL, C=C)


def _step(staggered):
    def step(V, m, h, n, gNa, gK, gL, ENa, EK, EL, C, phi, I, dt):
        p = _params(gNa, gK, gL, ENa, EK, EL, C)
        return _model.exp_euler_step(p, V, m, h, n, I, dt, staggered, factor=phi)

    return step


def _dvdt(V, m, h, n, gNa, gK, gL, ENa, EK, EL, C, I):
    return _model.membrane_dvdt(_params(gNa, gK, gL, ENa, EK, EL, C), V, m, h, n, I)


def step_vjp(staggered: bool):
    """``(primals…, cotangents of V, m, h, n) → cotangents of STEP_INPUTS``: `jax.vjp` of one step
    in one piece, the reference the generated halves (`step_split`) are tested against."""
    step = _step(staggered)

    def vjp(*args):
        primals, ct = args[: len(STEP_INPUTS)], args[len(STEP_INPUTS):]
        return jax.vjp(step, *primals)[1](tuple(ct))

    return vjp


SAVED_PRIMITIVES = frozenset({"exp", "expm1", "div", "sqrt"})
"""What the adjoint's recompute stores of each step for its backward pass: the outputs of these
primitives (the costly ones), chosen by a `jax.checkpoint` policy; all else is recomputed."""


class StepSplit(NamedTuple):
    """One step's VJP split in two, by JAX's own partial evaluation of a `jax.checkpoint`-ed
    step: `forward` ``(STEP_INPUTS…) → (V, m, h, n, residuals…)`` and `backward`
    ``(STEP_INPUTS…, residuals…, cotangents of V, m, h, n) → cotangents of STEP_INPUTS``, so that
    ``backward(x, forward(x)[4:], ct) == jax.vjp(step, *x)[1](ct)``."""

    forward: Callable
    backward: Callable
    n_residuals: int


@jax.custom_jvp
def _reciprocal(b):
    return 1.0 / b


@_reciprocal.defjvp
def _reciprocal_jvp(primals, tangents):
    r = 1.0 / primals[0]  # a `div`: stored (SAVED_PRIMITIVES)
    return r, -tangents[0] * r * r  # from the stored reciprocal: no second division


def _with_reciprocals(fun):
    """`fun` with every ``a / b`` evaluated as ``a * (1 / b)`` — the arithmetic the generated C++
    uses anyway (`_Emitter`) — where ``1 / b`` is `_reciprocal`: a stored quotient then serves
    the derivative too (``d(1/b) = -db / b²`` from it), so the backward half divides nothing."""

    def run(jaxpr, consts, args):
        env = dict(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        read = lambda a: a.val if isinstance(a, jax.extend.core.Literal) else env[a]
        for eqn in jaxpr.eqns:
            ins = [read(a) for a in eqn.invars]
            sub = eqn.params.get("jaxpr")
            if eqn.primitive.name == "div":
                outs = [ins[0] * _reciprocal(ins[1])]
            elif sub is not None:  # a nested jit: inline it
                outs = run(getattr(sub, "jaxpr", sub), getattr(sub, "consts", ()), ins)
            else:  # as jax.core.eval_jaxpr binds (a custom JVP's rule is kept)
                outs = eqn.primitive.bind(*ins, **eqn.primitive.get_bind_params(eqn.params))
                outs = outs if eqn.primitive.multiple_results else [outs]
            env.update(zip(eqn.outvars, outs))
        return [read(a) for a in jaxpr.outvars]

    def wrapped(*args):
        closed = jax.make_jaxpr(fun)(*args)
        return tuple(run(closed.jaxpr, closed.consts, args))

    return wrapped


def step_split(staggered: bool) -> StepSplit:
    """`StepSplit` of the exponential-Euler step (residuals: `SAVED_PRIMITIVES`' outputs; a
    residual that is one of the inputs is not stored but passed again to `backward`). Divisions
    are multiplications by stored reciprocals (`_with_reciprocals`)."""
    step = jax.checkpoint(_with_reciprocals(_step(staggered)), prevent_cse=False,
                          policy=lambda prim, *_, **__: prim.name in SAVED_PRIMITIVES)
    n_in = len(STEP_INPUTS)
    found = {}

    def leaves(*primals):
        out, pullback = jax.vjp(step, *primals)
        flat, found["tree"] = jax.tree_util.tree_flatten(pullback)
        return (*out, *flat)

    with jax.enable_x64(True):
        closed = jax.make_jaxpr(leaves)(*[jnp.float64(0.5)] * n_in)
    invars = list(closed.jaxpr.invars)
    source = [invars.index(v) if v in invars else None for v in closed.jaxpr.outvars[4:]]
    stored = [j for j, k in enumerate(source) if k is None]

    def forward(*primals):
        out = leaves(*primals)
        return (*out[:4], *[out[4 + j] for j in stored])

    def backward(*args):
        primals, res, ct = args[:n_in], iter(args[n_in:n_in + len(stored)]), args[n_in + len(stored):]
        flat = [primals[k] if k is not None else next(res) for k in source]
        return jax.tree_util.tree_unflatten(found["tree"], flat)(tuple(ct))

    return StepSplit(forward, backward, len(stored))


def dvdt_vjp(*args):
    """``(primals…, cotangent of dV/dt) → cotangents of DVDT_INPUTS``."""
    primals, ct = args[: len(DVDT_INPUTS)], args[len(DVDT_INPUTS)]
    return jax.vjp(_dvdt, *primals)[1](ct)


def _literal(value) -> str:
    if isinstance(value, (bool,)) or getattr(value, "dtype", None) == bool:
        return "true" if bool(value) else "false"
    return f"T({float(value)!r})"


class _Emitter:
    """Translates jaxpr equations into C++ statements, one per equation. Divisions become
    multiplications by a reciprocal computed once per denominator (a derivative divides by the
    same rates several times; division is the slowest vector instruction here): ≤ 1 ulp from the
    quotient, and these values only weight cotangents (the states come from the kernel's step)."""

    def __init__(self):
        self.lines: list[str] = []
        self.count = 0
        self.reciprocal: dict[str, str] = {}  # denominator -> the variable holding 1 / it
        self.literal_select: dict[str, tuple[str, str, str]] = {}  # var -> (pred, false, true)

    def fresh(self) -> str:
        self.count += 1
        return f"t{self.count}"

    def atom(self, env, a) -> str:
        if isinstance(a, jax.extend.core.Literal):
            return _literal(a.val)
        return env[a]

    def emit(self, jaxpr, consts, args) -> list[str]:
        env = {}
        for v, c in zip(jaxpr.constvars, consts):
            env[v] = _literal(c)
        for v, a in zip(jaxpr.invars, args):
            env[v] = a
        for eqn in jaxpr.eqns:
            ins = [self.atom(env, a) for a in eqn.invars]
            name = eqn.primitive.name
            sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
            if sub is not None:  # a nested jit, closed call or custom_jvp's primal: inline it
                inner = getattr(sub, "jaxpr", sub)
                outs = self.emit(inner, getattr(sub, "consts", ()), ins)
            else:
                outs = [self._one(name, eqn, ins)]
            for v, o in zip(eqn.outvars, outs):
                if not isinstance(v, jax.extend.core.DropVar):
                    env[v] = o
        return [self.atom(env, a) for a in jaxpr.outvars]

    def _rcp(self, den: str) -> str:
        """An expression for 1 / `den`."""
        if den.startswith("T("):  # a literal
            return f"T({1.0 / float(den[2:-1])!r})"
        if den in self.literal_select:  # a select between two literals
            pred, a, b = self.literal_select[den]
            return f"({pred} ? {self._rcp(b)} : {self._rcp(a)})"
        if den not in self.reciprocal:
            var = self.fresh()
            self.lines.append(f"  const T {var} = T(1) / {den};")
            self.reciprocal[den] = var
        return self.reciprocal[den]

    def _one(self, name, eqn, ins) -> str:
        out = eqn.outvars[0]
        is_bool = out.aval.dtype == jnp.bool_
        if name == "div":
            expr = f"{ins[0]} * {self._rcp(ins[1])}"
        elif name in _BINARY:
            expr = f"{ins[0]} {_BINARY[name]} {ins[1]}"
        elif name in _COMPARE:
            expr = f"{ins[0]} {_COMPARE[name]} {ins[1]}"
        elif name in _UNARY:
            expr = _UNARY[name].format(ins[0])
        elif name == "max":
            expr = f"({ins[0]} > {ins[1]} ? {ins[0]} : {ins[1]})"
        elif name == "min":
            expr = f"({ins[0]} < {ins[1]} ? {ins[0]} : {ins[1]})"
        elif name == "select_n":
            if len(ins) != 3:
                raise NotImplementedError("select_n with more than two cases")
            expr = f"({ins[0]} ? {ins[2]} : {ins[1]})"
            if ins[1].startswith("T(") and ins[2].startswith("T("):
                var = self.fresh()
                self.literal_select[var] = (ins[0], ins[1], ins[2])
                self.lines.append(f"  const T {var} = {expr};")
                return var
        elif name == "clamp":
            lo, x, hi = ins
            expr = f"({x} < {lo} ? {lo} : ({x} > {hi} ? {hi} : {x}))"
        elif name == "integer_pow":
            y = eqn.params["y"]
            if y == 0:
                expr = "T(1)"
            else:
                base = self._rcp(ins[0]) if y < 0 else ins[0]
                expr = " * ".join([base] * abs(y))
        elif name == "convert_element_type":
            if eqn.params["new_dtype"] == jnp.bool_ or eqn.invars[0].aval.dtype == jnp.bool_:
                raise NotImplementedError("convert_element_type to or from bool")
            expr = ins[0]
        elif name == "copy" or name == "copy_p":
            expr = ins[0]
        elif name == "reduce_precision":  # jax.checkpoint marks residuals with it at their own precision
            if eqn.params["exponent_bits"] < 11 or eqn.params["mantissa_bits"] < 52:
                raise NotImplementedError("reduce_precision below float64")
            expr = ins[0]
        else:
            raise NotImplementedError(f"the C++ generator does not translate the primitive {name!r}")
        var = self.fresh()
        self.lines.append(f"  const {'bool' if is_bool else 'T'} {var} = {expr};")
        return var


def cpp_function(name: str, fun, in_names: tuple[str, ...], out_names: tuple[str, ...], *,
                 residuals_in: int = 0, residuals_out: int = 0) -> str:
    """A C++ function ``template <typename T> void name(T in…, T& out…)`` computing `fun` (a JAX
    function of float scalars returning a tuple), traced in float64 (the literals keep every
    digit; ``T(…)`` rounds them as JAX's float32 weak types do).

    `residuals_in` > 0: `fun` takes that many residuals between `in_names`' inputs and their
    last four (the cotangents), read from ``r[j * rs]`` (arguments ``const T* r, int64_t rs`` at
    that place); `residuals_out` > 0: its last outputs are residuals, written to ``r[j * rs]``
    (``T* r, int64_t rs`` last)."""
    n_args = len(in_names) + residuals_in
    with jax.enable_x64(True):
        closed = jax.make_jaxpr(fun)(*[jnp.float64(0.5)] * n_args)
    em = _Emitter()
    res = [f"r[{j} * rs]" for j in range(max(residuals_in, residuals_out))]
    args = list(in_names)
    if residuals_in:
        args[len(in_names) - 4:len(in_names) - 4] = res  # before the four cotangents
    outs = em.emit(closed.jaxpr, closed.consts, args)
    targets = list(out_names) + res[:residuals_out]
    if len(outs) != len(targets):
        raise ValueError(f"{name}: {len(outs)} outputs, {len(targets)} names")
    sig = [f"T {a}" for a in in_names] + [f"T& {o}" for o in out_names]
    if residuals_in:
        sig[len(in_names) - 4:len(in_names) - 4] = ["const T* r", "int64_t rs"]
    if residuals_out:
        sig += ["T* r", "int64_t rs"]
    body = "\n".join(em.lines + [f"  {o} = {e};" for o, e in zip(targets, outs)])
    text = f"template <typename T>\nHH_INLINE void {name}({', '.join(sig)}) {{\n{body}\n}}\n"
    # the positions of the arguments by name (NAME_IN_x, NAME_OUT_g_x, NAME_N_IN, NAME_N_OUT)
    up = name.upper()
    consts = [f"constexpr int {up}_N_IN = {len(in_names)}, {up}_N_OUT = {len(out_names)};"]
    consts += [f"constexpr int {up}_IN_{a.upper()} = {k};" for k, a in enumerate(in_names)]
    consts += [f"constexpr int {up}_OUT_{o.upper()} = {k};" for k, o in enumerate(out_names)]
    # the same on arrays (in[k * stride], out[k * stride]; the C test entry points)
    calls = [f"in[{k} * stride]" for k in range(len(in_names))]
    calls += [f"out[{k} * stride]" for k in range(len(out_names))]
    extra = ""
    if residuals_in:
        calls[len(in_names) - 4:len(in_names) - 4] = ["r", "rs"]
        extra = ", const T* r, int64_t rs"
    if residuals_out:
        calls += ["r", "rs"]
        extra = ", T* r, int64_t rs"
    text += (f"template <typename T>\nHH_INLINE void {name}_arrays(const T* in, T* out, "
             f"int64_t stride{extra}) {{\n  {name}<T>({', '.join(calls)});\n}}\n")
    return text + "\n".join(consts) + "\n"


def adjoint_header() -> str:
    """The C++ header ``hh_adjoint.h``: `step_vjp` (staggered and simultaneous) and `dvdt_vjp`,
    generated from `_model` (it expects ``HH_INLINE``, ``vexp`` and ``vexpm1`` defined)."""
    cts = ("ct_V", "ct_m", "ct_h", "ct_n")
    g_step = tuple("g_" + a for a in STEP_INPUTS)
    g_dvdt = tuple("g_" + a for a in DVDT_INPUTS)
    split = {scheme: step_split(scheme == "staggered") for scheme in ("staggered", "simultaneous")}
    n_res = {split[k].n_residuals for k in split}
    parts = [
        "// GENERATED by hh_jax/_codegen.py from hh_jax/_model.py at build time. Do not edit.",
        "// The vector-Jacobian products of one exponential-Euler step and of dV/dt: jax.vjp of",
        "// hh_jax._model.exp_euler_step / membrane_dvdt, translated equation by equation.",
        "#pragma once",
        "#include <cstdint>",
        "// The step VJP in two halves (StepSplit): the forward stores STEP_RESIDUALS values per",
        "// step, the backward reads them instead of recomputing the exponentials and divisions.",
        f"constexpr int STEP_RESIDUALS = {max(n_res)};",
    ]
    for scheme, sp in split.items():
        parts += [cpp_function(f"step_fwd_{scheme}", sp.forward, STEP_INPUTS, ("V1", "m1", "h1", "n1"),
                               residuals_out=sp.n_residuals),
                  cpp_function(f"step_bwd_{scheme}", sp.backward, STEP_INPUTS + cts, g_step,
                               residuals_in=sp.n_residuals)]
    parts.append(cpp_function("dvdt_vjp", dvdt_vjp, DVDT_INPUTS + ("ct",), g_dvdt))
    return "\n".join(parts)

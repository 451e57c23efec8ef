// hh_jax fused CPU kernel: the whole exponential-Euler time loop of a HH population in one
// XLA FFI call.
//
// The mathematics is that of hh_jax/_model.py (the one description of the model; every model
// constant and series coefficient comes from hh_model.h, generated from it at build time),
// written so that the compiler vectorises the neuron loop: every function below is branch-free
// (selects only) and inlined; the exponential is a Cody-Waite range reduction with a Taylor
// polynomial (<= 2 ulp), the same code in the vector body and the scalar tail, so a neuron's
// result never depends on its position in the population. Each thread runs blocks of TILE
// neurons through *all* time steps with the state in L1 cache: no kernel boundaries, no memory
// traffic per step.
//
// Layout (P = product of leading batch dims, N = neurons, all row-major):
//   y0     [P, 4, N]        V (mV), m, h, n
//   par    [P, N_PAR, N]    rows in the order of hh_jax._model.KERNEL_PARAMS (hh_model::PAR_*):
//                           gNa, gK, gL (mS/cm2), ENa, EK, EL (mV), C (uF/cm2), V_th (mV),
//                           the rate factor phi
//   imid   [P, Tm, Nm]      injected current (uA/cm2) at t_k + dt/2; Tm in {1, n_steps},
//                           Nm in {1, N}
//   iend   [P, Te, Ne]      injected current at the step ends t_k (for dV/dt in the spike
//                           brackets, C = 4 only); Te in {1, n_steps + 1}, Ne in {1, N}
//   times  [P, 2]           t0 (ms), dt (ms): operands, not attributes, so that one compiled
//                           program serves every start time and step
//   yf     [P, 4, N]        final state
//   count  [P, N] int32     spikes: steps in which V rose through V_th
//   rec    [P, n_rec, R, N] the state variables selected by rec_mask (bits V, m, h, n) at
//                           steps 0, every, 2 every, ...
//   steps  [P, S, N] int32  the step k of each neuron's j-th spike (row j), -1 padded
//   brackets [P, S, N, C]   its bracket: V at t_k and t_k + dt (mV), and for C = 4 dV/dt there
//                           (mV/ms), 0 padded. The kernel does not place a spike within its step:
//                           hh_jax/_spikes.py (refine) does, after the loop, for every backend.
//
// Built and loaded by hh_jax/_fused.py (g++ -O3 -march=native), never by a user.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <thread>
#include <vector>

#include "hh_model.h"  // generated at build time from hh_jax/_model.py
#include "xla/ffi/api/ffi.h"

// Every helper of the step is forced inline: a call left in the neuron loop (GCC declined to
// inline `rates` once it grew) stops the loop's vectorisation, 8x slower.
#define HH_INLINE inline __attribute__((always_inline))

namespace ffi = xla::ffi;
namespace M = hh_model;

namespace {

constexpr int64_t TILE = 128;

template <typename T> struct Consts;
template <> struct Consts<float> {
  static constexpr float lo = -87.0f, hi = 88.0f;
};
template <> struct Consts<double> {
  static constexpr double lo = -708.0, hi = 709.0;
};
static_assert(M::EXP_CLIP > 0 && M::EXP_CLIP <= 88.0 - 2,
              "the model's exponent clip must lie inside float32's exponential range");

HH_INLINE float scale2(float n) {  // 2^n for an integral n in [-126, 127]
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, sizeof s);
  return s;
}
HH_INLINE double scale2(double n) {  // 2^n for an integral n in [-1022, 1023]
  int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
  double s;
  std::memcpy(&s, &bits, sizeof s);
  return s;
}

// Polynomial sum_{k<N} c[k] x^k in Estrin form (a short dependency chain: one neuron is latency
// bound); the coefficients come from the generated header.
constexpr int pow2_below(int n) { return n <= 2 ? 1 : 2 * pow2_below((n + 1) / 2); }
template <int N, typename T>
HH_INLINE T xpow(T x) {  // x^N, N a power of two
  if constexpr (N == 1) return x;
  else { T y = xpow<N / 2>(x); return y * y; }
}
template <int N, typename T>
HH_INLINE T poly(const double* c, T x) {
  if constexpr (N == 1) return T(c[0]);
  else if constexpr (N == 2) return T(c[0]) + x * T(c[1]);
  else {
    constexpr int H = pow2_below(N);
    return poly<H>(c, x) + xpow<H>(x) * poly<N - H>(c + H, x);
  }
}

// Taylor polynomials of e^r for |r| <= ln2/2 (hh_model::EXP_TAYLOR): degree
// hh_model::EXP_DEGREE_F32 (float32), all coefficients (float64).
HH_INLINE float exp_poly(float r) { return poly<M::EXP_DEGREE_F32 + 1>(M::EXP_TAYLOR, r); }
HH_INLINE double exp_poly(double r) { return poly<std::size(M::EXP_TAYLOR)>(M::EXP_TAYLOR, r); }

// exp(x) for x inside the finite range: Cody-Waite reduction x = n ln2 + r, then e^r 2^n.
HH_INLINE float exp_in_range(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23: round to nearest integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693145751953125f;  // ln2 split (Cody-Waite)
  r = r - n * 1.428606765330187045e-06f;
  return exp_poly(r) * scale2(n);
}
HH_INLINE double exp_in_range(double x) {
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  double n = (x * 1.4426950408889634074 + magic) - magic;
  double r = x - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  return exp_poly(r) * scale2(n);
}

// exp(x), branch-free, NaN-preserving (a NaN fails both comparisons and flows through the
// polynomial); clamped to the floating-point range of the reduction (Consts::lo/hi: a guard
// of this implementation, not part of the model; the model's bound on the rate exponents is
// hh_model::EXP_CLIP, from hh_jax/_model.py).
template <typename T>
HH_INLINE T vexp(T x) {
  bool under = x < Consts<T>::lo;  // e^x below the normal range: 0, as XLA's exp (flush to zero)
  x = under ? Consts<T>::lo : (x > Consts<T>::hi ? Consts<T>::hi : x);
  T e = exp_in_range(x);
  return under ? T(0) : e;
}

// The same exponential with branches, for scalar code (a shorter dependency chain; one neuron
// is latency bound), bit-identical: for |x| < 0.34 the reduction is the identity (n = 0,
// r = x, 2^n = 1), and inside the range the clamp is.
template <typename T>
HH_INLINE T bexp(T x) {
  if (std::abs(x) < T(0.34)) return exp_poly(x);
  if (x > Consts<T>::lo && x < Consts<T>::hi) return exp_in_range(x);
  return vexp(x);
}

// u / (e^u - 1) given den = e^u - 1 (computed by the caller, in the same place for the vector
// and the scalar code, so that both contract it alike): the series B0 + B1 u + u^2 sum
// BERNOULLI_EVEN[k] u^(2k) for |u| < BERNOULLI_RADIUS, as hh_jax._model.bernoulli.
template <bool Branchy, typename T>
HH_INLINE T bernoulli(T u, T den) {
  bool small = std::abs(u) < T(M::BERNOULLI_RADIUS);
  if constexpr (Branchy) {
    if (!small) return u / den;
  }
  T u2 = u * u;
  T series = (T(M::BERNOULLI_HEAD[0]) + T(M::BERNOULLI_HEAD[1]) * u) + u2 * poly<std::size(M::BERNOULLI_EVEN)>(M::BERNOULLI_EVEN, u2);
  T big = (small ? T(1) : u) / (small ? T(1) : den);
  return small ? series : big;
}

// Taylor polynomial of exprel, sum_j EXPREL_COEF[j] z^j, for |z| < EXPREL_RADIUS:
// EXPREL_TERMS_F32 terms in float32, all in float64.
HH_INLINE float exprel_series(float z) { return poly<M::EXPREL_TERMS_F32>(M::EXPREL_COEF, z); }
HH_INLINE double exprel_series(double z) { return poly<std::size(M::EXPREL_COEF)>(M::EXPREL_COEF, z); }

// (e^z - 1) / z for z <= 0: the series for |z| < EXPREL_RADIUS, else (e^z - 1)/z.
template <bool Branchy, typename T>
HH_INLINE T exprel(T z) {
  bool small = std::abs(z) < T(M::EXPREL_RADIUS);
  if constexpr (Branchy) {
    if (small) return exprel_series(z);
    return (vexp(z) - T(1)) / z;
  }
  T zb = small ? T(-1) : z;
  T big = (vexp(zb) - T(1)) / zb;
  return small ? exprel_series(z) : big;
}

// e^x - 1 (for the generated derivative code, hh_adjoint.h): x exprel(x) for |x| <
// EXPREL_RADIUS (no cancellation), else e^x - 1; branch-free.
template <typename T>
HH_INLINE T vexpm1(T x) {
  bool small = std::abs(x) < T(M::EXPREL_RADIUS);
  T big = vexp(x) - T(1);
  return small ? x * exprel_series(x) : big;
}

}  // namespace

#include "hh_adjoint.h"  // generated at build time (hh_jax/_codegen.py): step_fwd_*, step_bwd_*, dvdt_vjp

namespace {

// The membrane, once for the V update (step_block) and the slopes of the spike brackets: the
// sodium and potassium conductances (mS/cm2) from the gates (association chosen for a short
// dependency chain: m is the last gate ready), and the drive I - I_ion (uA/cm2), dV/dt * C.
template <typename T>
inline void membrane_conductances(T m, T h, T n, T gNa, T gK, T& gna, T& gk) {
  gna = gNa * ((m * m) * (m * h));
  T n2 = n * n;
  gk = gK * (n2 * n2);
}
template <typename T>
inline T membrane_drive(T v, T I, T gna, T gk, T gL, T ENa, T EK, T EL) {
  // explicit FMAs: the rounding must not depend on which product the compiler contracts
  return I - std::fma(gna, v - ENa, std::fma(gk, v - EK, gL * (v - EL)));
}

// dV/dt (mV/ms) at a state for a current I (the spike brackets); invC = 1/C.
template <typename T>
inline T dVdt(T V, T m, T h, T n, T I, T gNa, T gK, T gL, T ENa, T EK, T EL, T invC) {
  T gna, gk;
  membrane_conductances(m, h, n, gNa, gK, gna, gk);
  return membrane_drive(V, I, gna, gk, gL, ENa, EK, EL) * invC;
}

template <typename T>
struct Job {
  const T *y0, *par, *imid, *iend, *times;
  T *yf, *rec, *brackets, *ck;
  int32_t *count, *steps;
  int64_t P, N, n_steps, Tm, Nm, Te, Ne, every, n_rec, S, C;
  int64_t K, n_ck;  // checkpoints for the adjoint: the state at steps 0, K, 2K, ... (n_ck of them)
  int rec_idx[4];
  int R;
  bool staggered;
};

// The six rates (1/ms) at v (mV), each times phi: the arithmetic of hh_jax._model.gate_rates,
// constants from the generated header. The exponent u is clipped once to +-EXP_CLIP (E = e^uc;
// the alpha_m and alpha_n denominators e^uc - 1 and e^(uc + AN_SHIFT) - 1).
template <bool Branchy, typename T>
HH_INLINE void rates(T v, T phi, T& am, T& bm, T& ah, T& bh, T& an, T& bn) {
  auto EXP = [](T x) {
    if constexpr (Branchy) return bexp(x);
    else return vexp(x);
  };
  const T clip = T(M::EXP_CLIP);
  T u = (v - T(M::U_V_HALF)) * T(M::U_GAIN);
  T uc = u < -clip ? -clip : (u > clip ? clip : u);
  T E = EXP(uc);
  T den_m = E - T(1), den_n = E * T(M::AN_E_FACTOR) - T(1);
  am = phi * (T(M::AM_SCALE) * bernoulli<Branchy>(u, den_m));
  an = phi * (T(M::AN_SCALE) * bernoulli<Branchy>(u + T(M::AN_SHIFT), den_n));
  bh = phi * (T(M::BH_SCALE) / (T(1) + E * T(M::BH_E_FACTOR)));
  ah = phi * (T(M::AH_COEF) * std::sqrt(E));
  bn = phi * (T(M::BN_SCALE) * EXP(uc * T(M::BN_U_COEF) + T(M::BN_OFFSET)));
  T xm = (v - T(M::BM_V_HALF)) * T(M::BM_GAIN);
  bm = phi * (T(M::BM_SCALE) * EXP(xm > clip ? clip : xm));  // clipped above only
}

// One exponential-Euler step of one neuron (hh_jax._model.exp_euler_step): the gates exactly
// under frozen V, then V exactly under the new (staggered) or old gates.
template <bool Staggered, bool Branchy, typename T>
HH_INLINE void step_one(T dt, T I, T& v, T& m, T& h, T& n, T gNa, T gK, T gL, T ENa, T EK, T EL,
                     T invC, T phi) {
  auto EXP = [](T x) {
    if constexpr (Branchy) return bexp(x);
    else return vexp(x);
  };
  // The rate factor phi cancels in x_inf = alpha/(alpha + beta) and scales the relaxation
  // rate: the rates at phi = 1 and the step dt*phi, off the dependency chain (as _model).
  T am, bm, ah, bh, an, bn;
  rates<Branchy>(v, T(1), am, bm, ah, bh, an, bn);
  T dtphi = dt * phi;
  T km = am + bm, kh = ah + bh, kn = an + bn;
  T minf = am / km, hinf = ah / kh, ninf = an / kn;
  T m1 = minf + (m - minf) * EXP(-dtphi * km);
  T h1 = hinf + (h - hinf) * EXP(-dtphi * kh);
  T n1 = ninf + (n - ninf) * EXP(-dtphi * kn);
  T gm = Staggered ? m1 : m, gh = Staggered ? h1 : h, gn = Staggered ? n1 : n;
  // Association chosen for a short dependency chain (m is the last gate ready), as _model.
  T gna, gk;
  membrane_conductances(gm, gh, gn, gNa, gK, gna, gk);
  T gtot = gna + (gk + gL);
  T drive = membrane_drive(v, I, gna, gk, gL, ENa, EK, EL);
  T dtC = dt * invC;
  v = std::fma(dtC * drive, exprel<Branchy>(gtot * -dtC), v);
  m = m1; h = h1; n = n1;
}

// One exponential-Euler step of `len` neurons: the old state goes to Vp, mp, hp, np_, the new
// one to V, m, h, n.
template <typename T, bool Staggered, bool Branchy>
__attribute__((noinline)) void step_block(
    int64_t len, T dt, const T* __restrict Imid, T* __restrict V, T* __restrict m,
    T* __restrict h, T* __restrict n, T* __restrict Vp, T* __restrict mp, T* __restrict hp,
    T* __restrict np_, const T* __restrict gNa, const T* __restrict gK, const T* __restrict gL,
    const T* __restrict ENa, const T* __restrict EK, const T* __restrict EL,
    const T* __restrict invC, const T* __restrict phi) {
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    T v0 = V[i], m0 = m[i], h0 = h[i], n0 = n[i];
    T v1 = v0, m1 = m0, h1 = h0, n1 = n0;
    step_one<Staggered, Branchy>(dt, Imid[i], v1, m1, h1, n1, gNa[i], gK[i], gL[i], ENa[i], EK[i],
                                 EL[i], invC[i], phi[i]);
    Vp[i] = v0; mp[i] = m0; hp[i] = h0; np_[i] = n0;  // after the step: no copy loop split off
    V[i] = v1; m[i] = m1; h[i] = h1; n[i] = n1;
  }
}

// One neuron through all steps: the path of a block of fewer than 8 neurons (N = 1 is latency
// bound: no tile copies, crossing loops or division by `every` per step). Each step is
// step_block's branchy scalar code, so results are bit-identical to a block's; the record
// written is the same as run_tile's.
template <typename T, bool Staggered>
void run_neuron(const Job<T>& J, int64_t p, int64_t i) {
  const int64_t N = J.N;
  const T* y0 = J.y0 + p * 4 * N + i;
  T v = y0[0], m = y0[N], h = y0[2 * N], n = y0[3 * N];
  const T* par = J.par + p * M::N_PAR * N + i;
  auto row = [&](int64_t r) { return par[r * N]; };  // the generated layout
  const T gNa = row(M::PAR_GNA), gK = row(M::PAR_GK), gL = row(M::PAR_GL);
  const T ENa = row(M::PAR_ENA), EK = row(M::PAR_EK), EL = row(M::PAR_EL);
  const T invC = T(1) / row(M::PAR_C), Vth = row(M::PAR_V_TH), phi = row(M::PAR_RATE_FACTOR);
  auto record = [&](int64_t sample) {
    T* dst = J.rec + ((p * J.n_rec + sample) * J.R) * N + i;
    for (int r = 0; r < J.R; ++r) {
      const int b = J.rec_idx[r];
      dst[r * N] = b == 0 ? v : b == 1 ? m : b == 2 ? h : n;
    }
  };
  auto checkpoint = [&](int64_t c) {
    T* dst = J.ck + (p * J.n_ck + c) * 4 * N + i;
    dst[0] = v; dst[N] = m; dst[2 * N] = h; dst[3 * N] = n;
  };
  if (J.n_ck > 0) checkpoint(0);
  if (J.R > 0) record(0);
  for (int64_t s = 0; s < J.S; ++s) {
    const int64_t slot = (p * J.S + s) * N + i;
    J.steps[slot] = int32_t(-1);
    std::fill(J.brackets + slot * J.C, J.brackets + (slot + 1) * J.C, T(0));
  }
  const T dt = J.times[2 * p + 1];
  const T* imid = J.imid + p * J.Tm * J.Nm + (J.Nm > 1 ? i : 0);
  const int64_t istride = J.Tm > 1 ? J.Nm : 0;
  const T* iend = J.iend + p * J.Te * J.Ne + (J.Ne > 1 ? i : 0);
  const int64_t estride = J.Te > 1 ? J.Ne : 0;
  int32_t cnt = 0;
  int64_t next_rec = J.every, sample = 1;
  for (int64_t k = 0; k < J.n_steps; ++k) {
    const T vp = v, mp = m, hp = h, np_ = n;
    step_one<Staggered, true>(dt, imid[k * istride], v, m, h, n, gNa, gK, gL, ENa, EK, EL, invC, phi);
    if ((vp < Vth) & (v >= Vth)) {
      ++cnt;
      if (cnt <= J.S) {
        const int64_t slot = (p * J.S + (cnt - 1)) * N + i;
        J.steps[slot] = static_cast<int32_t>(k);
        T* b = J.brackets + slot * J.C;
        b[0] = vp;
        b[1] = v;
        if (J.C == 4) {
          b[2] = dVdt(vp, mp, hp, np_, iend[k * estride], gNa, gK, gL, ENa, EK, EL, invC);
          b[3] = dVdt(v, m, h, n, iend[(k + 1) * estride], gNa, gK, gL, ENa, EK, EL, invC);
        }
      }
    }
    if (J.R > 0 && k + 1 == next_rec) {
      if (sample < J.n_rec) record(sample);
      ++sample;
      next_rec += J.every;
    }
    if (J.n_ck > 1 && (k + 1) % J.K == 0 && (k + 1) / J.K < J.n_ck) checkpoint((k + 1) / J.K);
  }
  T* yf = J.yf + p * 4 * N + i;
  yf[0] = v; yf[N] = m; yf[2 * N] = h; yf[3 * N] = n;
  J.count[p * N + i] = cnt;
}

template <typename T>
void run_tile(const Job<T>& J, int64_t p, int64_t i0, int64_t len) {
  if (len < 8) {  // a few neurons: each on its own, in registers (bit-identical)
    for (int64_t i = i0; i < i0 + len; ++i)
      J.staggered ? run_neuron<T, true>(J, p, i) : run_neuron<T, false>(J, p, i);
    return;
  }
  alignas(64) T V[TILE], m[TILE], h[TILE], n[TILE], Vp[TILE], mp[TILE], hp[TILE], np_[TILE];
  alignas(64) T gNa[TILE], gK[TILE], gL[TILE], ENa[TILE], EK[TILE], EL[TILE], invC[TILE], Vth[TILE];
  alignas(64) T phi[TILE];
  alignas(64) T Imid[TILE];
  alignas(64) int32_t cnt[TILE], crossed[TILE];
  const int64_t N = J.N;
  const T* y0 = J.y0 + p * 4 * N + i0;
  const T* par = J.par + p * M::N_PAR * N + i0;
  auto row = [&](int64_t r, int64_t i) { return par[r * N + i]; };  // the generated layout
  for (int64_t i = 0; i < len; ++i) {
    V[i] = y0[i]; m[i] = y0[N + i]; h[i] = y0[2 * N + i]; n[i] = y0[3 * N + i];
    gNa[i] = row(M::PAR_GNA, i); gK[i] = row(M::PAR_GK, i); gL[i] = row(M::PAR_GL, i);
    ENa[i] = row(M::PAR_ENA, i); EK[i] = row(M::PAR_EK, i); EL[i] = row(M::PAR_EL, i);
    invC[i] = T(1) / row(M::PAR_C, i); Vth[i] = row(M::PAR_V_TH, i);
    phi[i] = row(M::PAR_RATE_FACTOR, i);
    cnt[i] = 0;
  }
  auto record = [&](int64_t sample) {
    T* dst = J.rec + ((p * J.n_rec + sample) * J.R) * N + i0;
    for (int r = 0; r < J.R; ++r) {
      const T* src = J.rec_idx[r] == 0 ? V : J.rec_idx[r] == 1 ? m : J.rec_idx[r] == 2 ? h : n;
      std::memcpy(dst + r * N, src, len * sizeof(T));
    }
  };
  auto checkpoint = [&](int64_t c) {
    T* dst = J.ck + (p * J.n_ck + c) * 4 * N + i0;
    std::memcpy(dst, V, len * sizeof(T));
    std::memcpy(dst + N, m, len * sizeof(T));
    std::memcpy(dst + 2 * N, h, len * sizeof(T));
    std::memcpy(dst + 3 * N, n, len * sizeof(T));
  };
  if (J.n_ck > 0) checkpoint(0);
  if (J.R > 0) record(0);
  for (int64_t s = 0; s < J.S; ++s) {
    const int64_t row = (p * J.S + s) * N + i0;
    std::fill(J.steps + row, J.steps + row + len, int32_t(-1));
    std::fill(J.brackets + row * J.C, J.brackets + (row + len) * J.C, T(0));
  }
  const T dt = J.times[2 * p + 1];  // (t0 is the refinement's, in Python)
  const T* imid = J.imid + p * J.Tm * J.Nm;
  const T* iend = J.iend + p * J.Te * J.Ne;
  const bool staggered = J.staggered;
  for (int64_t k = 0; k < J.n_steps; ++k) {
    const T* irow = imid + (J.Tm > 1 ? k : 0) * J.Nm;
    if (J.Nm > 1) {
      for (int64_t i = 0; i < len; ++i) Imid[i] = irow[i0 + i];
    } else {
      for (int64_t i = 0; i < len; ++i) Imid[i] = irow[0];
    }
    // Full vectors: the branch-free loop (fewer than 8 neurons took run_neuron, above).
    auto step = staggered ? step_block<T, true, false> : step_block<T, false, false>;
    step(len, dt, Imid, V, m, h, n, Vp, mp, hp, np_, gNa, gK, gL, ENa, EK, EL, invC, phi);
    int any = 0;
    for (int64_t i = 0; i < len; ++i) {
      int c = (Vp[i] < Vth[i]) & (V[i] >= Vth[i]);
      crossed[i] = c;
      cnt[i] += c;
      any |= c;
    }
    if (any && J.S > 0) {
      // Record the spike's step and bracket (hh_jax/_spikes.py places it within the step later).
      for (int64_t i = 0; i < len; ++i) {
        if (!crossed[i] || cnt[i] > J.S) continue;
        const int64_t row = (p * J.S + (cnt[i] - 1)) * N + i0 + i;
        J.steps[row] = static_cast<int32_t>(k);
        T* b = J.brackets + row * J.C;
        b[0] = Vp[i];
        b[1] = V[i];
        if (J.C == 4) {
          // dV/dt at both ends of the step, with the current at t_k and t_k + dt.
          const T* i0row = iend + (J.Te > 1 ? k : 0) * J.Ne;
          const T* i1row = iend + (J.Te > 1 ? k + 1 : 0) * J.Ne;
          T I0 = i0row[J.Ne > 1 ? i0 + i : 0], I1 = i1row[J.Ne > 1 ? i0 + i : 0];
          b[2] = dVdt(Vp[i], mp[i], hp[i], np_[i], I0, gNa[i], gK[i], gL[i], ENa[i], EK[i], EL[i], invC[i]);
          b[3] = dVdt(V[i], m[i], h[i], n[i], I1, gNa[i], gK[i], gL[i], ENa[i], EK[i], EL[i], invC[i]);
        }
      }
    }
    if (J.R > 0 && (k + 1) % J.every == 0 && (k + 1) / J.every < J.n_rec) record((k + 1) / J.every);
    if (J.n_ck > 1 && (k + 1) % J.K == 0 && (k + 1) / J.K < J.n_ck) checkpoint((k + 1) / J.K);
  }
  T* yf = J.yf + p * 4 * N + i0;
  int32_t* count = J.count + p * N + i0;
  for (int64_t i = 0; i < len; ++i) {
    yf[i] = V[i]; yf[N + i] = m[i]; yf[2 * N + i] = h[i]; yf[3 * N + i] = n[i];
    count[i] = cnt[i];
  }
}

}  // namespace

namespace {

// Threads start from this much work each (neuron-steps; ~0.3 ms on one core): below it,
// starting a thread costs more than it saves.
constexpr int64_t MIN_WORK_PER_THREAD = 100000;
// The smallest block when a population is cut finer than TILE so that every thread gets one
// (a multiple of every vector width).
constexpr int64_t MIN_TILE = 16;

// Runs `units` units of work on up to `threads` threads (the calling one included), each thread
// taking units one at a time from a shared counter (a thread the OS delays takes fewer: on a
// busy machine the others finish its share). `make_worker()` gives each thread its callable
// `worker(u)` (with any per-thread scratch memory it owns).
template <typename MakeWorker>
void run_units(int64_t units, int64_t threads, MakeWorker make_worker) {
  std::atomic<int64_t> next{0};
  auto run = [&next, units, &make_worker]() {
    auto worker = make_worker();
    for (int64_t u = next.fetch_add(1, std::memory_order_relaxed); u < units;
         u = next.fetch_add(1, std::memory_order_relaxed))
      worker(u);
  };
  const int64_t T_ = std::min<int64_t>(std::max<int64_t>(1, threads), units);
  std::vector<std::thread> pool;
  pool.reserve(std::max<int64_t>(0, T_ - 1));
  for (int64_t t = 1; t < T_; ++t) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
}

// The work is cut into units of one block of neurons of one batch element, run through all
// steps (`run_units`). Every neuron's arithmetic is the same whatever the cut (the vector body,
// the scalar tail and the branchy path for a few neurons are bit-identical), so results never
// depend on the number of threads.
template <typename T>
void run_all(const Job<T>& J, int64_t threads) {
  threads = std::max<int64_t>(1, threads);
  const int64_t work = J.P * J.N * std::max<int64_t>(1, J.n_steps);
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>(threads, work / MIN_WORK_PER_THREAD));
  // Blocks of TILE neurons, or smaller ones (down to MIN_TILE) where that leaves a thread idle.
  int64_t tile = TILE;
  if (J.P * ((J.N + TILE - 1) / TILE) < want) {
    const int64_t per_p = (want + J.P - 1) / J.P;  // units wanted per batch element
    tile = ((J.N + per_p - 1) / per_p + MIN_TILE - 1) / MIN_TILE * MIN_TILE;
    tile = std::min<int64_t>(TILE, std::max<int64_t>(MIN_TILE, tile));
  }
  const int64_t tiles_per_p = (J.N + tile - 1) / tile;
  run_units(J.P * tiles_per_p, want, [&J, tiles_per_p, tile]() {
    return [&J, tiles_per_p, tile](int64_t u) {
      int64_t p = u / tiles_per_p, i0 = (u % tiles_per_p) * tile;
      run_tile(J, p, i0, std::min<int64_t>(tile, J.N - i0));
    };
  });
}

template <ffi::DataType DT>
ffi::Error Impl(ffi::Buffer<DT> y0, ffi::Buffer<DT> par, ffi::Buffer<DT> imid, ffi::Buffer<DT> iend,
                ffi::Buffer<DT> times, ffi::ResultBuffer<DT> yf, ffi::ResultBuffer<ffi::S32> count,
                ffi::ResultBuffer<DT> rec, ffi::ResultBuffer<ffi::S32> steps,
                ffi::ResultBuffer<DT> brackets, ffi::ResultBuffer<DT> ck, int64_t n_steps,
                int64_t every, int64_t rec_mask, int64_t staggered, int64_t threads,
                int64_t ck_every) {
  using T = ffi::NativeType<DT>;
  auto d = y0.dimensions();
  if (d.size() < 2 || d[d.size() - 2] != 4) return ffi::Error::InvalidArgument("y0 must be [..., 4, N]");
  Job<T> J;
  J.N = d[d.size() - 1];
  J.P = J.N == 0 ? 0 : static_cast<int64_t>(y0.element_count()) / (4 * J.N);
  auto dm = imid.dimensions();
  auto de = iend.dimensions();
  auto dr = rec->dimensions();
  auto ds = steps->dimensions();
  auto db = brackets->dimensions();
  if (dm.size() < 2 || de.size() < 2 || dr.size() < 3 || ds.size() < 2 || db.size() < 3)
    return ffi::Error::InvalidArgument("bad ranks");
  J.Tm = dm[dm.size() - 2]; J.Nm = dm[dm.size() - 1];
  J.Te = de[de.size() - 2]; J.Ne = de[de.size() - 1];
  J.n_rec = dr[dr.size() - 3];
  J.R = static_cast<int>(dr[dr.size() - 2]);
  J.S = ds[ds.size() - 2];
  J.C = db[db.size() - 1];
  if (db[db.size() - 3] != J.S || db[db.size() - 2] != J.N || ds[ds.size() - 1] != J.N ||
      (J.C != 2 && J.C != 4))
    return ffi::Error::InvalidArgument("steps must be [..., S, N] and brackets [..., S, N, 2 or 4]");
  if ((J.Nm != 1 && J.Nm != J.N) || (J.Ne != 1 && J.Ne != J.N) || (J.Tm != 1 && J.Tm != n_steps) ||
      (J.Te != 1 && J.Te != n_steps + 1) || every < 1 || J.R > 4)
    return ffi::Error::InvalidArgument("inconsistent shapes");
  if (static_cast<int64_t>(imid.element_count()) != J.P * J.Tm * J.Nm ||
      static_cast<int64_t>(iend.element_count()) != J.P * J.Te * J.Ne ||
      static_cast<int64_t>(par.element_count()) != J.P * M::N_PAR * J.N ||
      static_cast<int64_t>(times.element_count()) != J.P * 2)
    return ffi::Error::InvalidArgument("batch dimensions differ between inputs");
  int r = 0;
  for (int b = 0; b < 4; ++b)
    if (rec_mask & (1 << b)) {
      J.rec_idx[r++] = b;
    }
  if (J.n_rec > 0 && r != J.R) return ffi::Error::InvalidArgument("rec_mask does not match rec");
  if (J.n_rec == 0) J.R = 0;
  J.y0 = y0.typed_data(); J.par = par.typed_data(); J.imid = imid.typed_data(); J.iend = iend.typed_data();
  J.times = times.typed_data();
  J.yf = yf->typed_data(); J.count = count->typed_data(); J.rec = rec->typed_data();
  J.steps = steps->typed_data(); J.brackets = brackets->typed_data();
  J.ck = ck->typed_data();
  auto dc = ck->dimensions();
  J.n_ck = dc.size() >= 3 ? dc[dc.size() - 3] : 0;
  J.K = ck_every;
  if (J.n_ck > 0 && (ck_every < 1 || J.n_ck != std::max<int64_t>(1, (n_steps + ck_every - 1) / ck_every) ||
                     dc[dc.size() - 2] != 4 || dc[dc.size() - 1] != J.N))
    return ffi::Error::InvalidArgument("ck must be [..., max(1, ceil(n_steps / ck_every)), 4, N]");
  J.n_steps = n_steps; J.every = every;
  J.staggered = staggered != 0;
  if (J.P * J.N > 0) run_all(J, threads);
  return ffi::Error::Success();
}

}  // namespace

#define HH_BIND(DT)                                   \
  ffi::Ffi::Bind()                                    \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<ffi::S32>>()                   \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<ffi::S32>>()                   \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Attr<int64_t>("n_steps")                       \
      .Attr<int64_t>("every")                         \
      .Attr<int64_t>("rec_mask")                      \
      .Attr<int64_t>("staggered")                     \
      .Attr<int64_t>("threads")                       \
      .Attr<int64_t>("ck_every")

XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerF32, Impl<ffi::F32>, HH_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerF64, Impl<ffi::F64>, HH_BIND(ffi::F64));

// ---------------------------------------------------------------------------------------------
// The discrete adjoint (reverse mode): the exact derivative of the loop above, run backwards.
//
//   par, imid, iend, times   as the forward call
//   ck     [P, n_ck, 4, N]   the forward's checkpoints (states at steps 0, K, 2K, ...)
//   steps  [P, S, N] int32   the forward's crossing steps (-1 padded)
//   ct_yf  [P, 4, N]         cotangent of the final state
//   ct_rec [P, n_rec, R, N]  cotangent of the records (rec_mask selects the R variables)
//   ct_br  [P, S, N, C]      cotangent of the brackets
// Returns the cotangents of y0 [P, 4, N], par [P, N_PAR, N], dt (per neuron) [P, N], and of the
// current tables: imid as [P, Tm, N] where it is per neuron (Nm = N), else as per-block partial
// sums [P, U, Tm] (U = ceil(N / TILE) blocks, summed by the caller); iend alike.
//
// Each block of TILE neurons walks the segments [cK, (c+1)K) from the last: it recomputes the
// segment's states from checkpoint c with the forward half of the generated step VJP
// (hh_adjoint.h: jax.vjp of hh_jax._model.exp_euler_step, split by a jax.checkpoint policy),
// which also stores each step's exponentials and reciprocals; then it applies the backward half
// step by step, backwards, reading them, and adds the cotangents of whatever the forward
// recorded of each state (records, bracket ends; dvdt_vjp for the slopes) as the walk passes
// it. The recomputed states are the model's step in JAX's arithmetic, within rounding of the
// forward kernel's (which restarts each segment from its checkpoint). Memory: the
// checkpoints, O(N T / K), and K + 1 states and K steps' residuals per block.
namespace {

// No (further) crossing of a neuron, going backwards: never a state index s or s - 1.
constexpr int32_t NO_CROSSING = -2;

template <typename T>
struct AdjJob {
  const T *par, *imid, *iend, *times, *ck, *ct_yf, *ct_rec, *ct_br;
  const int32_t* steps;
  T *g_y0, *g_par, *g_dt, *g_imid, *g_iend;
  int64_t P, N, n_steps, Tm, Nm, Te, Ne, every, n_rec, S, C, K, n_ck, U;
  int rec_idx[4];
  int R;
  bool staggered;
};

template <typename T, bool Staggered>
void adj_tile(const AdjJob<T>& J, int64_t p, int64_t i0, int64_t len, T* buf) {
  const int64_t N = J.N;
  alignas(64) T lam[4][TILE];
  alignas(64) T gp[M::N_PAR][TILE];
  alignas(64) T gdt[TILE], gI[TILE], Ik[TILE], gImid1[TILE];
  alignas(64) T pr[M::N_PAR][TILE];
  int32_t ptr[TILE], nxt[TILE];
  const T* par = J.par + p * M::N_PAR * N + i0;
  for (int r = 0; r < M::N_PAR; ++r)
    for (int64_t i = 0; i < len; ++i) { pr[r][i] = par[r * N + i]; gp[r][i] = T(0); }
  for (int64_t i = 0; i < len; ++i) {
    gdt[i] = T(0);
    gImid1[i] = T(0);
    for (int v = 0; v < 4; ++v) lam[v][i] = J.ct_yf[(p * 4 + v) * N + i0 + i];
    int32_t j = int32_t(J.S) - 1;
    while (j >= 0 && J.steps[(p * J.S + j) * N + i0 + i] < 0) --j;
    ptr[i] = j;
    nxt[i] = j >= 0 ? J.steps[(p * J.S + j) * N + i0 + i] : NO_CROSSING;
  }
  int32_t nxt_max = NO_CROSSING;
  for (int64_t i = 0; i < len; ++i) nxt_max = std::max(nxt_max, nxt[i]);
  const T dt = J.times[2 * p + 1];
  const int64_t u = i0 / TILE;  // this block's row of the partial sums
  const T* imid = J.imid + p * J.Tm * J.Nm;
  const T* iend = J.iend + p * J.Te * J.Ne;
  auto I_end = [&](int64_t k, int64_t i) {
    return iend[(J.Te > 1 ? k : 0) * J.Ne + (J.Ne > 1 ? i0 + i : 0)];
  };
  auto add_g_iend = [&](int64_t k, int64_t i, T g) {
    const int64_t row = J.Te > 1 ? k : 0;
    if (J.Ne > 1) J.g_iend[(p * J.Te + row) * N + i0 + i] += g;
    else J.g_iend[(p * J.U + u) * J.Te + row] += g;
  };
  // The cotangents of what the forward recorded of the state x_s (its V, m, h, n at index i of
  // the stride-TILE buffer x): the record sample, and the bracket ends of a crossing in step s
  // (x_s is its start) or in step s - 1 (x_s is its end).
  auto inject = [&](int64_t s, const T* x) {
    if (J.R > 0 && s % J.every == 0 && s / J.every < J.n_rec) {
      const T* c = J.ct_rec + ((p * J.n_rec + s / J.every) * J.R) * N + i0;
      for (int r = 0; r < J.R; ++r) {
        T* l = lam[J.rec_idx[r]];
        for (int64_t i = 0; i < len; ++i) l[i] += c[r * N + i];
      }
    }
    // Going backwards every pending crossing lies at step <= s (those after s are done): a
    // neuron has one here iff its nxt >= s - 1, so most steps stop at one comparison.
    if (nxt_max < s - 1) return;
    for (int64_t i = 0; i < len; ++i) {
      const bool start = nxt[i] == s, end = nxt[i] == s - 1;
      if (!start && !end) continue;
      const T* c = J.ct_br + ((p * J.S + ptr[i]) * N + i0 + i) * J.C;
      lam[0][i] += start ? c[0] : c[1];
      if (J.C == 4) {
        T gV, gm, gh, gn, ggNa, ggK, ggL, gENa, gEK, gEL, gC, gI;
        dvdt_vjp<T>(x[i], x[TILE + i], x[2 * TILE + i], x[3 * TILE + i], pr[M::PAR_GNA][i],
                    pr[M::PAR_GK][i], pr[M::PAR_GL][i], pr[M::PAR_ENA][i], pr[M::PAR_EK][i],
                    pr[M::PAR_EL][i], pr[M::PAR_C][i], I_end(s, i), start ? c[2] : c[3], gV, gm,
                    gh, gn, ggNa, ggK, ggL, gENa, gEK, gEL, gC, gI);
        lam[0][i] += gV; lam[1][i] += gm; lam[2][i] += gh; lam[3][i] += gn;
        gp[M::PAR_GNA][i] += ggNa; gp[M::PAR_GK][i] += ggK; gp[M::PAR_GL][i] += ggL;
        gp[M::PAR_ENA][i] += gENa; gp[M::PAR_EK][i] += gEK; gp[M::PAR_EL][i] += gEL;
        gp[M::PAR_C][i] += gC;
        add_g_iend(s, i, gI);
      }
      if (start) {  // done with this crossing: the previous one is next, going backwards
        --ptr[i];
        nxt[i] = ptr[i] >= 0 ? J.steps[(p * J.S + ptr[i]) * N + i0 + i] : NO_CROSSING;
      }
    }
    nxt_max = NO_CROSSING;
    for (int64_t i = 0; i < len; ++i) nxt_max = std::max(nxt_max, nxt[i]);
  };
  // buf: K + 1 states of the block, [K + 1][4][TILE], then K steps' residuals for the backward
  // half of the step VJP, [K][STEP_RESIDUALS][TILE]
  T* res = buf + (J.K + 1) * 4 * TILE;
  for (int64_t c = J.n_ck - 1; c >= 0; --c) {
    const int64_t s0 = c * J.K, s1 = std::min(s0 + J.K, J.n_steps);
    const T* src = J.ck + (p * J.n_ck + c) * 4 * N + i0;
    for (int v = 0; v < 4; ++v) std::memcpy(buf + v * TILE, src + v * N, len * sizeof(T));
    for (int64_t k = s0; k < s1; ++k) {
      const T* x0 = buf + (k - s0) * 4 * TILE;
      T* x1 = buf + (k - s0 + 1) * 4 * TILE;
      T* rk = res + (k - s0) * STEP_RESIDUALS * TILE;
      const T* irow = imid + (J.Tm > 1 ? k : 0) * J.Nm;
      for (int64_t i = 0; i < len; ++i) Ik[i] = irow[J.Nm > 1 ? i0 + i : 0];
      auto fwd = Staggered ? step_fwd_staggered<T> : step_fwd_simultaneous<T>;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i)
        fwd(x0[i], x0[TILE + i], x0[2 * TILE + i], x0[3 * TILE + i], pr[M::PAR_GNA][i],
            pr[M::PAR_GK][i], pr[M::PAR_GL][i], pr[M::PAR_ENA][i], pr[M::PAR_EK][i],
            pr[M::PAR_EL][i], pr[M::PAR_C][i], pr[M::PAR_RATE_FACTOR][i], Ik[i], dt, x1[i],
            x1[TILE + i], x1[2 * TILE + i], x1[3 * TILE + i], rk + i, TILE);
    }
    if (c == J.n_ck - 1) inject(s1, buf + (s1 - s0) * 4 * TILE);
    for (int64_t k = s1 - 1; k >= s0; --k) {
      const T* x = buf + (k - s0) * 4 * TILE;
      const T* rk = res + (k - s0) * STEP_RESIDUALS * TILE;
      const T* irow = imid + (J.Tm > 1 ? k : 0) * J.Nm;
      for (int64_t i = 0; i < len; ++i) Ik[i] = irow[J.Nm > 1 ? i0 + i : 0];
      auto bwd = Staggered ? step_bwd_staggered<T> : step_bwd_simultaneous<T>;
#pragma omp simd
      for (int64_t i = 0; i < len; ++i) {
        T gV, gm, gh, gn, ggNa, ggK, ggL, gENa, gEK, gEL, gC, gphi, gIi, gdti;
        bwd(x[i], x[TILE + i], x[2 * TILE + i], x[3 * TILE + i], pr[M::PAR_GNA][i],
            pr[M::PAR_GK][i], pr[M::PAR_GL][i], pr[M::PAR_ENA][i], pr[M::PAR_EK][i],
            pr[M::PAR_EL][i], pr[M::PAR_C][i], pr[M::PAR_RATE_FACTOR][i], Ik[i], dt, rk + i, TILE,
            lam[0][i], lam[1][i], lam[2][i], lam[3][i], gV, gm, gh, gn, ggNa, ggK, ggL, gENa, gEK,
            gEL, gC, gphi, gIi, gdti);
        lam[0][i] = gV; lam[1][i] = gm; lam[2][i] = gh; lam[3][i] = gn;
        gp[M::PAR_GNA][i] += ggNa; gp[M::PAR_GK][i] += ggK; gp[M::PAR_GL][i] += ggL;
        gp[M::PAR_ENA][i] += gENa; gp[M::PAR_EK][i] += gEK; gp[M::PAR_EL][i] += gEL;
        gp[M::PAR_C][i] += gC; gp[M::PAR_RATE_FACTOR][i] += gphi;
        gdt[i] += gdti;
        gI[i] = gIi;
      }
      if (J.Nm > 1) {
        if (J.Tm > 1) {
          T* dst = J.g_imid + (p * J.Tm + k) * N + i0;
          for (int64_t i = 0; i < len; ++i) dst[i] = gI[i];
        } else {
          for (int64_t i = 0; i < len; ++i) gImid1[i] += gI[i];
        }
      } else {
        T sum = T(0);
        for (int64_t i = 0; i < len; ++i) sum += gI[i];
        J.g_imid[(p * J.U + u) * J.Tm + (J.Tm > 1 ? k : 0)] += sum;
      }
      inject(k, x);
    }
  }
  if (J.Nm > 1 && J.Tm == 1)
    for (int64_t i = 0; i < len; ++i) J.g_imid[p * N + i0 + i] = gImid1[i];
  for (int v = 0; v < 4; ++v)
    for (int64_t i = 0; i < len; ++i) J.g_y0[(p * 4 + v) * N + i0 + i] = lam[v][i];
  for (int r = 0; r < M::N_PAR; ++r)
    for (int64_t i = 0; i < len; ++i) J.g_par[(p * M::N_PAR + r) * N + i0 + i] = gp[r][i];
  for (int64_t i = 0; i < len; ++i) J.g_dt[p * N + i0 + i] = gdt[i];
}

template <typename T>
void adj_all(const AdjJob<T>& J, int64_t threads) {
  const int64_t work = 3 * J.P * J.N * std::max<int64_t>(1, J.n_steps);
  const int64_t want = std::max<int64_t>(1, std::min<int64_t>(threads, work / MIN_WORK_PER_THREAD));
  run_units(J.P * J.U, want, [&J]() {
    // each thread's segment buffer: K + 1 states and K steps' residuals of a block
    const size_t size = static_cast<size_t>((J.K + 1) * 4 + J.K * STEP_RESIDUALS) * TILE;
    return [&J, buf = std::vector<T>(size)](int64_t u) mutable {
      int64_t p = u / J.U, i0 = (u % J.U) * TILE;
      int64_t len = std::min<int64_t>(TILE, J.N - i0);
      J.staggered ? adj_tile<T, true>(J, p, i0, len, buf.data())
                  : adj_tile<T, false>(J, p, i0, len, buf.data());
    };
  });
}

template <ffi::DataType DT>
ffi::Error AdjImpl(ffi::Buffer<DT> par, ffi::Buffer<DT> imid, ffi::Buffer<DT> iend,
                   ffi::Buffer<DT> times, ffi::Buffer<DT> ck, ffi::Buffer<ffi::S32> steps,
                   ffi::Buffer<DT> ct_yf, ffi::Buffer<DT> ct_rec, ffi::Buffer<DT> ct_br,
                   ffi::ResultBuffer<DT> g_y0, ffi::ResultBuffer<DT> g_par,
                   ffi::ResultBuffer<DT> g_dt, ffi::ResultBuffer<DT> g_imid,
                   ffi::ResultBuffer<DT> g_iend, int64_t n_steps, int64_t every, int64_t rec_mask,
                   int64_t staggered, int64_t threads, int64_t ck_every) {
  using T = ffi::NativeType<DT>;
  AdjJob<T> J;
  auto dy = ct_yf.dimensions();
  if (dy.size() < 2 || dy[dy.size() - 2] != 4) return ffi::Error::InvalidArgument("ct_yf must be [..., 4, N]");
  J.N = dy[dy.size() - 1];
  J.P = J.N == 0 ? 0 : static_cast<int64_t>(ct_yf.element_count()) / (4 * J.N);
  auto dm = imid.dimensions(), de = iend.dimensions(), dc = ck.dimensions();
  auto dr = ct_rec.dimensions(), ds = steps.dimensions(), db = ct_br.dimensions();
  if (dm.size() < 2 || de.size() < 2 || dc.size() < 3 || dr.size() < 3 || ds.size() < 2 || db.size() < 3)
    return ffi::Error::InvalidArgument("bad ranks");
  J.Tm = dm[dm.size() - 2]; J.Nm = dm[dm.size() - 1];
  J.Te = de[de.size() - 2]; J.Ne = de[de.size() - 1];
  J.n_ck = dc[dc.size() - 3];
  J.n_rec = dr[dr.size() - 3];
  J.R = static_cast<int>(dr[dr.size() - 2]);
  J.S = ds[ds.size() - 2];
  J.C = db[db.size() - 1];
  J.K = ck_every;
  J.U = (J.N + TILE - 1) / TILE;
  if (ck_every < 1 || J.n_ck != std::max<int64_t>(1, (n_steps + ck_every - 1) / ck_every) ||
      every < 1 || J.R > 4 || (J.C != 2 && J.C != 4) || db[db.size() - 3] != J.S ||
      (J.Nm != 1 && J.Nm != J.N) || (J.Ne != 1 && J.Ne != J.N) || (J.Tm != 1 && J.Tm != n_steps) ||
      (J.Te != 1 && J.Te != n_steps + 1))
    return ffi::Error::InvalidArgument("inconsistent shapes");
  const int64_t want_imid = J.P * (J.Nm > 1 ? J.Tm * J.N : J.U * J.Tm);
  const int64_t want_iend = J.P * (J.Ne > 1 ? J.Te * J.N : J.U * J.Te);
  if (static_cast<int64_t>(g_imid->element_count()) != want_imid ||
      static_cast<int64_t>(g_iend->element_count()) != want_iend ||
      static_cast<int64_t>(par.element_count()) != J.P * M::N_PAR * J.N)
    return ffi::Error::InvalidArgument("bad cotangent shapes");
  int r = 0;
  for (int b = 0; b < 4; ++b)
    if (rec_mask & (1 << b)) J.rec_idx[r++] = b;
  if (J.n_rec > 0 && r != J.R) return ffi::Error::InvalidArgument("rec_mask does not match ct_rec");
  if (J.n_rec == 0) J.R = 0;
  J.par = par.typed_data(); J.imid = imid.typed_data(); J.iend = iend.typed_data();
  J.times = times.typed_data(); J.ck = ck.typed_data(); J.steps = steps.typed_data();
  J.ct_yf = ct_yf.typed_data(); J.ct_rec = ct_rec.typed_data(); J.ct_br = ct_br.typed_data();
  J.g_y0 = g_y0->typed_data(); J.g_par = g_par->typed_data(); J.g_dt = g_dt->typed_data();
  J.g_imid = g_imid->typed_data(); J.g_iend = g_iend->typed_data();
  std::fill(J.g_imid, J.g_imid + want_imid, T(0));
  std::fill(J.g_iend, J.g_iend + want_iend, T(0));
  J.n_steps = n_steps; J.every = every;
  J.staggered = staggered != 0;
  if (J.P * J.N > 0) adj_all(J, threads);
  return ffi::Error::Success();
}

}  // namespace

#define HH_ADJ_BIND(DT)                               \
  ffi::Ffi::Bind()                                    \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<ffi::S32>>()                   \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Arg<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Ret<ffi::Buffer<DT>>()                         \
      .Attr<int64_t>("n_steps")                       \
      .Attr<int64_t>("every")                         \
      .Attr<int64_t>("rec_mask")                      \
      .Attr<int64_t>("staggered")                     \
      .Attr<int64_t>("threads")                       \
      .Attr<int64_t>("ck_every")

XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerVjpF32, AdjImpl<ffi::F32>, HH_ADJ_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerVjpF64, AdjImpl<ffi::F64>, HH_ADJ_BIND(ffi::F64));

// Test entry points (tests/test_kernel_arith.py, through ctypes): the kernel's own arithmetic on
// arrays, one neuron at a time with the branchy scalar code and in blocks with the vector code.
//   rates: out[6 * n] = the six rates (alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) at
//          V[i] times phi[i], rate-major
//   step:  y[4 * n] (V, m, h, n, variable-major) advanced in place by one exponential-Euler
//          step of dt with currents I[n]; par[N_PAR * n] in the kernel's layout
namespace {
template <typename T>
void test_rates(const T* V, const T* phi, int64_t n, int64_t branchy, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    T r[6];
    if (branchy) rates<true>(V[i], phi[i], r[0], r[1], r[2], r[3], r[4], r[5]);
    else rates<false>(V[i], phi[i], r[0], r[1], r[2], r[3], r[4], r[5]);
    for (int k = 0; k < 6; ++k) out[k * n + i] = r[k];
  }
}
template <typename T>
void test_step(T* y, const T* par, const T* I, T dt, int64_t n, int64_t staggered, int64_t branchy) {
  auto P = [&](int64_t r, int64_t i) { return par[r * n + i]; };
  for (int64_t i = 0; i < n; ++i) {
    T v = y[i], m = y[n + i], h = y[2 * n + i], nn = y[3 * n + i];
    T args[7] = {P(M::PAR_GNA, i), P(M::PAR_GK, i), P(M::PAR_GL, i), P(M::PAR_ENA, i),
                 P(M::PAR_EK, i), P(M::PAR_EL, i), T(1) / P(M::PAR_C, i)};
    T phi = P(M::PAR_RATE_FACTOR, i);
    auto go = [&](auto f) { f(dt, I[i], v, m, h, nn, args[0], args[1], args[2], args[3], args[4], args[5], args[6], phi); };
    if (staggered) {
      if (branchy) go(step_one<true, true, T>); else go(step_one<true, false, T>);
    } else {
      if (branchy) go(step_one<false, true, T>); else go(step_one<false, false, T>);
    }
    y[i] = v; y[n + i] = m; y[2 * n + i] = h; y[3 * n + i] = nn;
  }
}
// The adjoint's two halves composed: the forward's residuals, then the backward.
template <typename T>
void test_step_vjp(const T* in, int64_t n, int64_t staggered, T* out) {
  std::vector<T> y1(4 * n);  // the next state, unused here (test_step_fwd checks it)
  for (int64_t i = 0; i < n; ++i) {
    T r[STEP_RESIDUALS];
    if (staggered) {
      step_fwd_staggered_arrays(in + i, y1.data() + i, n, r, 1);
      step_bwd_staggered_arrays(in + i, out + i, n, r, 1);
    } else {
      step_fwd_simultaneous_arrays(in + i, y1.data() + i, n, r, 1);
      step_bwd_simultaneous_arrays(in + i, out + i, n, r, 1);
    }
  }
}
// The forward half's next state: in [STEP_FWD_STAGGERED_N_IN, n], out [4, n].
template <typename T>
void test_step_fwd(const T* in, int64_t n, int64_t staggered, T* out) {
  for (int64_t i = 0; i < n; ++i) {
    T r[STEP_RESIDUALS];
    staggered ? step_fwd_staggered_arrays(in + i, out + i, n, r, 1)
              : step_fwd_simultaneous_arrays(in + i, out + i, n, r, 1);
  }
}
template <typename T>
void test_dvdt_vjp(const T* in, int64_t n, T* out) {
  for (int64_t i = 0; i < n; ++i) dvdt_vjp_arrays(in + i, out + i, n);
}
}  // namespace

extern "C" {
int64_t hh_jax_n_par() { return M::N_PAR; }
void hh_jax_rates_f64(const double* V, const double* phi, int64_t n, int64_t branchy, double* out) {
  test_rates(V, phi, n, branchy, out);
}
void hh_jax_rates_f32(const float* V, const float* phi, int64_t n, int64_t branchy, float* out) {
  test_rates(V, phi, n, branchy, out);
}
void hh_jax_step_f64(double* y, const double* par, const double* I, double dt, int64_t n,
                     int64_t staggered, int64_t branchy) {
  test_step(y, par, I, dt, n, staggered, branchy);
}
void hh_jax_step_f32(float* y, const float* par, const float* I, float dt, int64_t n,
                     int64_t staggered, int64_t branchy) {
  test_step(y, par, I, dt, n, staggered, branchy);
}
// The generated step VJP: in [STEP_BWD_STAGGERED_N_IN, n] (hh_jax._codegen.STEP_INPUTS, then the
// cotangents of V, m, h, n), out [..._N_OUT, n] (the cotangents of STEP_INPUTS); the dV/dt VJP:
// in [DVDT_VJP_N_IN, n] (DVDT_INPUTS, then the cotangent of dV/dt), out [DVDT_VJP_N_OUT, n].
void hh_jax_step_vjp_f64(const double* in, int64_t n, int64_t staggered, double* out) {
  test_step_vjp(in, n, staggered, out);
}
void hh_jax_step_vjp_f32(const float* in, int64_t n, int64_t staggered, float* out) {
  test_step_vjp(in, n, staggered, out);
}
void hh_jax_step_fwd_f64(const double* in, int64_t n, int64_t staggered, double* out) {
  test_step_fwd(in, n, staggered, out);
}
void hh_jax_step_fwd_f32(const float* in, int64_t n, int64_t staggered, float* out) {
  test_step_fwd(in, n, staggered, out);
}
void hh_jax_dvdt_vjp_f64(const double* in, int64_t n, double* out) { test_dvdt_vjp(in, n, out); }
void hh_jax_dvdt_vjp_f32(const float* in, int64_t n, float* out) { test_dvdt_vjp(in, n, out); }
}

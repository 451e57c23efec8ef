// hh_jax fused CPU kernel: the whole exponential-Euler time loop of a HH population in one
// XLA FFI call.
//
// The mathematics is that of hh_jax/_steppers.py (ExpEuler) and hh_jax/_rates.py (gate_rates),
// written so that the compiler vectorises the neuron loop: every function below is branch-free
// (selects only) and inlined; the exponential is a Cody-Waite range reduction with a Taylor
// polynomial (<= 2 ulp), the same code in the vector body and the scalar tail, so a neuron's
// result never depends on its position in the population. Each thread runs blocks of TILE
// neurons through *all* time steps with the state in L1 cache: no kernel boundaries, no memory
// traffic per step.
//
// Layout (P = product of leading batch dims, N = neurons, all row-major):
//   y0     [P, 4, N]        V (mV), m, h, n
//   par    [P, 8, N]        gNa, gK, gL (mS/cm2), ENa, EK, EL (mV), C (uF/cm2), V_th (mV)
//   imid   [P, Tm, Nm]      injected current (uA/cm2) at t_k + dt/2; Tm in {1, n_steps},
//                           Nm in {1, N}
//   iend   [P, Te, Ne]      injected current at the step ends t_k (Hermite spike times only);
//                           Te in {1, n_steps + 1}, Ne in {1, N}
//   times  [P, 2]           t0 (ms), dt (ms): operands, not attributes, so that one compiled
//                           program serves every start time and step
//   yf     [P, 4, N]        final state
//   count  [P, N] int32     upward crossings of V_th
//   rec    [P, n_rec, R, N] the state variables selected by rec_mask (bits V, m, h, n) at
//                           steps 0, every, 2 every, ...
//   spikes [P, S, N]        crossing times (ms), +inf padded
//
// Built and loaded by hh_jax/_fused.py (g++ -O3 -march=native), never by a user.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t TILE = 128;

template <typename T> struct Consts;
template <> struct Consts<float> {
  static constexpr float lo = -87.0f, hi = 88.0f;
  static constexpr float bern_small = 0.5f;
  static constexpr float exprel_small = 0.5f;
};
template <> struct Consts<double> {
  static constexpr double lo = -708.0, hi = 709.0;
  static constexpr double bern_small = 0.5;
  static constexpr double exprel_small = 0.5;
};

inline float scale2(float n) {  // 2^n for an integral n in [-126, 127]
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float s;
  std::memcpy(&s, &bits, sizeof s);
  return s;
}
inline double scale2(double n) {  // 2^n for an integral n in [-1022, 1023]
  int64_t bits = (static_cast<int64_t>(n) + 1023) << 52;
  double s;
  std::memcpy(&s, &bits, sizeof s);
  return s;
}

// 1/k!, k = 0..14: the Taylor coefficients of e^r and (shifted by one) of exprel.
constexpr double kInvFact[15] = {1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720,
                                 1.0 / 5040, 1.0 / 40320, 1.0 / 362880, 1.0 / 3628800,
                                 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800,
                                 1.0 / 87178291200};

// Taylor polynomials of e^r for |r| <= ln2/2, in Estrin form (a short dependency chain: one
// neuron is latency bound). Degree 7 (float32), 13 (float64).
inline float exp_poly(float r) {
  float r2 = r * r, r4 = r2 * r2;
  float p01 = 1.0f + r, p23 = 0.5f + r * (1.0f / 6.0f);
  float p45 = 1.0f / 24.0f + r * (1.0f / 120.0f), p67 = 1.0f / 720.0f + r * (1.0f / 5040.0f);
  return (p01 + r2 * p23) + r4 * (p45 + r2 * p67);
}
inline double exp_poly(double r) {
  const double* c = kInvFact;
  double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  double q0 = (c[0] + r * c[1]) + r2 * (c[2] + r * c[3]);
  double q1 = (c[4] + r * c[5]) + r2 * (c[6] + r * c[7]);
  double q2 = (c[8] + r * c[9]) + r2 * (c[10] + r * c[11]);
  double q3 = c[12] + r * c[13];
  return (q0 + r4 * q1) + r8 * (q2 + r4 * q3);
}

// exp(x) for x inside the finite range: Cody-Waite reduction x = n ln2 + r, then e^r 2^n.
inline float exp_in_range(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23: round to nearest integer
  float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693145751953125f;  // ln2 split (Cody-Waite)
  r = r - n * 1.428606765330187045e-06f;
  return exp_poly(r) * scale2(n);
}
inline double exp_in_range(double x) {
  const double magic = 6755399441055744.0;  // 1.5 * 2^52
  double n = (x * 1.4426950408889634074 + magic) - magic;
  double r = x - n * 6.93147180369123816490e-01;
  r = r - n * 1.90821492927058770002e-10;
  return exp_poly(r) * scale2(n);
}

// exp(x), branch-free, NaN-preserving (a NaN fails both comparisons and flows through the
// polynomial); clamped to the floating-point range of the reduction (Consts::lo/hi: a guard
// of this implementation, not part of the model; the model's bound on the rate exponents is
// `exp_clip`, passed from hh_jax/_rates.py).
template <typename T>
inline T vexp(T x) {
  x = x < Consts<T>::lo ? Consts<T>::lo : (x > Consts<T>::hi ? Consts<T>::hi : x);
  return exp_in_range(x);
}

// The same exponential with branches, for scalar code (a shorter dependency chain; one neuron
// is latency bound), bit-identical: for |x| < 0.34 the reduction is the identity (n = 0,
// r = x, 2^n = 1), and inside the range the clamp is.
template <typename T>
inline T bexp(T x) {
  if (std::abs(x) < T(0.34)) return exp_poly(x);
  if (x > Consts<T>::lo && x < Consts<T>::hi) return exp_in_range(x);
  return vexp(x);
}

// scale * u / (e^u - 1) given E = e^u: Taylor series (through u^12) for |u| < 1/2, as in
// _rates.py, in Estrin form. The scale multiplies the numerator (off the dependency chain).
template <bool Branchy, typename T>
inline T bernoulli(T u, T E, T scale = T(1)) {
  bool small = std::abs(u) < Consts<T>::bern_small;
  if constexpr (Branchy) {
    if (!small) return (scale * u) / (E - T(1));
  }
  T u2 = u * u, u4 = u2 * u2, u8 = u4 * u4;
  T even = (T(1.0 / 12.0) + u2 * T(-1.0 / 720.0)) + u4 * (T(1.0 / 30240.0) + u2 * T(-1.0 / 1209600.0)) +
           u8 * (T(1.0 / 47900160.0) + u2 * T(-691.0 / 1307674368000.0));
  T series = scale * ((T(1) - T(0.5) * u) + u2 * even);
  T den = small ? T(1) : E - T(1);
  T big = (small ? T(1) : scale * u) / den;
  return small ? series : big;
}

// Taylor polynomial of exprel, sum_j z^j / (j+1)!, for |z| < 1/2 (Estrin form): 9 terms in
// float32 (truncation < 1e-8), 14 in float64 (< 1e-17).
inline float exprel_series(float z) {
  float z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  float q0 = (1.0f + z * 0.5f) + z2 * (1.0f / 6 + z * (1.0f / 24));
  float q1 = (1.0f / 120 + z * (1.0f / 720)) + z2 * (1.0f / 5040 + z * (1.0f / 40320));
  return (q0 + z4 * q1) + z8 * (1.0f / 362880);
}
inline double exprel_series(double z) {
  const double* c = kInvFact + 1;  // z^j / (j+1)!
  double z2 = z * z, z4 = z2 * z2, z8 = z4 * z4;
  double q0 = (c[0] + z * c[1]) + z2 * (c[2] + z * c[3]);
  double q1 = (c[4] + z * c[5]) + z2 * (c[6] + z * c[7]);
  double q2 = (c[8] + z * c[9]) + z2 * (c[10] + z * c[11]);
  double q3 = c[12] + z * c[13];
  return (q0 + z4 * q1) + z8 * (q2 + z4 * q3);
}

// (e^z - 1) / z for z <= 0: the series for |z| < 1/2, else (e^z - 1)/z.
template <bool Branchy, typename T>
inline T exprel(T z) {
  bool small = std::abs(z) < Consts<T>::exprel_small;
  if constexpr (Branchy) {
    if (small) return exprel_series(z);
    return (vexp(z) - T(1)) / z;
  }
  T zb = small ? T(-1) : z;
  T big = (vexp(zb) - T(1)) / zb;
  return small ? exprel_series(z) : big;
}

// dV/dt (mV/ms) at a state for a current I (for the Hermite spike times); invC = 1/C.
template <typename T>
inline T dVdt(T V, T m, T h, T n, T I, T gNa, T gK, T gL, T ENa, T EK, T EL, T invC) {
  T gna = gNa * (m * m * m * h);
  T n2 = n * n;
  T gk = gK * (n2 * n2);
  T iion = gna * (V - ENa) + gk * (V - EK) + gL * (V - EL);
  return (I - iion) * invC;
}

template <typename T>
inline void hermite(T s, T V0, T V1, T d0, T d1, T* value, T* slope) {
  T s2 = s * s, s3 = s2 * s;
  *value = (2 * s3 - 3 * s2 + 1) * V0 + (s3 - 2 * s2 + s) * d0 + (-2 * s3 + 3 * s2) * V1 + (s3 - s2) * d1;
  *slope = (6 * s2 - 6 * s) * (V0 - V1) + (3 * s2 - 4 * s + 1) * d0 + (3 * s2 - 2 * s) * d1;
}

// Crossing time (ms) of V_th within [t, t + dt], as hh_jax/_spikes.py: the linear guess, then 20
// bracketed Newton steps on the cubic Hermite interpolant, then one final Newton correction.
template <typename T>
inline T crossing_time(bool use_hermite, T t, T dt, T V0, T V1, T dVdt0, T dVdt1, T Vth) {
  T dV = V1 > V0 ? V1 - V0 : T(1);
  T s = (Vth - V0) / dV;
  s = s < T(0) ? T(0) : (s > T(1) ? T(1) : s);
  if (!use_hermite) return t + dt * s;
  T d0 = dt * dVdt0, d1 = dt * dVdt1;
  T lo = 0, hi = 1, v, dv;
  for (int it = 0; it < 20; ++it) {
    hermite(s, V0, V1, d0, d1, &v, &dv);
    v = v - Vth;
    if (v < 0) lo = s; else hi = s;
    T safe = dv > 0 ? dv : T(1);
    T sn = s - v / safe;
    bool ok = (dv > 0) && (sn > lo) && (sn < hi);
    s = ok ? sn : T(0.5) * (lo + hi);
  }
  hermite(s, V0, V1, d0, d1, &v, &dv);
  dv = dv > 0 ? dv : T(1);
  return t + dt * (s - (v - Vth) / dv);
}

template <typename T>
struct Job {
  const T *y0, *par, *imid, *iend, *times;
  T *yf, *rec, *spikes;
  int32_t* count;
  int64_t P, N, n_steps, Tm, Nm, Te, Ne, every, n_rec, S;
  int rec_idx[4];
  int R;
  T exp_clip;
  bool hermite, staggered;
};

// One exponential-Euler step of `len` neurons (the mathematics of ExpEuler.step): the old state
// goes to Vp, mp, hp, np_, the new one to V, m, h, n.
template <typename T, bool Staggered, bool Branchy>
__attribute__((noinline)) void step_block(
    int64_t len, T dt, const T* __restrict Imid, T* __restrict V, T* __restrict m,
    T* __restrict h, T* __restrict n, T* __restrict Vp, T* __restrict mp, T* __restrict hp,
    T* __restrict np_, const T* __restrict gNa, const T* __restrict gK, const T* __restrict gL,
    const T* __restrict ENa, const T* __restrict EK, const T* __restrict EL,
    const T* __restrict invC, T clip) {
  const T e_half = T(1.6487212707001282), e_m15 = T(0.22313016014842982);
  const T c_ah = T(0.07 * 0.28650479686019010);
  auto EXP = [](T x) {
    if constexpr (Branchy) return bexp(x);
    else return vexp(x);
  };
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    T v = V[i], m0 = m[i], h0 = h[i], n0 = n[i];
    T u = (v + T(40)) * T(-0.1);
    // The exponent clipped once to +-exp_clip, exactly as _rates.gate_rates (E = e^uc; the
    // alpha_m and alpha_n denominators e^uc - 1 and e^(uc - 1.5) - 1).
    T uc = u < -clip ? -clip : (u > clip ? clip : u);
    T E = EXP(uc);
    T am = bernoulli<Branchy>(u, E);
    T an = bernoulli<Branchy>(u - T(1.5), E * e_m15, T(0.1));
    T bh = T(1) / (T(1) + E * e_half);
    T ah = c_ah * std::sqrt(E);
    // beta_n = 0.125 exp(-(V+65)/80) = 0.125 e^(uc/8 - 5/16) from its own exponential, not
    // E^(1/8) by three square roots: as fast in the vector loop, 40 % shorter latency for one
    // neuron.
    T bn = T(0.125) * EXP(uc * T(0.125) - T(0.3125));
    T xm = (v + T(65)) * T(-1.0 / 18.0);
    T bm = T(4) * EXP(xm > clip ? clip : xm);  // as _rates._exp: clipped above only
    T km = am + bm, kh = ah + bh, kn = an + bn;
    T minf = am / km, hinf = ah / kh, ninf = an / kn;
    // -dt k as one product-sum, not a sum then a product: one operation less between the rate
    // that comes last and the relaxation's exponential.
    T m1 = minf + (m0 - minf) * EXP(am * -dt + bm * -dt);
    T h1 = hinf + (h0 - hinf) * EXP(bh * -dt + ah * -dt);
    T n1 = ninf + (n0 - ninf) * EXP(an * -dt + bn * -dt);
    T gm = Staggered ? m1 : m0, gh = Staggered ? h1 : h0, gn = Staggered ? n1 : n0;
    // dt/C times the conductances and driving forces, ready before the gates (they depend on
    // the parameters and v only): after the last gate, two products and a sum to the exponent
    // -dt g/C and to dt (I - I_ion)/C.
    T dtC = dt * invC[i];
    T cNa = dtC * gNa[i], cK = dtC * gK[i], cL = dtC * gL[i];
    T pNa = cNa * (v - ENa[i]), pK = cK * (v - EK[i]);
    T w0 = dtC * Imid[i] - cL * (v - EL[i]);
    T mh = (gm * gm) * (gm * gh);
    T n2 = gn * gn, n4 = n2 * n2;
    T z = (mh * -cNa - cL) - n4 * cK;
    T dtC_drive = (w0 - mh * pNa) - n4 * pK;
    Vp[i] = v; mp[i] = m0; hp[i] = h0; np_[i] = n0;
    V[i] = v + dtC_drive * exprel<Branchy>(z);
    m[i] = m1; h[i] = h1; n[i] = n1;
  }
}

template <typename T>
void run_tile(const Job<T>& J, int64_t p, int64_t i0, int64_t len) {
  alignas(64) T V[TILE], m[TILE], h[TILE], n[TILE], Vp[TILE], mp[TILE], hp[TILE], np_[TILE];
  alignas(64) T gNa[TILE], gK[TILE], gL[TILE], ENa[TILE], EK[TILE], EL[TILE], invC[TILE], Vth[TILE];
  alignas(64) T Imid[TILE];
  alignas(64) int32_t cnt[TILE], crossed[TILE];
  const int64_t N = J.N;
  const T* y0 = J.y0 + p * 4 * N + i0;
  const T* par = J.par + p * 8 * N + i0;
  for (int64_t i = 0; i < len; ++i) {
    V[i] = y0[i]; m[i] = y0[N + i]; h[i] = y0[2 * N + i]; n[i] = y0[3 * N + i];
    gNa[i] = par[i]; gK[i] = par[N + i]; gL[i] = par[2 * N + i];
    ENa[i] = par[3 * N + i]; EK[i] = par[4 * N + i]; EL[i] = par[5 * N + i];
    invC[i] = T(1) / par[6 * N + i]; Vth[i] = par[7 * N + i];
    cnt[i] = 0;
  }
  auto record = [&](int64_t sample) {
    T* dst = J.rec + ((p * J.n_rec + sample) * J.R) * N + i0;
    for (int r = 0; r < J.R; ++r) {
      const T* src = J.rec_idx[r] == 0 ? V : J.rec_idx[r] == 1 ? m : J.rec_idx[r] == 2 ? h : n;
      std::memcpy(dst + r * N, src, len * sizeof(T));
    }
  };
  if (J.R > 0) record(0);
  for (int64_t s = 0; s < J.S; ++s) {
    T* row = J.spikes + (p * J.S + s) * N + i0;
    for (int64_t i = 0; i < len; ++i) row[i] = std::numeric_limits<T>::infinity();
  }
  const T t0 = J.times[2 * p], dt = J.times[2 * p + 1];
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
    // Full vectors: the branch-free loop; a few neurons (N = 1 is latency bound): the same
    // arithmetic with branches, bit-identical.
    auto step = staggered ? (len >= 8 ? step_block<T, true, false> : step_block<T, true, true>)
                          : (len >= 8 ? step_block<T, false, false> : step_block<T, false, true>);
    step(len, dt, Imid, V, m, h, n, Vp, mp, hp, np_, gNa, gK, gL, ENa, EK, EL, invC, J.exp_clip);
    int any = 0;
    for (int64_t i = 0; i < len; ++i) {
      int c = (Vp[i] < Vth[i]) & (V[i] >= Vth[i]);
      crossed[i] = c;
      cnt[i] += c;
      any |= c;
    }
    if (any && J.S > 0) {
      const T t = t0 + T(k) * dt;
      for (int64_t i = 0; i < len; ++i) {
        if (!crossed[i] || cnt[i] > J.S) continue;
        T d0 = 0, d1 = 0;
        if (J.hermite) {
          // dV/dt at both ends of the step, with the current at t_k and t_k + dt.
          const T* i0row = iend + (J.Te > 1 ? k : 0) * J.Ne;
          const T* i1row = iend + (J.Te > 1 ? k + 1 : 0) * J.Ne;
          T I0 = i0row[J.Ne > 1 ? i0 + i : 0], I1 = i1row[J.Ne > 1 ? i0 + i : 0];
          d0 = dVdt(Vp[i], mp[i], hp[i], np_[i], I0, gNa[i], gK[i], gL[i], ENa[i], EK[i], EL[i], invC[i]);
          d1 = dVdt(V[i], m[i], h[i], n[i], I1, gNa[i], gK[i], gL[i], ENa[i], EK[i], EL[i], invC[i]);
        }
        J.spikes[(p * J.S + (cnt[i] - 1)) * N + i0 + i] =
            crossing_time<T>(J.hermite, t, dt, Vp[i], V[i], d0, d1, Vth[i]);
      }
    }
    if (J.R > 0 && (k + 1) % J.every == 0 && (k + 1) / J.every < J.n_rec) record((k + 1) / J.every);
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

// The work is cut into units of one block of neurons of one batch element, run through all
// steps; each thread takes a contiguous range of units. Every neuron's arithmetic is the same
// whatever the cut (the vector body, the scalar tail and the branchy path for a few neurons
// are bit-identical), so results never depend on the number of threads.
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
  const int64_t units = J.P * tiles_per_p;
  auto run = [&J, tiles_per_p, tile](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      int64_t p = u / tiles_per_p, i0 = (u % tiles_per_p) * tile;
      run_tile(J, p, i0, std::min<int64_t>(tile, J.N - i0));
    }
  };
  const int64_t T_ = std::min<int64_t>(want, units);
  if (T_ <= 1) {
    run(0, units);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(T_ - 1);
  for (int64_t t = 1; t < T_; ++t)
    pool.emplace_back(run, units * t / T_, units * (t + 1) / T_);
  run(0, units / T_);
  for (auto& th : pool) th.join();
}

template <ffi::DataType DT>
ffi::Error Impl(ffi::Buffer<DT> y0, ffi::Buffer<DT> par, ffi::Buffer<DT> imid, ffi::Buffer<DT> iend,
                ffi::Buffer<DT> times, ffi::ResultBuffer<DT> yf, ffi::ResultBuffer<ffi::S32> count,
                ffi::ResultBuffer<DT> rec, ffi::ResultBuffer<DT> spikes, int64_t n_steps,
                int64_t every, int64_t rec_mask, int64_t hermite,
                int64_t staggered, int64_t threads, double exp_clip) {
  using T = ffi::NativeType<DT>;
  auto d = y0.dimensions();
  if (d.size() < 2 || d[d.size() - 2] != 4) return ffi::Error::InvalidArgument("y0 must be [..., 4, N]");
  Job<T> J;
  J.N = d[d.size() - 1];
  J.P = J.N == 0 ? 0 : static_cast<int64_t>(y0.element_count()) / (4 * J.N);
  auto dm = imid.dimensions();
  auto de = iend.dimensions();
  auto dr = rec->dimensions();
  auto ds = spikes->dimensions();
  if (dm.size() < 2 || de.size() < 2 || dr.size() < 3 || ds.size() < 2)
    return ffi::Error::InvalidArgument("bad ranks");
  J.Tm = dm[dm.size() - 2]; J.Nm = dm[dm.size() - 1];
  J.Te = de[de.size() - 2]; J.Ne = de[de.size() - 1];
  J.n_rec = dr[dr.size() - 3];
  J.R = static_cast<int>(dr[dr.size() - 2]);
  J.S = ds[ds.size() - 2];
  if ((J.Nm != 1 && J.Nm != J.N) || (J.Ne != 1 && J.Ne != J.N) || (J.Tm != 1 && J.Tm != n_steps) ||
      (J.Te != 1 && J.Te != n_steps + 1) || every < 1 || J.R > 4)
    return ffi::Error::InvalidArgument("inconsistent shapes");
  if (static_cast<int64_t>(imid.element_count()) != J.P * J.Tm * J.Nm ||
      static_cast<int64_t>(iend.element_count()) != J.P * J.Te * J.Ne ||
      static_cast<int64_t>(par.element_count()) != J.P * 8 * J.N ||
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
  J.yf = yf->typed_data(); J.count = count->typed_data(); J.rec = rec->typed_data(); J.spikes = spikes->typed_data();
  J.n_steps = n_steps; J.every = every;
  J.hermite = hermite != 0; J.staggered = staggered != 0;
  // The model's bound on the rate exponents (hh_jax._rates.EXP_CLIP); within the exponential's
  // floating-point range, or the clip would not be the one Python applies.
  if (!(exp_clip > 0) || exp_clip > static_cast<double>(Consts<T>::hi) - 2)
    return ffi::Error::InvalidArgument("exp_clip must be in (0, hi - 2] for this dtype");
  J.exp_clip = static_cast<T>(exp_clip);
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
      .Ret<ffi::Buffer<DT>>()                         \
      .Attr<int64_t>("n_steps")                       \
      .Attr<int64_t>("every")                         \
      .Attr<int64_t>("rec_mask")                      \
      .Attr<int64_t>("hermite")                       \
      .Attr<int64_t>("staggered")                     \
      .Attr<int64_t>("threads")                       \
      .Attr<double>("exp_clip")

XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerF32, Impl<ffi::F32>, HH_BIND(ffi::F32));
XLA_FFI_DEFINE_HANDLER_SYMBOL(HhExpEulerF64, Impl<ffi::F64>, HH_BIND(ffi::F64));

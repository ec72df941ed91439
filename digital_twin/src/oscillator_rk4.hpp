#pragma once
// The oscillator model's RK4 integrator and its exact discrete adjoint, in one precision T
// (double, or float for `Precision::kFloat32`): ṗ = sin(κ∘q)·A + e, q(0) = x, p(0) = 0, for a
// row batch. OscillatorModel converts at the boundary; everything in here runs in T.
//
// Each stage is one sweep over the shard: κ∘q and its sine into an L1-sized buffer, then the
// stage product with A by `stage_gemm` (small_gemm.hpp: A read in place, no packing), with e
// added in the same pass. Every b × n array of a call lives in one per-thread arena that is
// reused from call to call, so the epoch loop allocates nothing in here (Eigen expressions run
// on Maps of the arena).
#include <Eigen/Core>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "pnn/digital_twin/fast_math.hpp"
#include "pnn/digital_twin/tensor.hpp"
#include "small_gemm.hpp"

namespace pnn::digital_twin::detail {

/// A thread's scratch memory for the integrator, kept across calls. Grows to the largest call
/// seen; a call that needs under a quarter of a large arena (> 64 MiB) gives the rest back.
/// Aligned to Eigen's packet alignment: Eigen's vectorised reductions (the ē and κ̄ column
/// sums) peel to the data's alignment, so arenas aligned differently from thread to thread
/// would sum in different orders and make results depend on which thread ran a shard.
template <class T>
class Rk4Arena {
 public:
  static T* reserve(std::size_t count) {
    thread_local std::vector<T, Eigen::aligned_allocator<T>> buffer;
    constexpr std::size_t kLarge = (std::size_t{64} << 20) / sizeof(T);
    if (buffer.size() < count || (buffer.size() > kLarge && count < buffer.size() / 4)) {
      std::vector<T, Eigen::aligned_allocator<T>>().swap(buffer);
      buffer.resize(count);
    }
    return buffer.data();
  }
};

template <class T>
struct Rk4 {
  using Scalar = T;
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using Row = Eigen::Matrix<T, 1, Eigen::Dynamic>;
  using Map = Eigen::Map<Mat>;

  const Mat& a;      // A = C2Q(C) + Q_extra − I
  const Mat& at;     // Aᵀ (the reverse sweep's product is ḡ·Aᵀ)
  const Row& kappa;  // κ_i
  const Row& e;      // drive e_i
  T h;
  int steps;

  struct Grads {
    Mat x_bar;
    Mat a_bar;  // ∂L/∂A
    Row e_bar;
    Row kappa_bar;
  };

  // s = sin(κ∘q) (and c = cos(κ∘q) if c is set) for a contiguous b × n block q.
  void sin_cos_kq(const T* q, Index b, Index n, T* s, T* c) const {
    Map sm(s, b, n);
    sm.array() = Eigen::Map<const Mat>(q, b, n).array().rowwise() * kappa.array();
    if constexpr (std::is_same_v<T, double>) {
      sincos(s, b * n, s, c);  // in place: each block is read before it is written
    } else {
      if (c) Map(c, b, n).array() = sm.array().cos();
      sm.array() = sm.array().sin();
    }
  }

  // g = s·A + e (s and g b × n, contiguous).
  void product(const T* s, Index b, Index n, const Mat& m, const T* bias, T* g) const {
    stage_gemm<T>(s, b, b, m.data(), m.rows(), n, n, bias, g, b);
  }

  Mat forward(const Mat& x) const {
    const Index b = x.rows(), n = x.cols(), bn = b * n;
    T* w = Rk4Arena<T>::reserve(static_cast<std::size_t>(9 * bn));
    Map q(w, b, n), p(w + bn, b, n), s(w + 2 * bn, b, n), qs(w + 3 * bn, b, n),
        g1(w + 4 * bn, b, n), g2(w + 5 * bn, b, n), g3(w + 6 * bn, b, n), p2(w + 7 * bn, b, n),
        p3(w + 8 * bn, b, n);
    q = x;
    p.setZero();
    auto force = [&](const T* at_q, Map& g) {
      sin_cos_kq(at_q, b, n, s.data(), nullptr);
      product(s.data(), b, n, a, e.data(), g.data());
    };
    const T h2 = T(0.5) * h, h6 = h / T(6);
    for (int step = 0; step < steps; ++step) {
      force(q.data(), g1);
      qs = q + h2 * p;
      p2 = p + h2 * g1;
      force(qs.data(), g2);
      qs = q + h2 * p2;
      p3 = p + h2 * g2;
      force(qs.data(), g3);
      qs = q + h * p3;
      // p4 = p + h g3; g4 goes into qs's slot once qs is consumed: s holds sin(κ qs) by then.
      q += h6 * (p + T(2) * p2 + T(2) * p3 + (p + h * g3));
      sin_cos_kq(qs.data(), b, n, s.data(), nullptr);
      product(s.data(), b, n, a, e.data(), qs.data());
      p += h6 * (g1 + T(2) * g2 + T(2) * g3 + qs);
    }
    return q;
  }

  Grads backward(const Mat& x, const Mat& y_bar) const {
    const Index b = x.rows(), n = x.cols(), bn = b * n;
    // Ā = Σ over the 4·steps stages of sᵀ·ḡ. Each stage's s and ḡ go into one stacked row block
    // and Ā comes from one GEMM at the end (inner dimension 4·steps·b instead of 4·steps
    // rank-b updates, each of which would read and write all of Ā). Stage j of step k is block
    // 4·(steps − 1 − k) + 3 − j: the order in which the reverse sweep reaches the stages.
    const Index stages = 4 * static_cast<Index>(steps), sb = stages * b;
    auto block = [&](int k, int j) { return (4 * (steps - 1 - k) + 3 - j) * b; };
    // Arena: s, c and ḡ stacks (sb × n each), the stage positions (stages blocks of b × n), and
    // 14 b × n working arrays.
    T* w = Rk4Arena<T>::reserve(static_cast<std::size_t>(3 * sb * n + stages * bn + 14 * bn));
    Map s_stack(w, sb, n), c_stack(w + sb * n, sb, n), g_bar_stack(w + 2 * sb * n, sb, n);
    T* stage_q_base = w + 3 * sb * n;
    auto stage_q = [&](int k, int j) { return Map(stage_q_base + (4 * k + j) * bn, b, n); };
    T* tmp = stage_q_base + stages * bn;
    auto work = [&](int i) { return Map(tmp + i * bn, b, n); };
    Map sin_kq = work(0), cos_kq = work(1), q = work(2), p = work(3), g1 = work(4), g2 = work(5),
        g3 = work(6), g4 = work(7), p2 = work(8), p3 = work(9);

    // Forward sweep, keeping the four stage positions of every step and sin, cos of κ∘q there:
    // one reduction per stage serves the force here and its reverse below.
    const T h2 = T(0.5) * h, h3 = h / T(3), h6 = h / T(6);
    {
      auto stage_force = [&](int k, int j, Map& g) {
        sin_cos_kq(stage_q(k, j).data(), b, n, sin_kq.data(), cos_kq.data());
        s_stack.middleRows(block(k, j), b) = sin_kq;
        c_stack.middleRows(block(k, j), b) = cos_kq;
        product(sin_kq.data(), b, n, a, e.data(), g.data());
      };
      q = x;
      p.setZero();
      for (int k = 0; k < steps; ++k) {
        stage_q(k, 0) = q;
        stage_force(k, 0, g1);
        p2 = p + h2 * g1;
        stage_q(k, 1) = q + h2 * p;
        stage_force(k, 1, g2);
        p3 = p + h2 * g2;
        stage_q(k, 2) = q + h2 * p2;
        stage_force(k, 2, g3);
        stage_q(k, 3) = q + h * p3;
        stage_force(k, 3, g4);
        q += h6 * (p + T(2) * p2 + T(2) * p3 + (p + h * g3));
        p += h6 * (g1 + T(2) * g2 + T(2) * g3 + g4);
      }
    }

    Grads out{Mat(), Mat(), Row::Zero(n), Row::Zero(n)};
    Map sbc = work(10), q_stage_bar = work(11);
    // Reverse of g(q) = sin(κ q)·A + e for stage j of step k: q_stage_bar = q̄ of the stage;
    // stacks ḡ for Ā and accumulates ē, κ̄.
    auto force_vjp = [&](int k, int j, const Map& g_bar) {
      g_bar_stack.middleRows(block(k, j), b) = g_bar;
      out.e_bar += g_bar.colwise().sum();
      product(g_bar.data(), b, n, at, nullptr, sbc.data());
      sbc.array() *= c_stack.middleRows(block(k, j), b).array();
      out.kappa_bar += (sbc.array() * stage_q(k, j).array()).colwise().sum().matrix();
      q_stage_bar.array() = sbc.array().rowwise() * kappa.array();
    };

    // The cotangents: q̄, p̄ of the state, and of the stages (g1..g4 share g1..g4's slots:
    // the forward sweep's values are not needed any more).
    Map q_bar = q, p_bar = p, p2_bar = p2, p3_bar = p3, g1_bar = g1, g2_bar = g2, g3_bar = g3,
        g4_bar = g4, qa = work(12), pa = work(13);
    q_bar = y_bar;
    p_bar.setZero();
    for (int k = steps - 1; k >= 0; --k) {
      qa = q_bar;  // cotangents of q', p'
      pa = p_bar;
      // q' = q + h/6 (p + 2 p2 + 2 p3 + p4),  p' = p + h/6 (g1 + 2 g2 + 2 g3 + g4)
      p2_bar = h3 * qa;
      p3_bar = h3 * qa;
      g1_bar = h6 * pa;
      g2_bar = h3 * pa;
      g3_bar = h3 * pa;
      g4_bar = h6 * pa;
      // p4 = p + h g3 and p̄4 = h/6 q̄a: p̄ gets p̄4, ḡ3 gets h p̄4.
      p_bar = pa + h6 * qa + h6 * qa;
      g3_bar += (h * h6) * qa;
      q_bar = qa;
      // g4 = g(q4), q4 = q + h p3
      force_vjp(k, 3, g4_bar);
      q_bar += q_stage_bar;
      p3_bar += h * q_stage_bar;
      // g3 = g(q3), q3 = q + h/2 p2, p3 = p + h/2 g2
      force_vjp(k, 2, g3_bar);
      q_bar += q_stage_bar;
      p2_bar += h2 * q_stage_bar;
      p_bar += p3_bar;
      g2_bar += h2 * p3_bar;
      // g2 = g(q2), q2 = q + h/2 p, p2 = p + h/2 g1
      force_vjp(k, 1, g2_bar);
      q_bar += q_stage_bar;
      p_bar += h2 * q_stage_bar;
      p_bar += p2_bar;
      g1_bar += h2 * p2_bar;
      // g1 = g(q)
      force_vjp(k, 0, g1_bar);
      q_bar += q_stage_bar;
    }
    out.a_bar.noalias() = s_stack.transpose() * g_bar_stack;
    out.x_bar = q_bar;
    return out;
  }
};

}  // namespace pnn::digital_twin::detail

#pragma once
// The oscillator model's RK4 integrator and its exact discrete adjoint, in one precision T
// (double, or float for `Precision::kFloat32`): ṗ = sin(κ∘q)·A + e, q(0) = x, p(0) = 0, for a
// row batch. OscillatorModel converts at the boundary; everything in here runs in T.
#include <Eigen/Core>
#include <type_traits>
#include <vector>

#include "pnn/digital_twin/fast_math.hpp"
#include "pnn/digital_twin/tensor.hpp"

namespace pnn::digital_twin::detail {

template <class T>
struct Rk4 {
  using Scalar = T;
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  using Arr = Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic>;
  using Row = Eigen::Matrix<T, 1, Eigen::Dynamic>;

  const Mat& a;      // A = C2Q(C) + Q_extra − I
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

  // sin and cos of an array: the blocked double kernel (fast_math.hpp), or Eigen's own
  // vectorised float sin/cos.
  static void sin_cos(const Arr& x, Arr* s, Arr* c) {
    if constexpr (std::is_same_v<T, double>) {
      sincos(x, s, c);
    } else {
      if (s) *s = x.sin();
      if (c) *c = x.cos();
    }
  }

  // g = sin(κ∘q)·A + e.
  void force(const Mat& q, Arr& s, Mat& g) const {
    sin_cos(q.array().rowwise() * kappa.array(), &s, nullptr);
    g.noalias() = s.matrix() * a;
    g.rowwise() += e;
  }

  Mat forward(const Mat& x) const {
    const Index b = x.rows(), n = x.cols();
    Mat q = x, p = Mat::Zero(b, n);
    Arr s;
    Mat g1, g2, g3, g4, qs(b, n), p2, p3, p4;
    for (int step = 0; step < steps; ++step) {
      force(q, s, g1);
      p2 = p + T(0.5) * h * g1;
      qs = q + T(0.5) * h * p;
      force(qs, s, g2);
      p3 = p + T(0.5) * h * g2;
      qs = q + T(0.5) * h * p2;
      force(qs, s, g3);
      p4 = p + h * g3;
      qs = q + h * p3;
      force(qs, s, g4);
      q += (h / T(6)) * (p + T(2) * p2 + T(2) * p3 + p4);
      p += (h / T(6)) * (g1 + T(2) * g2 + T(2) * g3 + g4);
    }
    return q;
  }

  Grads backward(const Mat& x, const Mat& y_bar) const {
    const Index b = x.rows(), n = x.cols();
    // Ā = Σ over the 4·steps stages of sᵀ·ḡ. Each stage's s and ḡ go into one stacked row block
    // and Ā comes from one GEMM at the end (inner dimension 4·steps·b instead of 4·steps
    // rank-b updates, each of which would read and write all of Ā). Stage j of step k is block
    // 4·(steps − 1 − k) + 3 − j: the order in which the reverse sweep reaches the stages.
    const Index stages = 4 * static_cast<Index>(steps);
    auto block = [&](int k, int j) { return (4 * (steps - 1 - k) + 3 - j) * b; };
    Mat s_stack(stages * b, n), g_bar_stack(stages * b, n);
    Arr c_stack(stages * b, n);

    // Forward sweep, keeping the four stage positions of every step and sin, cos of κ∘q there:
    // one reduction per stage serves the force here and its reverse below.
    std::vector<Mat> stage_q(stages);
    {
      Arr sin_kq, cos_kq;
      auto stage_force = [&](int k, int j, Mat& g) {
        sin_cos(stage_q[4 * k + j].array().rowwise() * kappa.array(), &sin_kq, &cos_kq);
        s_stack.middleRows(block(k, j), b) = sin_kq.matrix();
        c_stack.middleRows(block(k, j), b) = cos_kq;
        g.noalias() = sin_kq.matrix() * a;
        g.rowwise() += e;
      };
      Mat q = x, p = Mat::Zero(b, n), g1, g2, g3, g4;
      for (int k = 0; k < steps; ++k) {
        Mat* st = &stage_q[4 * k];
        st[0] = q;
        stage_force(k, 0, g1);
        const Mat p2 = p + T(0.5) * h * g1;
        st[1] = q + T(0.5) * h * p;
        stage_force(k, 1, g2);
        const Mat p3 = p + T(0.5) * h * g2;
        st[2] = q + T(0.5) * h * p2;
        stage_force(k, 2, g3);
        const Mat p4 = p + h * g3;
        st[3] = q + h * p3;
        stage_force(k, 3, g4);
        q += (h / T(6)) * (p + T(2) * p2 + T(2) * p3 + p4);
        p += (h / T(6)) * (g1 + T(2) * g2 + T(2) * g3 + g4);
      }
    }

    Grads out{Mat(), Mat(), Row::Zero(n), Row::Zero(n)};
    // Reverse of g(q) = sin(κ q)·A + e for stage j of step k: returns q̄, stacks ḡ for Ā and
    // accumulates ē, κ̄.
    auto force_vjp = [&](int k, int j, const Mat& g_bar) {
      g_bar_stack.middleRows(block(k, j), b) = g_bar;
      out.e_bar += g_bar.colwise().sum();
      const Arr s_bar_cos = (g_bar * a.transpose()).array() * c_stack.middleRows(block(k, j), b);
      out.kappa_bar += (s_bar_cos * stage_q[4 * k + j].array()).colwise().sum().matrix();
      return Mat((s_bar_cos.rowwise() * kappa.array()).matrix());
    };

    Mat q_bar = y_bar, p_bar = Mat::Zero(b, n);
    for (int k = steps - 1; k >= 0; --k) {
      const Mat qa = q_bar, pa = p_bar;  // cotangents of q', p'
      // q' = q + h/6 (p + 2 p2 + 2 p3 + p4),  p' = p + h/6 (g1 + 2 g2 + 2 g3 + g4)
      Mat p2_bar = (h / T(3)) * qa, p3_bar = (h / T(3)) * qa, p4_bar = (h / T(6)) * qa;
      Mat g1_bar = (h / T(6)) * pa, g2_bar = (h / T(3)) * pa, g3_bar = (h / T(3)) * pa;
      const Mat g4_bar = (h / T(6)) * pa;
      p_bar = pa + (h / T(6)) * qa;
      q_bar = qa;
      // g4 = g(q4), q4 = q + h p3, p4 = p + h g3
      const Mat q4_bar = force_vjp(k, 3, g4_bar);
      q_bar += q4_bar;
      p3_bar += h * q4_bar;
      p_bar += p4_bar;
      g3_bar += h * p4_bar;
      // g3 = g(q3), q3 = q + h/2 p2, p3 = p + h/2 g2
      const Mat q3_bar = force_vjp(k, 2, g3_bar);
      q_bar += q3_bar;
      p2_bar += T(0.5) * h * q3_bar;
      p_bar += p3_bar;
      g2_bar += T(0.5) * h * p3_bar;
      // g2 = g(q2), q2 = q + h/2 p, p2 = p + h/2 g1
      const Mat q2_bar = force_vjp(k, 1, g2_bar);
      q_bar += q2_bar;
      p_bar += T(0.5) * h * q2_bar;
      p_bar += p2_bar;
      g1_bar += T(0.5) * h * p2_bar;
      // g1 = g(q)
      q_bar += force_vjp(k, 0, g1_bar);
    }
    out.a_bar.noalias() = s_stack.transpose() * g_bar_stack;
    out.x_bar = std::move(q_bar);
    return out;
  }
};

}  // namespace pnn::digital_twin::detail

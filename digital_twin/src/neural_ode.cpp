#include "pnn/digital_twin/neural_ode.hpp"

#include <stdexcept>

#include "mlp.hpp"
#include "stno_drive.hpp"
#include "pnn/digital_twin/mlp_twin.hpp"

namespace pnn::digital_twin {
namespace {

using detail::Mlp;
using detail::RowMajor;
using ConstMap = Eigen::Map<const RowMajor>;
using MutMap = Eigen::Map<RowMajor>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("neural-ode-stno: " + message);
}

// A B×N matrix as the column of B·N neuron-samples the shared MLP sees (column-major: neuron
// j's samples are rows j·B … j·B + B − 1), and back.
Eigen::Map<const Vector> flat(const Matrix& m) { return {m.data(), m.size()}; }
Matrix shaped(const Vector& v, Index rows, Index cols) {
  return Eigen::Map<const Matrix>(v.data(), rows, cols);
}

}  // namespace

NeuralOdeTwin::NeuralOdeTwin(NeuralOdeConfig config) : c_(std::move(config)) {
  StnoModel check(c_.stno);  // the physics twin's own checks of sizes, rates and the clamp
  require(c_.rk4_steps >= 1, "rk4_steps must be ≥ 1");
  sizes_ = {2};
  for (Index h : c_.hidden) {
    require(h >= 1, "hidden layer sizes must be ≥ 1");
    sizes_.push_back(h);
  }
  sizes_.push_back(1);
  const Index n = c_.stno.num_neurons, nw = mlp_num_weights(sizes_);
  if (c_.psi.size() == 0) {
    c_.psi.resize(nw + 2 * n);
    c_.psi.head(nw) = mlp_initial_weights(sizes_, c_.seed, c_.physics_prior);
    c_.psi.segment(nw, n).setOnes();
    c_.psi.tail(n).setZero();
  }
  require(c_.psi.size() == nw + 2 * n,
          "ψ needs " + std::to_string(nw + 2 * n) + " entries (" + std::to_string(nw) +
              " MLP weights, then " + std::to_string(n) + " scales and " + std::to_string(n) +
              " offsets), got " + std::to_string(c_.psi.size()));
  require(c_.psi.allFinite(), "ψ must be finite");
  mlp_weights_ = c_.psi.head(nw);
}

Index NeuralOdeTwin::num_params() const {
  const Index n = c_.stno.num_neurons;
  return n + n * c_.stno.inputs_per_step + n * n;
}

Index NeuralOdeTwin::num_mlp_weights() const { return mlp_num_weights(sizes_); }

Vector NeuralOdeTwin::initial_params(std::uint64_t seed) const {
  return StnoModel(c_.stno).initial_params(seed);
}

ModelPtr NeuralOdeTwin::with_physical_params(const VectorRef& psi) const {
  NeuralOdeConfig c = c_;
  c.psi = psi;
  require(c.psi.size() != 0, "empty ψ");
  return std::make_shared<NeuralOdeTwin>(std::move(c));
}

std::shared_ptr<const NeuralOdeTwin> NeuralOdeTwin::with_trajectory(bool trajectory) const {
  NeuralOdeConfig c = c_;
  c.trajectory = trajectory;
  return std::make_shared<NeuralOdeTwin>(std::move(c));
}

/// One evaluation of the vector field at an RK4 stage, with what its reverse needs.
struct NeuralOdeTwin::FieldStage {
  Matrix q, pc, zeta, f, k;  // input (B×N), clamped to [0, 1], clamped ζ, F + Γ h, s∘f + o
  Eigen::ArrayXXd inside;    // 1 where the clamp of ζ is inactive
  Eigen::ArrayXXd p_inside;  // 1 where the clamp of p is inactive
  std::vector<Matrix> acts;  // the MLP's activations
};

/// The vector field of one (θ, ψ): evaluates a stage and reverses it.
struct NeuralOdeTwin::Field {
  const NeuralOdeTwin& twin;
  const Mlp& mlp;
  const ConstMap& r;  // R (N×N)
  Eigen::Map<const Vector> scale, offset;
  double inv_ith, zeta_mid, zeta_half, gamma, q_nl, eps;

  using Stage = FieldStage;

  Field(const NeuralOdeTwin& t, const Mlp& m, const ConstMap& rec)
      : twin(t),
        mlp(m),
        r(rec),
        scale(t.c_.psi.data() + t.num_mlp_weights(), t.c_.stno.num_neurons),
        offset(t.c_.psi.data() + t.num_mlp_weights() + t.c_.stno.num_neurons,
               t.c_.stno.num_neurons),
        inv_ith(1.0 / t.c_.stno.threshold_ua),
        zeta_mid(0.5 * (t.c_.stno.zeta_min + t.c_.stno.zeta_max)),
        zeta_half(0.5 * (t.c_.stno.zeta_max - t.c_.stno.zeta_min)),
        gamma(t.c_.stno.damping_per_ns),
        q_nl(t.c_.stno.nonlinearity),
        eps(t.c_.stno.floor_per_ns) {}

  Stage eval(Matrix q, const Matrix& drive, bool keep) const {
    const StnoConfig& c = twin.c_.stno;
    const Index b = q.rows(), n = q.cols();
    Stage st;
    Matrix z = drive;
    z.noalias() += q * r.transpose();
    z *= inv_ith;
    if (keep) st.inside = (z.array() >= c.zeta_min && z.array() <= c.zeta_max).cast<double>();
    st.zeta = z.cwiseMax(c.zeta_min).cwiseMin(c.zeta_max);
    // The field sees p clamped to its physical range [0, 1]: it is bounded there, so the
    // integration stays bounded wherever a fitted field would push p outside (for p < 0 the
    // power equation itself diverges in finite time).
    if (keep) st.p_inside = (q.array() >= 0.0 && q.array() <= 1.0).cast<double>();
    st.pc = q.cwiseMax(0.0).cwiseMin(1.0);
    Matrix in(b * n, 2);
    in.col(0) = 2.0 * flat(st.pc).array() - 1.0;
    in.col(1) = (flat(st.zeta).array() - zeta_mid) / zeta_half;
    const Vector h = mlp.forward(in, Vector(), keep ? &st.acts : nullptr).col(0);
    st.f = gamma * shaped(h, b, n);
    if (twin.c_.physics_prior) {
      const auto p = st.pc.array();
      st.f.array() += -2.0 * gamma * (1.0 + q_nl * p - st.zeta.array() * (1.0 - p)) * p + eps;
    }
    st.k = ((st.f.array().rowwise() * scale.transpose().array()).rowwise() +
            offset.transpose().array())
               .matrix();
    st.q = std::move(q);
    return st;
  }

  /// Reverse of k = field(q) for the cotangent k̄: returns q̄; adds into the drive's cotangent,
  /// R̄ (if given) and ψ̄ (if given: MLP weights, s, o).
  Matrix reverse(const Stage& st, const Matrix& k_bar, Matrix& drive_bar, RowMajor* r_bar,
                 Vector* psi_bar) const {
    const Index b = st.q.rows(), n = st.q.cols(), nw = twin.num_mlp_weights();
    const Matrix u = (k_bar.array().rowwise() * scale.transpose().array()).matrix();
    Vector w_bar;
    if (psi_bar != nullptr) {
      psi_bar->segment(nw, n) +=
          (k_bar.array() * st.f.array()).colwise().sum().transpose().matrix();
      psi_bar->tail(n) += k_bar.colwise().sum().transpose();
      w_bar = Vector::Zero(nw);
    }
    const Matrix out_bar = gamma * flat(u);
    const Matrix in_bar = mlp.backward(st.acts, Vector(), out_bar, nullptr,
                                       psi_bar != nullptr ? &w_bar : nullptr);
    if (psi_bar != nullptr) psi_bar->head(nw) += w_bar;
    Matrix q_bar = 2.0 * shaped(in_bar.col(0), b, n);
    Matrix z_bar = shaped(in_bar.col(1), b, n) / zeta_half;  // copies: in_bar's columns
    if (twin.c_.physics_prior) {
      const auto p = st.pc.array();
      const auto z = st.zeta.array();
      q_bar.array() += u.array() * (-2.0 * gamma * (1.0 + 2.0 * q_nl * p - z + 2.0 * z * p));
      z_bar.array() += u.array() * (2.0 * gamma * (1.0 - p) * p);
    }
    q_bar.array() *= st.p_inside;
    z_bar.array() *= st.inside * inv_ith;
    drive_bar += z_bar;
    q_bar.noalias() += z_bar * r;
    if (r_bar != nullptr) r_bar->noalias() += z_bar.transpose() * st.q;
    return q_bar;
  }
};

Matrix NeuralOdeTwin::run(const MatrixRef& x, const VectorRef& theta, const Field& field,
                          std::vector<FieldStage>* stages) const {
  const StnoConfig& c = c_.stno;
  const Index n = c.num_neurons, m = c.inputs_per_step, b = x.rows();
  const double h = step_ns();
  const bool keep = stages != nullptr;
  Matrix p = Matrix::Constant(b, n, c.p_initial);
  Matrix y(b, num_outputs());
  Matrix drive(b, n);
  for (Index t = 0; t < c.num_steps; ++t) {
    detail::stno_drive(x, theta, n, m, t, drive);
    for (Index s = 0; s < c_.rk4_steps; ++s) {
      auto s1 = field.eval(p, drive, keep);
      auto s2 = field.eval(p + 0.5 * h * s1.k, drive, keep);
      auto s3 = field.eval(p + 0.5 * h * s2.k, drive, keep);
      auto s4 = field.eval(p + h * s3.k, drive, keep);
      p += (h / 6.0) * (s1.k + 2.0 * s2.k + 2.0 * s3.k + s4.k);
      if (keep) {
        for (auto* st : {&s1, &s2, &s3, &s4}) stages->push_back(std::move(*st));
      }
    }
    if (c_.trajectory) y.middleCols(t * n, n) = p;
  }
  if (!c_.trajectory) y = std::move(p);
  return y;
}

Matrix NeuralOdeTwin::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const StnoConfig& c = c_.stno;
  const ConstMap r(theta.data() + c.num_neurons * (1 + c.inputs_per_step), c.num_neurons,
                   c.num_neurons);
  const Mlp mlp(sizes_, mlp_weights_, 2);
  return run(x, theta, Field(*this, mlp, r), nullptr);
}

void NeuralOdeTwin::reverse(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar,
                            Cotangents* out, Vector* psi_bar) const {
  const StnoConfig& c = c_.stno;
  const Index n = c.num_neurons, m = c.inputs_per_step, b = x.rows();
  const ConstMap r(theta.data() + n + n * m, n, n);
  const Mlp mlp(sizes_, mlp_weights_, 2);
  const Field field(*this, mlp, r);
  const double h = step_ns();
  // Every stage of the forward pass, kept for the reverse sweep (4 per RK4 step).
  std::vector<FieldStage> stages;
  stages.reserve(static_cast<std::size_t>(4 * c.num_steps * c_.rk4_steps));
  run(x, theta, field, &stages);

  if (out != nullptr) {
    out->x_bar = Matrix::Zero(b, num_inputs());
    out->theta_bar = Vector::Zero(num_params());
  }
  if (psi_bar != nullptr) *psi_bar = Vector::Zero(c_.psi.size());
  RowMajor r_bar = RowMajor::Zero(n, n);
  RowMajor* r_bar_ptr = out != nullptr ? &r_bar : nullptr;
  Matrix lambda = c_.trajectory ? Matrix::Zero(b, n) : Matrix(y_bar);  // ∂L/∂p
  Matrix drive_bar(b, n);
  for (Index t = c.num_steps - 1; t >= 0; --t) {
    if (c_.trajectory) lambda += y_bar.middleCols(t * n, n);
    drive_bar.setZero();
    for (Index s = c_.rk4_steps - 1; s >= 0; --s) {
      const std::size_t at = static_cast<std::size_t>(4 * (t * c_.rk4_steps + s));
      const FieldStage &s1 = stages[at], &s2 = stages[at + 1], &s3 = stages[at + 2],
                       &s4 = stages[at + 3];
      // p' = p + h/6 (k1 + 2 k2 + 2 k3 + k4); q2 = p + h/2 k1, q3 = p + h/2 k2, q4 = p + h k3.
      Matrix k_bar1 = (h / 6.0) * lambda, k_bar2 = (h / 3.0) * lambda;
      Matrix k_bar3 = (h / 3.0) * lambda;
      const Matrix k_bar4 = (h / 6.0) * lambda;
      Matrix p_bar = lambda;
      const Matrix q_bar4 = field.reverse(s4, k_bar4, drive_bar, r_bar_ptr, psi_bar);
      p_bar += q_bar4;
      k_bar3 += h * q_bar4;
      const Matrix q_bar3 = field.reverse(s3, k_bar3, drive_bar, r_bar_ptr, psi_bar);
      p_bar += q_bar3;
      k_bar2 += 0.5 * h * q_bar3;
      const Matrix q_bar2 = field.reverse(s2, k_bar2, drive_bar, r_bar_ptr, psi_bar);
      p_bar += q_bar2;
      k_bar1 += 0.5 * h * q_bar2;
      p_bar += field.reverse(s1, k_bar1, drive_bar, r_bar_ptr, psi_bar);
      lambda = std::move(p_bar);
    }
    if (out != nullptr) detail::stno_drive_reverse(x, theta, n, m, t, drive_bar, *out);
  }
  if (out != nullptr) MutMap(out->theta_bar.data() + n + n * m, n, n) = r_bar;
}

Cotangents NeuralOdeTwin::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                 const MatrixRef& y_bar) const {
  Cotangents out;
  reverse(x, theta, y_bar, &out, nullptr);
  return out;
}

Vector NeuralOdeTwin::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                      const MatrixRef& y_bar) const {
  Vector psi_bar;
  reverse(x, theta, y_bar, nullptr, &psi_bar);
  return psi_bar;
}

}  // namespace pnn::digital_twin

#include "pnn/digital_twin/mlp_twin.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

#include "mlp.hpp"

namespace pnn::digital_twin {
namespace {

using detail::Mlp;

void check_normalizer(const Normalizer& n, Index size, const std::string& what,
                      const std::string& who) {
  if (n.offset.size() != size || n.scale.size() != size) {
    throw std::invalid_argument(who + ": " + what + " normaliser needs " + std::to_string(size) +
                                " offsets and scales, got " + std::to_string(n.offset.size()) +
                                " and " + std::to_string(n.scale.size()));
  }
  if (!n.offset.allFinite() || !n.scale.allFinite() || (n.scale.array() <= 0.0).any()) {
    throw std::invalid_argument(who + ": " + what + " normaliser must be finite with scales > 0");
  }
}

std::vector<Index> make_sizes(Index in, const std::vector<Index>& hidden, Index out,
                              const std::string& who) {
  if (in < 1 || out < 1) throw std::invalid_argument(who + ": inputs and outputs must be ≥ 1");
  std::vector<Index> sizes{in};
  for (Index h : hidden) {
    if (h < 1) throw std::invalid_argument(who + ": hidden layer sizes must be ≥ 1");
    sizes.push_back(h);
  }
  sizes.push_back(out);
  return sizes;
}

void set_weights(Vector& weights, const std::vector<Index>& sizes, std::uint64_t seed,
                 bool zero_last, const std::string& who) {
  if (weights.size() == 0) weights = mlp_initial_weights(sizes, seed, zero_last);
  if (weights.size() != mlp_num_weights(sizes)) {
    throw std::invalid_argument(who + ": the MLP has " + std::to_string(mlp_num_weights(sizes)) +
                                " weights, got " + std::to_string(weights.size()));
  }
  if (!weights.allFinite()) throw std::invalid_argument(who + ": weights must be finite");
}

Matrix normalise(const MatrixRef& x, const Normalizer& n) {
  return ((x.rowwise() - n.offset.transpose()).array().rowwise() / n.scale.transpose().array())
      .matrix();
}

struct MlpCotangents {
  Matrix xh_bar;  // of the normalised inputs
  Vector th_bar;  // of the normalised θ, summed over rows
};

// Reverse pass of y = y_scale ∘ mlp([x̂, θ̂]) for ȳ: the inputs' cotangents, and the weights' added
// into w_bar if given.
MlpCotangents mlp_reverse(const Mlp& mlp, const Matrix& xh, const Vector& th, const MatrixRef& y_bar,
                          const Vector& y_scale, Vector* w_bar) {
  std::vector<Matrix> acts;
  mlp.forward(xh, th, &acts);
  const Matrix out_bar = (y_bar.array().rowwise() * y_scale.transpose().array()).matrix();
  MlpCotangents c;
  c.xh_bar = mlp.backward(acts, th, out_bar, &c.th_bar, w_bar);
  return c;
}

}  // namespace

Index mlp_num_weights(const std::vector<Index>& sizes) {
  Index total = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) total += sizes[l + 1] * sizes[l] + sizes[l + 1];
  return total;
}

Vector mlp_initial_weights(const std::vector<Index>& sizes, std::uint64_t seed, bool zero_last) {
  std::mt19937_64 rng(seed);
  Vector w = Vector::Zero(mlp_num_weights(sizes));
  Index off = 0;
  for (std::size_t l = 0; l + 1 < sizes.size(); ++l) {
    const Index in = sizes[l], out = sizes[l + 1];
    const bool last = l + 2 == sizes.size();
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const double limit = std::sqrt(6.0 / static_cast<double>(in + out));
    if (!(last && zero_last)) {
      for (Index i = 0; i < out * in; ++i) w[off + i] = limit * u(rng);
    }
    off += out * in + out;
  }
  return w;
}

// ---- MlpTwin ------------------------------------------------------------------------------

MlpTwin::MlpTwin(MlpTwinConfig config) : config_(std::move(config)) {
  const std::string who = "mlp-twin";
  if (config_.num_params < 0) throw std::invalid_argument(who + ": num_params must be ≥ 0");
  sizes_ = make_sizes(config_.num_inputs + config_.num_params, config_.hidden,
                      config_.num_outputs, who);
  check_normalizer(config_.x, config_.num_inputs, "input", who);
  check_normalizer(config_.theta, config_.num_params, "parameter", who);
  check_normalizer(config_.y, config_.num_outputs, "output", who);
  set_weights(config_.weights, sizes_, config_.seed, false, who);
}

Vector MlpTwin::initial_params(std::uint64_t /*seed*/) const { return config_.theta.offset; }

ModelPtr MlpTwin::with_physical_params(const VectorRef& phi) const {
  MlpTwinConfig c = config_;
  c.weights = phi;
  if (c.weights.size() == 0) throw std::invalid_argument("mlp-twin: empty weight vector");
  return std::make_shared<MlpTwin>(std::move(c));
}

Matrix MlpTwin::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  const Vector th = (theta - config_.theta.offset).cwiseQuotient(config_.theta.scale);
  const Matrix out = mlp.forward(normalise(x, config_.x), th, nullptr);
  return ((out.array().rowwise() * config_.y.scale.transpose().array()).rowwise() +
          config_.y.offset.transpose().array())
      .matrix();
}

Cotangents MlpTwin::do_vjp(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  const Vector th = (theta - config_.theta.offset).cwiseQuotient(config_.theta.scale);
  const MlpCotangents m = mlp_reverse(mlp, normalise(x, config_.x), th, y_bar, config_.y.scale, nullptr);
  return {(m.xh_bar.array().rowwise() / config_.x.scale.transpose().array()).matrix(),
          m.th_bar.cwiseQuotient(config_.theta.scale)};
}

Vector MlpTwin::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                const MatrixRef& y_bar) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  const Vector th = (theta - config_.theta.offset).cwiseQuotient(config_.theta.scale);
  Vector w_bar = Vector::Zero(config_.weights.size());
  mlp_reverse(mlp, normalise(x, config_.x), th, y_bar, config_.y.scale, &w_bar);
  return w_bar;
}

// ---- ResidualTwin ---------------------------------------------------------------------------

ResidualTwin::ResidualTwin(ResidualTwinConfig config) : config_(std::move(config)) {
  const std::string who = "residual twin";
  if (!config_.physics) throw std::invalid_argument(who + ": the physics twin is null");
  const Index np = config_.uses_theta ? config_.physics->num_params() : 0;
  sizes_ = make_sizes(num_inputs() + np, config_.hidden, num_outputs(), who);
  check_normalizer(config_.x, num_inputs(), "input", who);
  if (config_.uses_theta) check_normalizer(config_.theta, np, "parameter", who);
  check_normalizer({Vector::Zero(num_outputs()), config_.y_scale}, num_outputs(), "output", who);
  set_weights(config_.weights, sizes_, config_.seed, true, who);
}

ModelPtr ResidualTwin::with_physical_params(const VectorRef& phi) const {
  ResidualTwinConfig c = config_;
  c.weights = phi;
  if (c.weights.size() == 0) throw std::invalid_argument("residual twin: empty weight vector");
  return std::make_shared<ResidualTwin>(std::move(c));
}

namespace {

Vector residual_theta(const ResidualTwinConfig& c, const VectorRef& theta) {
  if (!c.uses_theta) return Vector();
  return (theta - c.theta.offset).cwiseQuotient(c.theta.scale);
}

}  // namespace

Matrix ResidualTwin::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  const Matrix out = mlp.forward(normalise(x, config_.x), residual_theta(config_, theta), nullptr);
  return config_.physics->forward(x, theta) +
         (out.array().rowwise() * config_.y_scale.transpose().array()).matrix();
}

Cotangents ResidualTwin::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                const MatrixRef& y_bar) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  const Vector th = residual_theta(config_, theta);
  const MlpCotangents m = mlp_reverse(mlp, normalise(x, config_.x), th, y_bar, config_.y_scale, nullptr);
  Cotangents c = config_.physics->vjp(x, theta, y_bar);
  c.x_bar += (m.xh_bar.array().rowwise() / config_.x.scale.transpose().array()).matrix();
  if (config_.uses_theta) c.theta_bar += m.th_bar.cwiseQuotient(config_.theta.scale);
  return c;
}

Vector ResidualTwin::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                     const MatrixRef& y_bar) const {
  const Mlp mlp(sizes_, config_.weights, num_inputs());
  Vector w_bar = Vector::Zero(config_.weights.size());
  mlp_reverse(mlp, normalise(x, config_.x), residual_theta(config_, theta), y_bar, config_.y_scale,
              &w_bar);
  return w_bar;
}

}  // namespace pnn::digital_twin

#include "pnn/digital_twin/shg.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace pnn::digital_twin {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument("optical-shg: " + message);
}

double default_bandwidth(Index channels) { return static_cast<double>(channels) / 2.5; }

}  // namespace

ShgLayout ShgLayout::make(Index num_inputs, Index num_params, Index num_outputs) {
  require(num_inputs >= 1, "num_inputs must be ≥ 1, got " + std::to_string(num_inputs));
  require(num_params >= 0, "num_params must be ≥ 0, got " + std::to_string(num_params));
  const Index k_total = num_inputs + num_params;
  require(num_outputs >= 1 && num_outputs <= k_total,
          "num_outputs must be in 1.." + std::to_string(k_total) + " (the spectrometer sees " +
              std::to_string(k_total) + " SH frequencies), got " + std::to_string(num_outputs));
  ShgLayout l;
  l.num_channels = k_total;
  // Bresenham spreading: channel k carries data iff ⌊(k+1)N/K⌋ > ⌊kN/K⌋, which interleaves the
  // N data channels evenly among the K and keeps both ends of the spectrum mixed.
  for (Index k = 0; k < k_total; ++k) {
    const bool data = (k + 1) * num_inputs / k_total > k * num_inputs / k_total;
    (data ? l.data_channels : l.param_channels).push_back(k);
  }
  l.window_start = k_total / 2;
  l.window_size = k_total;
  l.bin_of.resize(static_cast<std::size_t>(k_total));
  for (Index i = 0; i < k_total; ++i)
    l.bin_of[static_cast<std::size_t>(i)] = i * num_outputs / k_total;
  return l;
}

Matrix spectral_convolution(const MatrixRef& a, const MatrixRef& b, Index start, Index size) {
  const Index k_total = a.cols();
  Matrix c = Matrix::Zero(a.rows(), size);
  for (Index i = 0; i < size; ++i) {
    const Index n = start + i;
    const Index k_lo = std::max<Index>(0, n - k_total + 1), k_hi = std::min<Index>(k_total - 1, n);
    auto col = c.col(i);
    for (Index k = k_lo; k <= k_hi; ++k) col.array() += a.col(k).array() * b.col(n - k).array();
  }
  return c;
}

ShgModel::ShgModel(ShgConfig config)
    : config_(config),
      layout_(ShgLayout::make(config.num_inputs, config.num_params, config.num_outputs)) {
  if (config_.bandwidth <= 0.0) config_.bandwidth = default_bandwidth(layout_.num_channels);
  require(std::isfinite(config_.gain), "gain κ must be finite");
  require(std::isfinite(config_.bandwidth), "bandwidth σ must be finite");
  const Index k_total = layout_.num_channels;
  const double centre = 0.5 * static_cast<double>(k_total - 1);
  sqrt_s0_.resize(k_total);
  for (Index k = 0; k < k_total; ++k) {
    const double d = (static_cast<double>(k) - centre) / config_.bandwidth;
    sqrt_s0_[k] = std::exp(-0.25 * d * d);  // √exp(−d²/2)
  }
}

Vector ShgModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.4, 0.6);
  Vector theta(num_params());
  for (Index i = 0; i < theta.size(); ++i) theta[i] = uniform(rng);
  return theta;
}

Vector ShgModel::physical_params() const {
  Vector phi(2);
  phi << config_.gain, config_.bandwidth;
  return phi;
}

ModelPtr ShgModel::with_physical_params(const VectorRef& phi) const {
  require(phi.size() == 2, "two physical parameters (gain κ, bandwidth σ) expected, got " +
                               std::to_string(phi.size()));
  require(phi.allFinite(), "physical parameters must be finite");
  require(phi[1] > 0.0, "bandwidth σ must be > 0, got " + std::to_string(phi[1]));
  ShgConfig config = config_;
  config.gain = phi[0];
  config.bandwidth = phi[1];
  return std::make_shared<ShgModel>(config);
}

struct ShgModel::Forward {
  Matrix m;  // transmissions, batch × K
  Matrix a;  // amplitudes √S0 ∘ m
  Matrix c;  // unscaled SH field in the window: B = κ c
  Matrix y;
};

ShgModel::Forward ShgModel::run(const MatrixRef& x, const VectorRef& theta) const {
  const Index b = x.rows();
  Forward f;
  f.m.resize(b, layout_.num_channels);
  for (std::size_t i = 0; i < layout_.data_channels.size(); ++i) {
    f.m.col(layout_.data_channels[i]) = x.col(static_cast<Index>(i));
  }
  for (std::size_t i = 0; i < layout_.param_channels.size(); ++i) {
    f.m.col(layout_.param_channels[i]).setConstant(theta[static_cast<Index>(i)]);
  }
  f.a = f.m * sqrt_s0_.asDiagonal();
  f.c = spectral_convolution(f.a, f.a, layout_.window_start, layout_.window_size);
  f.y = Matrix::Zero(b, num_outputs());
  const double k2 = config_.gain * config_.gain;
  for (Index i = 0; i < layout_.window_size; ++i) {
    f.y.col(layout_.bin_of[static_cast<std::size_t>(i)]) += k2 * f.c.col(i).cwiseAbs2();
  }
  return f;
}

Matrix ShgModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  return run(x, theta).y;
}

Matrix ShgModel::amplitude_bar(const Forward& f, const MatrixRef& y_bar) const {
  // y_j = Σ B_n², B_n = κ c_n  ⇒  c̄_n = 2 κ² c_n ȳ_bin(n).
  // c_n = Σ_k A_k A_{n−k}  ⇒  Ā_j = Σ_n c̄_n · 2 A_{n−j}  (A_j appears in the pairs (j, n−j) and
  // (n−j, j); the diagonal term A_j² gives the same 2 A_j).
  const Index k_total = layout_.num_channels;
  const double k2 = config_.gain * config_.gain;
  Matrix a_bar = Matrix::Zero(f.a.rows(), k_total);
  Eigen::ArrayXd c_bar(f.a.rows());
  for (Index i = 0; i < layout_.window_size; ++i) {
    const Index n = layout_.window_start + i;
    c_bar = (2.0 * k2) * f.c.col(i).array() *
            y_bar.col(layout_.bin_of[static_cast<std::size_t>(i)]).array();
    const Index j_lo = std::max<Index>(0, n - k_total + 1), j_hi = std::min<Index>(k_total - 1, n);
    for (Index j = j_lo; j <= j_hi; ++j) a_bar.col(j).array() += c_bar * f.a.col(n - j).array();
  }
  return 2.0 * a_bar;
}

Cotangents ShgModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                            const MatrixRef& y_bar) const {
  const Forward f = run(x, theta);
  const Matrix m_bar = amplitude_bar(f, y_bar) * sqrt_s0_.asDiagonal();
  Cotangents out{Matrix(x.rows(), num_inputs()), Vector(num_params())};
  for (std::size_t i = 0; i < layout_.data_channels.size(); ++i) {
    out.x_bar.col(static_cast<Index>(i)) = m_bar.col(layout_.data_channels[i]);
  }
  for (std::size_t i = 0; i < layout_.param_channels.size(); ++i) {
    out.theta_bar[static_cast<Index>(i)] = m_bar.col(layout_.param_channels[i]).sum();
  }
  return out;
}

Vector ShgModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                 const MatrixRef& y_bar) const {
  const Forward f = run(x, theta);
  // ∂y_j/∂κ = Σ 2 κ c_n².
  double kappa_bar = 0.0;
  for (Index i = 0; i < layout_.window_size; ++i) {
    kappa_bar += 2.0 * config_.gain *
                 (f.c.col(i).array().square() *
                  y_bar.col(layout_.bin_of[static_cast<std::size_t>(i)]).array())
                     .sum();
  }
  // A_k = s_k m_k, s_k = exp(−(k−c)²/(4σ²))  ⇒  ∂s_k/∂σ = s_k (k−c)² / (2σ³).
  const Matrix a_bar = amplitude_bar(f, y_bar);
  const double sigma = config_.bandwidth;
  const double centre = 0.5 * static_cast<double>(layout_.num_channels - 1);
  double sigma_bar = 0.0;
  for (Index k = 0; k < layout_.num_channels; ++k) {
    const double d = static_cast<double>(k) - centre;
    const double ds = sqrt_s0_[k] * d * d / (2.0 * sigma * sigma * sigma);
    sigma_bar += ds * (a_bar.col(k).array() * f.m.col(k).array()).sum();
  }
  Vector phi_bar(2);
  phi_bar << kappa_bar, sigma_bar;
  return phi_bar;
}

}  // namespace pnn::digital_twin

#include "pnn/digital_twin/digital_layers.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

namespace pnn::digital_twin {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

}  // namespace

// ---- affine -------------------------------------------------------------------------------
AffineModel::AffineModel(Index num_inputs, Index num_outputs) : in_(num_inputs), out_(num_outputs) {
  require(in_ >= 1 && out_ >= 1, "affine: inputs and outputs must be ≥ 1");
}

Vector AffineModel::initial_params(std::uint64_t seed) const {
  std::mt19937_64 rng(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_));
  std::uniform_real_distribution<double> uniform(-bound, bound);
  Vector theta = Vector::Zero(num_params());
  for (Index i = 0; i < in_ * out_; ++i) theta[i] = uniform(rng);
  return theta;
}

Matrix AffineModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  const Eigen::Map<const RowMajor> w(theta.data(), out_, in_);
  Matrix y = x * w.transpose();
  y.rowwise() += theta.tail(out_).transpose();
  return y;
}

Cotangents AffineModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                               const MatrixRef& y_bar) const {
  const Eigen::Map<const RowMajor> w(theta.data(), out_, in_);
  Cotangents out{y_bar * w, Vector(num_params())};
  Eigen::Map<RowMajor>(out.theta_bar.data(), out_, in_) = y_bar.transpose() * x;
  out.theta_bar.tail(out_) = y_bar.colwise().sum().transpose();
  return out;
}

// ---- activation ---------------------------------------------------------------------------
Activation parse_activation(const std::string& name) {
  if (name == "relu") return Activation::kRelu;
  if (name == "tanh") return Activation::kTanh;
  if (name == "sin") return Activation::kSin;
  if (name == "sigmoid") return Activation::kSigmoid;
  throw std::invalid_argument("unknown activation '" + name + "' (use relu, tanh, sin or sigmoid)");
}

ActivationModel::ActivationModel(Activation kind, Index size) : kind_(kind), size_(size) {
  require(size_ >= 1, "activation: size must be ≥ 1");
}

std::string ActivationModel::name() const {
  switch (kind_) {
    case Activation::kRelu: return "relu";
    case Activation::kTanh: return "tanh";
    case Activation::kSin: return "sin";
    case Activation::kSigmoid: return "sigmoid";
  }
  return "activation";
}

Matrix ActivationModel::do_forward(const MatrixRef& x, const VectorRef& /*theta*/) const {
  switch (kind_) {
    case Activation::kRelu: return x.cwiseMax(0.0);
    case Activation::kTanh: return x.array().tanh().matrix();
    case Activation::kSin: return x.array().sin().matrix();
    case Activation::kSigmoid: return (1.0 / (1.0 + (-x.array()).exp())).matrix();
  }
  return x;
}

Cotangents ActivationModel::do_vjp(const MatrixRef& x, const VectorRef& /*theta*/,
                                   const MatrixRef& y_bar) const {
  Matrix x_bar;
  switch (kind_) {
    case Activation::kRelu:
      x_bar = (x.array() > 0.0).select(y_bar, 0.0);
      break;
    case Activation::kTanh:
      x_bar = (y_bar.array() * (1.0 - x.array().tanh().square())).matrix();
      break;
    case Activation::kSin:
      x_bar = (y_bar.array() * x.array().cos()).matrix();
      break;
    case Activation::kSigmoid: {
      const Eigen::ArrayXXd s = 1.0 / (1.0 + (-x.array()).exp());
      x_bar = (y_bar.array() * s * (1.0 - s)).matrix();
      break;
    }
  }
  return {std::move(x_bar), Vector()};
}

// ---- pad ----------------------------------------------------------------------------------
PadModel::PadModel(Index num_inputs, Index num_zeros) : in_(num_inputs), zeros_(num_zeros) {
  require(in_ >= 1 && zeros_ >= 0, "pad: inputs must be ≥ 1 and zeros ≥ 0");
}

Matrix PadModel::do_forward(const MatrixRef& x, const VectorRef& /*theta*/) const {
  Matrix y = Matrix::Zero(x.rows(), in_ + zeros_);
  y.leftCols(in_) = x;
  return y;
}

Cotangents PadModel::do_vjp(const MatrixRef& /*x*/, const VectorRef& /*theta*/,
                            const MatrixRef& y_bar) const {
  return {y_bar.leftCols(in_), Vector()};
}

// ---- duplicate ----------------------------------------------------------------------------
DuplicateModel::DuplicateModel(Index num_inputs) : in_(num_inputs) {
  require(in_ >= 1, "duplicate: inputs must be ≥ 1");
}

Matrix DuplicateModel::do_forward(const MatrixRef& x, const VectorRef& /*theta*/) const {
  Matrix y(x.rows(), 2 * in_);
  y << x, x;
  return y;
}

Cotangents DuplicateModel::do_vjp(const MatrixRef& /*x*/, const VectorRef& /*theta*/,
                                  const MatrixRef& y_bar) const {
  return {y_bar.leftCols(in_) + y_bar.rightCols(in_), Vector()};
}

// ---- slice --------------------------------------------------------------------------------
SliceModel::SliceModel(Index num_inputs, Index first, Index count, double gain)
    : in_(num_inputs), first_(first), count_(count), gain_(gain) {
  require(count_ >= 1 && first_ >= 0 && first_ + count_ <= in_,
          "slice: [first, first+count) = [" + std::to_string(first) + ", " +
              std::to_string(first + count) + ") does not fit in " + std::to_string(in_) +
              " inputs");
  require(std::isfinite(gain_), "slice: gain must be finite");
}

Matrix SliceModel::do_forward(const MatrixRef& x, const VectorRef& /*theta*/) const {
  return gain_ * x.middleCols(first_, count_);
}

Cotangents SliceModel::do_vjp(const MatrixRef& x, const VectorRef& /*theta*/,
                              const MatrixRef& y_bar) const {
  Matrix x_bar = Matrix::Zero(x.rows(), in_);
  x_bar.middleCols(first_, count_) = gain_ * y_bar;
  return {std::move(x_bar), Vector()};
}

// ---- power law ----------------------------------------------------------------------------
PowerLawModel::PowerLawModel(double prefactor, Index size) : prefactor_(prefactor), size_(size) {
  require(std::isfinite(prefactor_), "power-law: prefactor must be finite");
  require(size_ >= 1, "power-law: size must be ≥ 1");
}

Vector PowerLawModel::initial_params(std::uint64_t /*seed*/) const {
  return Vector::Constant(1, 1.0);
}

ModelPtr PowerLawModel::with_physical_params(const VectorRef& phi) const {
  require(phi.size() == 1, "power-law: one physical parameter (the prefactor) expected");
  return std::make_shared<PowerLawModel>(phi[0], size_);
}

Matrix PowerLawModel::do_forward(const MatrixRef& x, const VectorRef& theta) const {
  return (prefactor_ * x.array().pow(theta[0])).matrix();
}

Cotangents PowerLawModel::do_vjp(const MatrixRef& x, const VectorRef& theta,
                                 const MatrixRef& y_bar) const {
  const Eigen::ArrayXXd y = prefactor_ * x.array().pow(theta[0]);
  Cotangents out;
  out.x_bar = (y_bar.array() * theta[0] * prefactor_ * x.array().pow(theta[0] - 1.0)).matrix();
  out.theta_bar = Vector::Constant(1, (y_bar.array() * y * x.array().log()).sum());
  return out;
}

Vector PowerLawModel::do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                      const MatrixRef& y_bar) const {
  return Vector::Constant(1, (y_bar.array() * x.array().pow(theta[0])).sum());
}

}  // namespace pnn::digital_twin

#include "pnn/digital_twin/model.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "pnn/digital_twin/parallel.hpp"

namespace pnn::digital_twin {
namespace {

struct Shard {
  Index begin;
  Index rows;
};

std::vector<Shard> make_shards(Index batch, Index min_rows) {
  const Index max_shards = std::max<Index>(1, std::min<Index>(num_threads(), batch / std::max<Index>(1, min_rows)));
  std::vector<Shard> shards;
  Index begin = 0;
  for (Index s = 0; s < max_shards; ++s) {
    const Index rows = (batch - begin) / (max_shards - s);
    shards.push_back({begin, rows});
    begin += rows;
  }
  return shards;
}

}  // namespace

void DifferentiableModel::check_input(const MatrixRef& x, const VectorRef& theta) const {
  if (x.cols() != num_inputs()) {
    throw std::invalid_argument(name() + ": input has " + std::to_string(x.cols()) +
                                " features per sample but the model takes " +
                                std::to_string(num_inputs()) + " (batch shape " +
                                shape_string(x) + ", expected batch×" +
                                std::to_string(num_inputs()) + ")");
  }
  if (theta.size() != num_params()) {
    throw std::invalid_argument(name() + ": parameter vector has " + std::to_string(theta.size()) +
                                " entries but the model has " + std::to_string(num_params()));
  }
}

Matrix DifferentiableModel::forward(const MatrixRef& x, const VectorRef& theta) const {
  check_input(x, theta);
  const auto shards = make_shards(x.rows(), min_rows_per_shard());
  if (shards.size() == 1) return do_forward(x, theta);
  Matrix y(x.rows(), num_outputs());
  parallel_for(shards.size(), [&](std::size_t s) {
    const auto [begin, rows] = shards[s];
    y.middleRows(begin, rows) = do_forward(x.middleRows(begin, rows), theta);
  });
  return y;
}

void DifferentiableModel::check_cotangent(const MatrixRef& x, const VectorRef& theta,
                                          const MatrixRef& y_bar) const {
  check_input(x, theta);
  if (y_bar.rows() != x.rows() || y_bar.cols() != num_outputs()) {
    throw std::invalid_argument(name() + ": output cotangent has shape " + shape_string(y_bar) +
                                ", expected " + shape_string(x.rows(), num_outputs()));
  }
}

Cotangents DifferentiableModel::vjp(const MatrixRef& x, const VectorRef& theta,
                                    const MatrixRef& y_bar) const {
  check_cotangent(x, theta, y_bar);
  const auto shards = make_shards(x.rows(), min_rows_per_shard());
  if (shards.size() == 1) return do_vjp(x, theta, y_bar);
  Cotangents out{Matrix(x.rows(), num_inputs()), Vector::Zero(num_params())};
  std::vector<Vector> theta_bars(shards.size());
  parallel_for(shards.size(), [&](std::size_t s) {
    const auto [begin, rows] = shards[s];
    Cotangents part = do_vjp(x.middleRows(begin, rows), theta, y_bar.middleRows(begin, rows));
    out.x_bar.middleRows(begin, rows) = part.x_bar;
    theta_bars[s] = std::move(part.theta_bar);
  });
  for (const auto& tb : theta_bars) out.theta_bar += tb;
  return out;
}

Vector DifferentiableModel::initial_params(std::uint64_t /*seed*/) const {
  return Vector::Zero(num_params());
}

std::shared_ptr<const DifferentiableModel> DifferentiableModel::with_physical_params(
    const VectorRef& /*phi*/) const {
  throw std::logic_error(name() + " has no physical parameters to calibrate");
}

Vector DifferentiableModel::physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                         const MatrixRef& y_bar) const {
  check_cotangent(x, theta, y_bar);
  const auto shards = make_shards(x.rows(), min_rows_per_shard());
  std::vector<Vector> parts(shards.size());
  parallel_for(shards.size(), [&](std::size_t s) {
    const auto [begin, rows] = shards[s];
    parts[s] = do_physical_vjp(x.middleRows(begin, rows), theta, y_bar.middleRows(begin, rows));
  });
  Vector phi_bar = Vector::Zero(num_physical_params());
  for (const auto& p : parts) phi_bar += p;
  return phi_bar;
}

Vector DifferentiableModel::do_physical_vjp(const MatrixRef& /*x*/, const VectorRef& /*theta*/,
                                            const MatrixRef& /*y_bar*/) const {
  return Vector::Zero(0);
}

const char* precision_name(Precision p) { return p == Precision::kFloat32 ? "float32" : "float64"; }

std::optional<Precision> parse_precision(std::string_view name) {
  if (name == "float64") return Precision::kFloat64;
  if (name == "float32") return Precision::kFloat32;
  return std::nullopt;
}

ModelPtr DifferentiableModel::copy_with_compute(Precision) const { return nullptr; }

ModelPtr with_compute(const ModelPtr& model, Precision compute) {
  if (!model || model->compute() == compute) return model;
  return model->copy_with_compute(compute);
}

}  // namespace pnn::digital_twin

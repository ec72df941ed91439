#pragma once
/// The differentiable-model interface: the backward pass of physics-aware training.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::digital_twin {

/// Cotangents returned by `vjp`: ∂L/∂x (batch × inputs) and ∂L/∂θ (summed over the batch).
struct Cotangents {
  Matrix x_bar;
  Vector theta_bar;
};

/// The arithmetic a model's forward and vjp run in. The interface is double either way; a float32
/// model converts at its boundary (about twice the SIMD width and half the memory traffic).
/// Gradient checks and calibration keep float64.
enum class Precision { kFloat64, kFloat32 };

/// "float64" / "float32".
const char* precision_name(Precision p);
/// The precision named "float64" or "float32" (the inverse of precision_name); nullopt for any
/// other text, which callers report with their own key and fix.
std::optional<Precision> parse_precision(std::string_view name);

/// y = f(x; θ), batched with one sample per row.
///
/// Contract: stateless after construction, `const`, thread-safe (the public calls may run shards
/// of one batch on several threads at once). Public calls check shapes and throw
/// `std::invalid_argument` naming the expected and actual shapes; the private hooks may assume
/// shapes are right. Large batches are split into row shards that run on the shared thread pool
/// (`parallel.hpp`); parameter cotangents of the shards are summed.
///
/// Optional *physical parameters* φ (e.g. a measured stiffness) are fixed properties of the
/// model that calibration fits to measurements; they are not trained by the optimizer.
class DifferentiableModel {
 public:
  virtual ~DifferentiableModel() = default;

  virtual std::string name() const = 0;
  virtual Index num_inputs() const = 0;
  virtual Index num_outputs() const = 0;
  virtual Index num_params() const = 0;

  /// Y = f(X; θ). X: batch × num_inputs, θ: num_params. Returns batch × num_outputs.
  Matrix forward(const MatrixRef& x, const VectorRef& theta) const;

  /// Vector-Jacobian product at (X, θ) with output cotangent Ȳ (batch × num_outputs).
  Cotangents vjp(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const;

  /// A reasonable starting θ for training, deterministic in `seed`.
  virtual Vector initial_params(std::uint64_t seed) const;

  // --- physical parameters (calibration) -------------------------------------------------
  virtual Index num_physical_params() const { return 0; }
  virtual Vector physical_params() const { return {}; }
  /// A copy of this model with physical parameters φ. Throws std::logic_error if the model has
  /// none, std::invalid_argument on a wrong size or a non-finite entry.
  virtual std::shared_ptr<const DifferentiableModel> with_physical_params(const VectorRef& phi) const;
  /// The precision forward and vjp compute in.
  virtual Precision compute() const { return Precision::kFloat64; }
  /// A copy of this model computing in `compute`, or null if it has no kernel in that precision.
  /// Use the free `with_compute`, which returns the model itself when it already computes so.
  virtual std::shared_ptr<const DifferentiableModel> copy_with_compute(Precision compute) const;
  /// ∂L/∂φ summed over the batch, for output cotangent Ȳ.
  Vector physical_vjp(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const;

 protected:
  void check_input(const MatrixRef& x, const VectorRef& theta) const;
  void check_cotangent(const MatrixRef& x, const VectorRef& theta, const MatrixRef& y_bar) const;

 private:
  virtual Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const = 0;
  virtual Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                            const MatrixRef& y_bar) const = 0;
  virtual Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                                 const MatrixRef& y_bar) const;
  /// Smallest batch worth splitting across threads; models with cheap rows return more.
  virtual Index min_rows_per_shard() const { return 8; }
};

using ModelPtr = std::shared_ptr<const DifferentiableModel>;

/// `model` computing in `compute`: the model itself if it does already, else its copy; null if
/// the model has no kernel in that precision.
ModelPtr with_compute(const ModelPtr& model, Precision compute);

}  // namespace pnn::digital_twin

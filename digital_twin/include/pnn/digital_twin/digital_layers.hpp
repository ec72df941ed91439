#pragma once
/// Digital (in-silico) layers that sit between physical layers: affine maps, activations, and
/// parameter-free wiring (zero padding, slicing with a gain).
#include "pnn/digital_twin/model.hpp"

namespace pnn::digital_twin {

/// y = x Wᵀ + b.  θ layout: W (outputs × inputs, row-major) then b (outputs).
class AffineModel final : public DifferentiableModel {
 public:
  AffineModel(Index num_inputs, Index num_outputs);
  std::string name() const override { return "affine"; }
  Index num_inputs() const override { return in_; }
  Index num_outputs() const override { return out_; }
  Index num_params() const override { return in_ * out_ + out_; }
  /// Uniform(±1/√inputs) weights (PyTorch's default), zero bias.
  Vector initial_params(std::uint64_t seed) const override;

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 64; }
  Index in_, out_;
};

/// kSigmoid is 1 / (1 + e^{−x}): it lands in (0, 1), e.g. the transmission range of a modulator.
enum class Activation { kRelu, kTanh, kSin, kSigmoid };
/// "relu" | "tanh" | "sin" | "sigmoid"; throws std::invalid_argument naming the accepted values.
Activation parse_activation(const std::string& name);

/// Element-wise activation, no parameters.
class ActivationModel final : public DifferentiableModel {
 public:
  ActivationModel(Activation kind, Index size);
  std::string name() const override;
  Index num_inputs() const override { return size_; }
  Index num_outputs() const override { return size_; }
  Index num_params() const override { return 0; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 20; }
  Activation kind_;
  Index size_;
};

/// y = [x, 0…0]: appends `num_zeros` zero features (e.g. extra oscillators at rest).
class PadModel final : public DifferentiableModel {
 public:
  PadModel(Index num_inputs, Index num_zeros);
  std::string name() const override { return "pad"; }
  Index num_inputs() const override { return in_; }
  Index num_outputs() const override { return in_ + zeros_; }
  Index num_params() const override { return 0; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 20; }
  Index in_, zeros_;
};

/// y = [x, x]: the sample next to itself, the positive pair of self-contrastive forward-forward
/// (SCFF builds its negatives [x, x'] at this layer's output).
class DuplicateModel final : public DifferentiableModel {
 public:
  explicit DuplicateModel(Index num_inputs);
  std::string name() const override { return "duplicate"; }
  Index num_inputs() const override { return in_; }
  Index num_outputs() const override { return 2 * in_; }
  Index num_params() const override { return 0; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 20; }
  Index in_;
};

/// y = gain · x[:, first : first + count]: e.g. logits = fac · q of the last 10 oscillators.
class SliceModel final : public DifferentiableModel {
 public:
  SliceModel(Index num_inputs, Index first, Index count, double gain);
  std::string name() const override { return "slice"; }
  Index num_inputs() const override { return in_; }
  Index num_outputs() const override { return count_; }
  Index num_params() const override { return 0; }

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 20; }
  Index in_, first_, count_;
  double gain_;
};

/// y = a · x^θ element-wise with one shared exponent θ (the `pat-toy` layer). Inputs must be > 0.
class PowerLawModel final : public DifferentiableModel {
 public:
  PowerLawModel(double prefactor, Index size = 1);
  std::string name() const override { return "power-law"; }
  Index num_inputs() const override { return size_; }
  Index num_outputs() const override { return size_; }
  Index num_params() const override { return 1; }
  Vector initial_params(std::uint64_t seed) const override;
  /// φ = (a): the prefactor is the physical parameter calibration fits.
  Index num_physical_params() const override { return 1; }
  Vector physical_params() const override { return Vector::Constant(1, prefactor_); }
  ModelPtr with_physical_params(const VectorRef& phi) const override;

 private:
  Matrix do_forward(const MatrixRef& x, const VectorRef& theta) const override;
  Cotangents do_vjp(const MatrixRef& x, const VectorRef& theta,
                    const MatrixRef& y_bar) const override;
  Vector do_physical_vjp(const MatrixRef& x, const VectorRef& theta,
                         const MatrixRef& y_bar) const override;
  Index min_rows_per_shard() const override { return 1 << 20; }
  double prefactor_;
  Index size_;
};

}  // namespace pnn::digital_twin

#pragma once
/// Losses and optimizers.
#include <memory>
#include <string>
#include <vector>

#include "pnn/digital_twin/tensor.hpp"

namespace pnn::training {

enum class LossKind { kCrossEntropy, kMse };

struct LossValue {
  double loss = 0.0;  ///< mean over the batch
  Matrix grad;        ///< ∂loss/∂outputs (batch × outputs)
};

/// Softmax cross-entropy of logits against integer labels, averaged over the batch.
LossValue softmax_cross_entropy(const MatrixRef& logits, const Eigen::Ref<const Eigen::VectorXi>& labels);
/// Mean squared error ½·mean‖y − target‖² per sample (sum over outputs, mean over batch).
LossValue mean_squared_error(const MatrixRef& y, const MatrixRef& target);
/// One-hot targets for MSE classification.
Matrix one_hot(const Eigen::Ref<const Eigen::VectorXi>& labels, int num_classes);
/// Fraction of rows whose arg-max equals the label.
double accuracy(const MatrixRef& logits, const Eigen::Ref<const Eigen::VectorXi>& labels);

/// First-order optimizer over a list of parameter vectors (one per layer).
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string kind() const = 0;
  /// θ_i ← update(θ_i, g_i). Sizes must match those of the first call.
  virtual void step(const std::vector<Vector*>& params, const std::vector<Vector>& grads) = 0;
  /// The learning rate of the next steps (for rules that schedule it, e.g. SPSA's a_k).
  virtual void set_learning_rate(double learning_rate) = 0;
  /// Internal state (e.g. Adam moments) for checkpoints; restore with `set_state`.
  virtual std::int64_t num_steps() const = 0;
  virtual std::vector<Vector> state() const = 0;
  virtual void set_state(std::int64_t steps, std::vector<Vector> slots) = 0;
};

/// "adam" | "sgd". Throws std::invalid_argument naming the accepted kinds.
std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, double learning_rate,
                                          double momentum = 0.0);

}  // namespace pnn::training

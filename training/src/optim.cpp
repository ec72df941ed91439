#include "pnn/training/optim.hpp"

#include <cmath>
#include <stdexcept>

namespace pnn::training {

LossValue softmax_cross_entropy(const MatrixRef& logits, const Eigen::Ref<const Eigen::VectorXi>& labels) {
  const Index b = logits.rows();
  LossValue out{0.0, Matrix(b, logits.cols())};
  for (Index r = 0; r < b; ++r) {
    const double m = logits.row(r).maxCoeff();
    const Eigen::RowVectorXd e = (logits.row(r).array() - m).exp();
    const double z = e.sum();
    out.grad.row(r) = e / z;
    out.loss += std::log(z) + m - logits(r, labels[r]);
    out.grad(r, labels[r]) -= 1.0;
  }
  out.loss /= static_cast<double>(b);
  out.grad /= static_cast<double>(b);
  return out;
}

LossValue mean_squared_error(const MatrixRef& y, const MatrixRef& target) {
  const double b = static_cast<double>(y.rows());
  const Matrix d = y - target;
  return {0.5 * d.squaredNorm() / b, d / b};
}

Matrix one_hot(const Eigen::Ref<const Eigen::VectorXi>& labels, int num_classes) {
  Matrix t = Matrix::Zero(labels.size(), num_classes);
  for (Index r = 0; r < labels.size(); ++r) t(r, labels[r]) = 1.0;
  return t;
}

double accuracy(const MatrixRef& logits, const Eigen::Ref<const Eigen::VectorXi>& labels) {
  if (logits.rows() == 0) return 0.0;
  Index correct = 0;
  for (Index r = 0; r < logits.rows(); ++r) {
    Index arg = 0;
    logits.row(r).maxCoeff(&arg);
    correct += (arg == labels[r]);
  }
  return static_cast<double>(correct) / static_cast<double>(logits.rows());
}

namespace {

class Sgd final : public Optimizer {
 public:
  Sgd(double lr, double momentum) : lr_(lr), momentum_(momentum) {}
  std::string kind() const override { return "sgd"; }
  void set_learning_rate(double lr) override { lr_ = lr; }
  void step(const std::vector<Vector*>& params, const std::vector<Vector>& grads) override {
    if (velocity_.empty()) {
      for (auto* p : params) velocity_.push_back(Vector::Zero(p->size()));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      velocity_[i] = momentum_ * velocity_[i] + grads[i];
      *params[i] -= lr_ * velocity_[i];
    }
    ++steps_;
  }
  std::int64_t num_steps() const override { return steps_; }
  std::vector<Vector> state() const override { return velocity_; }
  void set_state(std::int64_t steps, std::vector<Vector> slots) override {
    steps_ = steps;
    velocity_ = std::move(slots);
  }

 private:
  double lr_, momentum_;
  std::int64_t steps_ = 0;
  std::vector<Vector> velocity_;
};

class Adam final : public Optimizer {
 public:
  explicit Adam(double lr) : lr_(lr) {}
  std::string kind() const override { return "adam"; }
  void set_learning_rate(double lr) override { lr_ = lr; }
  void step(const std::vector<Vector*>& params, const std::vector<Vector>& grads) override {
    if (m_.empty()) {
      for (auto* p : params) {
        m_.push_back(Vector::Zero(p->size()));
        v_.push_back(Vector::Zero(p->size()));
      }
    }
    ++steps_;
    const double c1 = 1.0 - std::pow(kBeta1, static_cast<double>(steps_));
    const double c2 = 1.0 - std::pow(kBeta2, static_cast<double>(steps_));
    for (std::size_t i = 0; i < params.size(); ++i) {
      m_[i] = kBeta1 * m_[i] + (1.0 - kBeta1) * grads[i];
      v_[i] = kBeta2 * v_[i] + (1.0 - kBeta2) * grads[i].cwiseAbs2();
      params[i]->array() -= lr_ * (m_[i].array() / c1) / ((v_[i].array() / c2).sqrt() + kEps);
    }
  }
  std::int64_t num_steps() const override { return steps_; }
  std::vector<Vector> state() const override {
    std::vector<Vector> s = m_;
    s.insert(s.end(), v_.begin(), v_.end());
    return s;
  }
  void set_state(std::int64_t steps, std::vector<Vector> slots) override {
    if (slots.size() % 2 != 0) throw std::invalid_argument("adam: state needs m and v per layer");
    steps_ = steps;
    const auto half = static_cast<std::ptrdiff_t>(slots.size() / 2);
    m_.assign(slots.begin(), slots.begin() + half);
    v_.assign(slots.begin() + half, slots.end());
  }

 private:
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  double lr_;
  std::int64_t steps_ = 0;
  std::vector<Vector> m_, v_;
};

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(const std::string& kind, double learning_rate,
                                          double momentum) {
  if (!(learning_rate > 0.0) || !std::isfinite(learning_rate)) {
    throw std::invalid_argument("learning rate must be a positive number");
  }
  if (kind == "adam") return std::make_unique<Adam>(learning_rate);
  if (kind == "sgd") return std::make_unique<Sgd>(learning_rate, momentum);
  throw std::invalid_argument("unknown optimizer '" + kind + "' (use adam or sgd)");
}

}  // namespace pnn::training

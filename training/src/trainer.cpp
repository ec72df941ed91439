#include "pnn/training/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <random>
#include <stdexcept>

namespace pnn::training {

const char* to_string(Method m) { return m == Method::kPat ? "pat" : "in-silico"; }

Trainer::Trainer(Network& network, TrainOptions options)
    : network_(network), options_(std::move(options)) {
  if (options_.batch_size < 1) throw std::invalid_argument("batch_size must be ≥ 1");
  if (options_.epochs < 0) throw std::invalid_argument("epochs must be ≥ 0");
  optimizer_ = make_optimizer(options_.optimizer, options_.learning_rate, options_.momentum);
}

Result<std::vector<EpochStats>> Trainer::fit(const Dataset& train, const Dataset* test,
                                             const TrainCallbacks& callbacks) {
  if (train.x.cols() != network_.num_inputs()) {
    throw std::invalid_argument("data set " + train.name + " has " + std::to_string(train.x.cols()) +
                                " features but the network takes " +
                                std::to_string(network_.num_inputs()));
  }
  const Mode mode = options_.method == Method::kPat ? Mode::kHardware : Mode::kTwin;
  const Index n = train.size();
  const Index num_batches = (n + options_.batch_size - 1) / options_.batch_size;
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::vector<Vector*> params;
  for (auto& layer : network_.layers()) params.push_back(&layer.theta);
  std::vector<EpochStats> history;

  while (epochs_done_ < options_.epochs) {
    const auto start = std::chrono::steady_clock::now();
    // The shuffle depends on (seed, epoch) only, so a resumed run sees the same batches.
    std::iota(order.begin(), order.end(), Index{0});
    std::mt19937_64 rng(options_.seed * 1000003ull + static_cast<std::uint64_t>(epochs_done_));
    std::shuffle(order.begin(), order.end(), rng);

    EpochStats stats;
    stats.epoch = epochs_done_ + 1;
    double loss_sum = 0.0, correct = 0.0;
    for (Index b = 0; b < num_batches; ++b) {
      const Index begin = b * options_.batch_size;
      const Index rows = std::min(options_.batch_size, n - begin);
      Matrix xb(rows, train.x.cols());
      Eigen::VectorXi yb(rows);
      for (Index r = 0; r < rows; ++r) {
        xb.row(r) = train.x.row(order[static_cast<std::size_t>(begin + r)]);
        yb[r] = train.labels[order[static_cast<std::size_t>(begin + r)]];
      }
      auto trace = network_.forward(xb, mode);
      if (!trace) return trace.error();
      const Matrix& out = trace.value().output;
      const LossValue loss = options_.loss == LossKind::kCrossEntropy
                                 ? softmax_cross_entropy(out, yb)
                                 : mean_squared_error(out, one_hot(yb, train.num_classes));
      const std::vector<Vector> grads = network_.backward(trace.value(), loss.grad);
      optimizer_->step(params, grads);
      for (auto& layer : network_.layers()) {
        layer.theta = layer.theta.cwiseMax(layer.theta_min).cwiseMin(layer.theta_max);
      }
      loss_sum += loss.loss * static_cast<double>(rows);
      correct += accuracy(out, yb) * static_cast<double>(rows);
      if (callbacks.on_batch) callbacks.on_batch(stats.epoch, b + 1, num_batches, loss_sum / static_cast<double>(begin + rows));
      if (callbacks.stop_requested && callbacks.stop_requested()) return history;
    }
    stats.train_loss = loss_sum / static_cast<double>(n);
    stats.train_accuracy = correct / static_cast<double>(n);
    if (test != nullptr && options_.evaluate_each_epoch) {
      auto acc = evaluate(network_, *test, options_.eval_mode.value_or(mode));
      if (!acc) return acc.error();
      stats.test_accuracy = acc.value();
    }
    stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ++epochs_done_;
    history.push_back(stats);
    if (callbacks.on_epoch) callbacks.on_epoch(stats);
  }
  return history;
}

Result<double> evaluate(const Network& network, const Dataset& data, Mode mode, Index batch_size) {
  Index correct = 0;
  for (Index begin = 0; begin < data.size(); begin += batch_size) {
    const Index rows = std::min(batch_size, data.size() - begin);
    auto trace = network.forward(data.x.middleRows(begin, rows), mode);
    if (!trace) return trace.error();
    correct += static_cast<Index>(std::lround(
        accuracy(trace.value().output, data.labels.segment(begin, rows)) * static_cast<double>(rows)));
  }
  return data.size() == 0 ? 0.0 : static_cast<double>(correct) / static_cast<double>(data.size());
}

}  // namespace pnn::training

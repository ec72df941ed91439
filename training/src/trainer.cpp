#include "pnn/training/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numbers>
#include <numeric>
#include <random>
#include <stdexcept>

namespace pnn::training {

Trainer::Trainer(Network& network, TrainOptions options)
    : network_(network), options_(std::move(options)) {
  if (options_.batch_size < 1) throw std::invalid_argument("batch_size must be ≥ 1");
  if (options_.epochs < 0) throw std::invalid_argument("epochs must be ≥ 0");
  rule_ = make_learning_rule(options_.method, options_.seed);
  check_rule_fits(*rule_, summarize(network_));
  rule_->check_network(network_);
  optimizer_ = make_optimizer(options_.optimizer, options_.learning_rate, options_.momentum);
}

Result<std::vector<EpochStats>> Trainer::fit(const Dataset& train, const Dataset* test,
                                             const TrainCallbacks& callbacks) {
  if (train.x.cols() != network_.num_inputs()) {
    throw std::invalid_argument("data set " + train.name + " has " + std::to_string(train.x.cols()) +
                                " features but the network takes " +
                                std::to_string(network_.num_inputs()));
  }
  const Mode mode = rule_->mode();
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

    if (options_.lr_schedule == TrainOptions::Schedule::kCosine) {
      optimizer_->set_learning_rate(
          options_.learning_rate * 0.5 *
          (1.0 + std::cos(std::numbers::pi * static_cast<double>(epochs_done_) /
                          static_cast<double>(options_.epochs))));
    }
    EpochStats stats;
    stats.epoch = epochs_done_ + 1;
    double loss_sum = 0.0, correct = 0.0;
    for (Index b = 0; b < num_batches; ++b) {
      const Index begin = b * options_.batch_size;
      const Index rows = std::min(options_.batch_size, n - begin);
      Batch batch{Matrix(rows, train.x.cols()), Eigen::VectorXi(rows), train.num_classes,
                  options_.loss};
      for (Index r = 0; r < rows; ++r) {
        batch.x.row(r) = train.x.row(order[static_cast<std::size_t>(begin + r)]);
        batch.labels[r] = train.labels[order[static_cast<std::size_t>(begin + r)]];
      }
      const std::int64_t calls_before = network_.hardware_calls();
      auto step = rule_->step(network_, batch);
      hardware_calls_ += network_.hardware_calls() - calls_before;
      if (!step) return step.error();
      if (step.value().grads) {
        if (step.value().learning_rate) optimizer_->set_learning_rate(*step.value().learning_rate);
        optimizer_->step(params, *step.value().grads);
        for (auto& layer : network_.layers()) {
          layer.theta = layer.theta.cwiseMax(layer.theta_min).cwiseMin(layer.theta_max);
        }
      }
      loss_sum += step.value().loss * static_cast<double>(rows);
      correct += accuracy(step.value().output, batch.labels) * static_cast<double>(rows);
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
    stats.hardware_calls = hardware_calls_;
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

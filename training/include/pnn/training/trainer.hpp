#pragma once
/// Training of a `Network` with a learning rule, and evaluation.
///
/// Each batch: the rule (learning_rule.hpp) makes its device/twin calls and returns a gradient
/// or gradient estimate; the optimizer steps; θ is projected into the hard limits. PAT: forward
/// on the hardware recording each layer's measured input, loss on the measured output, backward
/// through the twins' `vjp` at the measured inputs. In-silico: the same with the twins' forward
/// (the baseline PAT must beat). SPSA and MGD: forward only, no twin.
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "pnn/training/datasets.hpp"
#include "pnn/training/learning_rule.hpp"
#include "pnn/training/network.hpp"
#include "pnn/training/optim.hpp"

namespace pnn::training {

struct TrainOptions {
  RuleConfig method = PatConfig{};  ///< the learning rule and its options
  std::string optimizer = "adam";
  double learning_rate = 3e-3;
  double momentum = 0.0;  ///< sgd only
  /// kCosine: epoch e (0-based) of E trains at learning_rate · ½(1 + cos(π e / E)) (cosine
  /// annealing, one value per epoch, so a resumed run continues the same curve). A rule that
  /// schedules its own rate (SPSA) overrides it.
  enum class Schedule { kConstant, kCosine } lr_schedule = Schedule::kConstant;
  Index batch_size = 32;
  int epochs = 40;
  LossKind loss = LossKind::kCrossEntropy;
  std::uint64_t seed = 0;       ///< shuffling, and the rule's random stream
  bool evaluate_each_epoch = true;
  /// Where the per-epoch test accuracy is measured; default: the rule's mode (hardware for
  /// PAT and the zeroth-order rules, twin for in-silico). In-silico jobs set the hardware, to
  /// show the deployed accuracy.
  std::optional<Mode> eval_mode;
};

struct EpochStats {
  int epoch = 0;                 ///< 1-based
  double train_loss = 0.0;       ///< mean over the epoch's batches
  double train_accuracy = 0.0;   ///< on the batches as trained (measured outputs for PAT)
  double test_accuracy = -1.0;   ///< in TrainOptions::eval_mode; -1 if not evaluated
  double seconds = 0.0;
  /// Device calls the training made up to the end of this epoch, from the first epoch of the
  /// run (resumes included); the test-accuracy evaluation is not counted.
  std::int64_t hardware_calls = 0;
};

struct TrainCallbacks {
  std::function<void(int epoch, Index batch, Index num_batches, double running_loss)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  /// Polled between batches; returning true ends training after the current batch.
  std::function<bool()> stop_requested;
};

class Trainer {
 public:
  /// Throws std::invalid_argument on bad options (batch size < 1, epochs < 0, bad optimizer),
  /// RuleError (an std::invalid_argument) on a bad rule option or a layer that cannot provide
  /// what the rule needs: before any call reaches a device.
  Trainer(Network& network, TrainOptions options);

  /// Trains from the current epoch up to `options.epochs`. A hardware fault ends training with
  /// the error (θ keeps the last completed step; no batch is counted twice).
  Result<std::vector<EpochStats>> fit(const Dataset& train, const Dataset* test,
                                      const TrainCallbacks& callbacks = {});

  int epochs_done() const { return epochs_done_; }
  Optimizer& optimizer() { return *optimizer_; }
  LearningRule& rule() { return *rule_; }
  /// Device calls of the training so far (see EpochStats::hardware_calls).
  std::int64_t hardware_calls() const { return hardware_calls_; }
  /// For resuming from a checkpoint.
  void set_epochs_done(int epochs) { epochs_done_ = epochs; }
  void set_hardware_calls(std::int64_t calls) { hardware_calls_ = calls; }
  const TrainOptions& options() const { return options_; }

 private:
  Network& network_;
  TrainOptions options_;
  std::unique_ptr<LearningRule> rule_;
  std::unique_ptr<Optimizer> optimizer_;
  int epochs_done_ = 0;
  std::int64_t hardware_calls_ = 0;
};

/// Classification accuracy of the network on a data set, on the hardware or on the twins.
Result<double> evaluate(const Network& network, const Dataset& data, Mode mode,
                        Index batch_size = 512);

}  // namespace pnn::training

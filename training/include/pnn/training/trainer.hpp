#pragma once
/// Physics-aware training (PAT) and in-silico training of a `Network`, and evaluation.
///
/// PAT step: forward on the hardware recording each layer's measured input; loss on the measured
/// output; backward through the twins' `vjp` at the measured inputs; optimizer step; θ projected
/// into the hard limits. In-silico: the same with the twins' forward (the baseline PAT must beat).
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "pnn/training/datasets.hpp"
#include "pnn/training/network.hpp"
#include "pnn/training/optim.hpp"

namespace pnn::training {

enum class Method { kPat, kInSilico };
enum class LossKind { kCrossEntropy, kMse };
const char* to_string(Method m);

struct TrainOptions {
  Method method = Method::kPat;
  std::string optimizer = "adam";
  double learning_rate = 3e-3;
  double momentum = 0.0;  ///< sgd only
  Index batch_size = 32;
  int epochs = 40;
  LossKind loss = LossKind::kCrossEntropy;
  std::uint64_t seed = 0;       ///< shuffling
  bool evaluate_each_epoch = true;
  /// Where the per-epoch test accuracy is measured; default: the training mode (hardware for
  /// PAT, twin for in-silico). In-silico jobs set the hardware, to show the deployed accuracy.
  std::optional<Mode> eval_mode;
};

struct EpochStats {
  int epoch = 0;                 ///< 1-based
  double train_loss = 0.0;       ///< mean over the epoch's batches
  double train_accuracy = 0.0;   ///< on the batches as trained (measured outputs for PAT)
  double test_accuracy = -1.0;   ///< in TrainOptions::eval_mode; -1 if not evaluated
  double seconds = 0.0;
};

struct TrainCallbacks {
  std::function<void(int epoch, Index batch, Index num_batches, double running_loss)> on_batch;
  std::function<void(const EpochStats&)> on_epoch;
  /// Polled between batches; returning true ends training after the current batch.
  std::function<bool()> stop_requested;
};

class Trainer {
 public:
  /// Throws std::invalid_argument on bad options (batch size < 1, epochs < 0, bad optimizer).
  Trainer(Network& network, TrainOptions options);

  /// Trains from the current epoch up to `options.epochs`. A hardware fault ends training with
  /// the error (θ keeps the last completed step; no batch is counted twice).
  Result<std::vector<EpochStats>> fit(const Dataset& train, const Dataset* test,
                                      const TrainCallbacks& callbacks = {});

  int epochs_done() const { return epochs_done_; }
  Optimizer& optimizer() { return *optimizer_; }
  /// For resuming from a checkpoint.
  void set_epochs_done(int epochs) { epochs_done_ = epochs; }
  const TrainOptions& options() const { return options_; }

 private:
  Network& network_;
  TrainOptions options_;
  std::unique_ptr<Optimizer> optimizer_;
  int epochs_done_ = 0;
};

/// Classification accuracy of the network on a data set, on the hardware or on the twins.
Result<double> evaluate(const Network& network, const Dataset& data, Mode mode,
                        Index batch_size = 512);

}  // namespace pnn::training

#pragma once
// Terminal progress for training: an in-place bar per batch on a terminal, one line per epoch.
#include <cstdio>
#include <string>

#include "pnn/training/trainer.hpp"

namespace pnnctl {

class Progress {
 public:
  explicit Progress(std::FILE* out);
  void batch(const std::string& phase, int epoch, int epochs, long batch, long num_batches,
             double loss);
  void epoch(const std::string& phase, const pnn::training::EpochStats& stats, int epochs);
  void line(const std::string& text);

 private:
  std::FILE* out_;
  bool tty_;
  bool dirty_ = false;
};

}  // namespace pnnctl

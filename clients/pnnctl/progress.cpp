#include "progress.hpp"

#include <unistd.h>

namespace pnnctl {

Progress::Progress(std::FILE* out) : out_(out), tty_(::isatty(::fileno(out)) != 0) {}

void Progress::batch(const std::string& phase, int epoch, int epochs, long batch, long num_batches,
                     double loss) {
  if (!tty_) return;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(kWidth * batch / std::max(1L, num_batches));
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(out_, "\r  %-9s epoch %3d/%-3d [%s] %3ld%%  loss %.4f ", phase.c_str(), epoch,
               epochs, bar.c_str(), 100 * batch / std::max(1L, num_batches), loss);
  std::fflush(out_);
  dirty_ = true;
}

void Progress::epoch(const std::string& phase, const pnn::training::EpochStats& s, int epochs) {
  if (dirty_) std::fprintf(out_, "\r\033[K");
  dirty_ = false;
  std::fprintf(out_, "  %-9s epoch %3d/%-3d loss %.4f  train acc %.4f", phase.c_str(), s.epoch,
               epochs, s.train_loss, s.train_accuracy);
  if (s.test_accuracy >= 0) std::fprintf(out_, "  test acc %.4f", s.test_accuracy);
  std::fprintf(out_, "  (%.2f s)\n", s.seconds);
  std::fflush(out_);
}

void Progress::line(const std::string& text) {
  if (dirty_) std::fprintf(out_, "\r\033[K");
  dirty_ = false;
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

}  // namespace pnnctl

#pragma once
// Helpers shared by the speaker-plate tests (twin and simulated device).
#include <cmath>

#include "test_util.hpp"

namespace pnn::test {

/// Drive levels in (−1, 1) V, the device's range: tanh of N(0, 0.6²) entries, deterministic in
/// `seed`.
inline Matrix plate_levels(Index rows, Index cols, std::uint64_t seed) {
  return random_matrix(rows, cols, 0.6, seed).array().tanh();
}

}  // namespace pnn::test

#pragma once
// Helpers shared by the test files.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>

#include "pnn/digital_twin/tensor.hpp"
#include "pnn/drivers/registry.hpp"

namespace pnn::test {

/// Entries N(0, scale²), deterministic in `seed`.
inline Matrix random_matrix(Index rows, Index cols, double scale, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, scale);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

/// Entries uniform in [lo, hi), deterministic in `seed`.
inline Matrix uniform_matrix(Index rows, Index cols, double lo, double hi, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

/// Root mean square of the entries.
inline double rms(const MatrixRef& m) { return std::sqrt(m.squaredNorm() / static_cast<double>(m.size())); }

/// A device from its address, configured and activated (REQUIREs both).
inline drivers::PhysicalSystemPtr active_device(const std::string& address) {
  auto dev = drivers::make_physical_system(address);
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  return dev;
}

}  // namespace pnn::test

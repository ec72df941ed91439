#pragma once
// Helpers shared by the test files.
#include <doctest/doctest.h>

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "pnn/digital_twin/tensor.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/drivers/simulated.hpp"

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

/// `text` with the first `from` replaced by `to` (REQUIREs that `from` is there).
inline std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

/// A device from its address, configured and activated (REQUIREs both).
inline drivers::PhysicalSystemPtr active_device(const std::string& address) {
  auto dev = drivers::make_physical_system(address);
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  return dev;
}

/// A simulated board with its firmware emulator (for injecting faults and inspecting it), the
/// driver configured and activated (REQUIREs both and that there is firmware).
inline drivers::SimulatedDevice active_sim(const std::string& address) {
  drivers::SimulatedDevice s = drivers::make_simulated_device(address);
  REQUIRE(s.firmware);
  REQUIRE(s.driver->configure());
  REQUIRE(s.driver->activate());
  return s;
}

/// A fresh directory named after `tag`, removed with its contents. Under `base`: by default the
/// system temp directory (a real disk, where fsync costs what it costs); `in_memory()` is
/// /dev/shm where there is one (fsync free, for tests about something else than the disk).
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "pnn-test",
                   const std::filesystem::path& base = std::filesystem::temp_directory_path()) {
    static std::atomic<int> counter{0};
    path_ = base / (tag + "-" + std::to_string(::getpid()) + "-" +
                    std::to_string(counter.fetch_add(1)) + "-" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  static std::filesystem::path in_memory() {
    return std::filesystem::is_directory("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                     : std::filesystem::temp_directory_path();
  }
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  /// Names of everything in the directory.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_)) names.push_back(e.path().filename());
    return names;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace pnn::test

#pragma once
/// One simulated setup, split the way a real one is: what the host driver knows (the spec with
/// units and hard limits, and the nominal twin from the datasheet) and what only the instrument
/// knows (its reality: the physics with the device's true parameters, noise and quirks). The
/// registry puts the reality inside a firmware emulator and drives it through the same driver
/// code and wire protocol as a real board (firmware_emulator.hpp). Private to drivers.
#include <functional>
#include <stdexcept>
#include <string>
#include <memory>
#include <utility>

#include "pnn/digital_twin/model.hpp"
#include "pnn/drivers/device_spec.hpp"
#include "pnn/drivers/format.hpp"
#include "pnn/drivers/registry.hpp"

namespace pnn::drivers::sim {

/// The physics a simulated instrument's firmware runs. Preconditions are checked by the firmware
/// before run() is called: shapes, finiteness, θ and inputs within the device's limits.
class Reality {
 public:
  virtual ~Reality() = default;
  virtual Matrix run(const MatrixRef& x, const VectorRef& theta) = 0;
};

/// Makes the reality of a freshly powered-on instrument (the same device every time: its
/// true parameters come from the serial; only its noise streams and clocks restart).
using RealityFactory = std::function<std::unique_ptr<Reality>()>;

struct SimSetup {
  DeviceSpec spec;                  ///< as the driver's datasheet describes the instrument
  digital_twin::ModelPtr twin;      ///< nominal twin (uncalibrated)
  RealityFactory make_reality;      ///< what the firmware computes
};

/// Adapts a reality simulator class with `Matrix run(x, θ)` and a config constructor.
template <class R>
class RealityOf final : public Reality {
 public:
  template <class Config>
  explicit RealityOf(const Config& config) : r_(config) {}
  Matrix run(const MatrixRef& x, const VectorRef& theta) override { return r_.run(x, theta); }

 private:
  R r_;
};

template <class R, class Config>
RealityFactory reality_factory(Config config) {
  return [config = std::move(config)] { return std::make_unique<RealityOf<R>>(config); };
}

/// An integer address option within [lo, hi]; throws std::invalid_argument naming the option,
/// its value, what it counts and the allowed range.
inline long long int_in_range(const DeviceAddress& address, const std::string& key,
                              long long fallback, long long lo, long long hi,
                              const std::string& what) {
  const long long v = address.get_int(key, fallback);
  if (v < lo || v > hi) {
    throw std::invalid_argument(address.text + ": " + key + " = " + std::to_string(v) + " " +
                                what + " is outside " + std::to_string(lo) + ".." +
                                std::to_string(hi));
  }
  return v;
}

/// A real address option within [lo, hi]; throws like int_in_range.
inline double double_in_range(const DeviceAddress& address, const std::string& key,
                              double fallback, double lo, double hi) {
  const double v = address.get_double(key, fallback);
  if (!(v >= lo && v <= hi)) {
    throw std::invalid_argument(address.text + ": " + key + " = " + format_shortest(v) +
                                " is outside [" + format_shortest(lo) + ", " +
                                format_shortest(hi) + "]");
  }
  return v;
}

}  // namespace pnn::drivers::sim

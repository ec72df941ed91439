#pragma once
/// One simulated setup, split the way a real one is: what the host driver knows (the datasheet:
/// the spec with units and hard limits, and the nominal twin, `pnn/drivers/setups/<kind>.hpp`)
/// and what only the instrument knows (its identity, and its reality: the physics with the
/// device's true parameters, noise and quirks). The registry puts the reality inside a firmware
/// emulator and drives it through the same driver code and wire protocol as a real board
/// (firmware_emulator.hpp). Private to drivers_sim.
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "pnn/digital_twin/resistive_network.hpp"
#include "pnn/digital_twin/spiking_lif.hpp"
#include "pnn/drivers/datasheet.hpp"

namespace pnn::drivers::sim {

/// One run of a spiking chip's batch: the outputs (batch × O, as run() returns them), the hidden
/// spikes (batch × T·H, 0/1, step-major) and the output ADC codes (batch × T·O, integers
/// 0..max_code, step-major) with the membranes of code 0 and code max_code.
struct ChipRun {
  Matrix outputs;
  Matrix hidden_spikes;
  Matrix output_codes;
  double code_lo = 0.0;
  double code_hi = 1.0;
};

/// The physics a simulated instrument's firmware runs. Preconditions are checked by the firmware
/// before run() is called: shapes, finiteness, θ and inputs within the device's limits.
class Reality {
 public:
  virtual ~Reality() = default;
  virtual Matrix run(const MatrixRef& x, const VectorRef& theta) = 0;
  /// Energy-based setups (spec.settle_nodes > 0): the node voltages of the equilibrium of `x` at
  /// θ under `boundary` (checked by the firmware), or nullopt when it is not reached within the
  /// device's settle time. The firmware never calls it on other setups.
  virtual std::optional<Matrix> settle(const MatrixRef& /*x*/, const VectorRef& /*theta*/,
                                       const digital_twin::SettleBoundary& /*boundary*/,
                                       bool /*warm_start*/) {
    throw std::logic_error("this reality has no settle call");
  }
  /// Spiking setups (spec.spike_channels > 0): one run of the batch's input events (checked by
  /// the firmware) at θ. The firmware never calls it on other setups.
  virtual ChipRun spike_run(const std::vector<std::vector<digital_twin::InputEvent>>& /*events*/,
                            const VectorRef& /*theta*/) {
    throw std::logic_error("this reality has no spike_run call");
  }
};

/// Makes the reality of a freshly powered-on instrument (the same device every time: its
/// true parameters come from the serial; only its noise streams and clocks restart).
using RealityFactory = std::function<std::unique_ptr<Reality>()>;

struct SimSetup {
  DeviceSpec spec;              ///< the datasheet's, with the simulated instrument's identity
  digital_twin::ModelPtr twin;  ///< the datasheet's nominal twin (uncalibrated)
  RealityFactory make_reality;  ///< what the firmware computes
};

/// Gives a datasheet's spec the identity of a simulated instrument: `model`, the serial
/// `default_serial` unless the address gave one (the serial seeds the device's hidden
/// imperfections, so set it before deriving the reality's seed), firmware "sim-1.0".
inline void set_simulated_identity(DeviceSpec& spec, std::string model,
                                   const std::string& default_serial) {
  spec.model = std::move(model);
  if (spec.serial.empty()) spec.serial = default_serial;
  spec.firmware = "sim-1.0";
}

/// Adapts a reality simulator class with `Matrix run(x, θ)` and a config constructor.
template <class R>
class RealityOf final : public Reality {
 public:
  template <class Config>
  explicit RealityOf(const Config& config) : r_(config) {}
  Matrix run(const MatrixRef& x, const VectorRef& theta) override { return r_.run(x, theta); }
  std::optional<Matrix> settle(const MatrixRef& x, const VectorRef& theta,
                               const digital_twin::SettleBoundary& boundary,
                               bool warm_start) override {
    if constexpr (requires { r_.settle(x, theta, boundary, warm_start); }) {
      return r_.settle(x, theta, boundary, warm_start);
    } else {
      return Reality::settle(x, theta, boundary, warm_start);
    }
  }
  ChipRun spike_run(const std::vector<std::vector<digital_twin::InputEvent>>& events,
                    const VectorRef& theta) override {
    if constexpr (requires { r_.spike_run(events, theta); }) {
      return r_.spike_run(events, theta);
    } else {
      return Reality::spike_run(events, theta);
    }
  }

 private:
  R r_;
};

template <class R, class Config>
RealityFactory reality_factory(Config config) {
  return [config = std::move(config)] { return std::make_unique<RealityOf<R>>(config); };
}

}  // namespace pnn::drivers::sim

#pragma once
// Devices for the learning-rule tests: a noise-free "device" that is its own twin (exact
// gradients to compare estimates with, deterministic runs to compare resumes with), and a
// wrapper that records every θ and input sent.
#include <vector>

#include "pnn/drivers/physical_system.hpp"
#include "test_util.hpp"

namespace pnn::test {

/// Runs the nominal twin of the device at `address` as the device: same spec and limits, no
/// noise, no quantisation. Configured and activated by the constructor.
class TwinDevice final : public drivers::PhysicalSystem {
 public:
  explicit TwinDevice(const std::string& address) : TwinDevice(active_device(address)) {}
  digital_twin::ModelPtr nominal_twin() const override { return twin_; }

 private:
  explicit TwinDevice(drivers::PhysicalSystemPtr source)
      : PhysicalSystem(source->spec()), twin_(source->nominal_twin()) {
    REQUIRE(configure());
    REQUIRE(activate());
  }
  drivers::Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    return twin_->forward(x, theta);
  }
  digital_twin::ModelPtr twin_;
};

/// Forwards to `inner` and records each θ it was asked to send, and each input batch.
class RecordingDevice final : public drivers::PhysicalSystem {
 public:
  explicit RecordingDevice(drivers::PhysicalSystem& inner)
      : PhysicalSystem(inner.spec()), inner_(inner) {
    REQUIRE(configure());
    REQUIRE(activate());
  }
  digital_twin::ModelPtr nominal_twin() const override { return inner_.nominal_twin(); }
  std::vector<Vector> sent;
  std::vector<Matrix> inputs;

 private:
  drivers::Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    sent.push_back(theta);
    inputs.push_back(x);
    return inner_.forward(x, theta);
  }
  drivers::PhysicalSystem& inner_;
};

}  // namespace pnn::test

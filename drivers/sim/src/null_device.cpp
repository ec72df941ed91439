// sim://null: a device that returns its input (y = x), with no parameters and no physics. It
// exists to measure what the layers around a device cost (RPC, recording, scheduling) with the
// device itself taking no time, e.g. the daemon's rpc-overhead benchmark.
#include <limits>

#include "pnn/digital_twin/digital_layers.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {
namespace {

class SimNull final : public PhysicalSystem {
 public:
  explicit SimNull(DeviceSpec spec) : PhysicalSystem(std::move(spec)) {}

  // The identity, as the twin of an identity device: a full-width slice with gain 1.
  digital_twin::ModelPtr nominal_twin() const override {
    const Index n = spec().num_inputs;
    return std::make_shared<digital_twin::SliceModel>(n, 0, n, 1.0);
  }

 private:
  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef&) override { return Matrix(x); }
};

}  // namespace

PhysicalSystemPtr make_null(const DeviceAddress& address) {
  address.allow_only({"inputs", "serial"});
  const long long n = address.get_int("inputs", 1);
  if (n < 1 || n > (1 << 20)) {
    throw std::invalid_argument(address.text + ": inputs = " + std::to_string(n) +
                                " is outside 1..1048576");
  }
  DeviceSpec spec;
  spec.kind = "null";
  spec.model = "SIM-NULL (returns its input; no parameters)";
  spec.serial = address.get("serial", "SIM-NULL-1");
  spec.firmware = "sim-1.0";
  spec.num_inputs = spec.num_outputs = n;
  spec.input_unit = spec.output_unit = "a.u.";
  // Any finite float passes: the limits are the float range the wire carries.
  spec.input_min = std::numeric_limits<float>::lowest();
  spec.input_max = std::numeric_limits<float>::max();
  spec.max_batch = 1 << 16;
  return std::make_unique<SimNull>(std::move(spec));
}

}  // namespace pnn::drivers::sim

// sim://null: a device that returns its input (y = x), with no parameters and no physics. It
// exists to measure what the layers around a device cost (RPC, recording, scheduling) with the
// device itself taking no time, e.g. the daemon's rpc-overhead benchmark.
#include "pnn/drivers/setups/null.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {
namespace {

class SimNull final : public PhysicalSystem {
 public:
  explicit SimNull(Datasheet datasheet)
      : PhysicalSystem(std::move(datasheet.spec)), twin_(std::move(datasheet.twin)) {}

  digital_twin::ModelPtr nominal_twin() const override { return twin_; }

 private:
  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef&) override { return Matrix(x); }

  digital_twin::ModelPtr twin_;
};

}  // namespace

PhysicalSystemPtr make_null(const DeviceAddress& address) {
  Datasheet ds = setups::null(address);
  ds.spec.model = "SIM-NULL (returns its input; no parameters)";
  if (ds.spec.serial.empty()) ds.spec.serial = "SIM-NULL-1";
  ds.spec.firmware = "sim-1.0";
  return std::make_unique<SimNull>(std::move(ds));
}

}  // namespace pnn::drivers::sim

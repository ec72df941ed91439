// sim:// resolution and the one factory: a simulated board is its kind's datasheet plus a
// reality behind the firmware emulator, driven over the in-process loopback by the same
// framed-board driver a real board gets; every other address goes to the instrument drivers.
#include "pnn/drivers/registry.hpp"

#include <atomic>
#include <cmath>
#include <stdexcept>

#include "faults.hpp"
#include "firmware_emulator.hpp"
#include "pnn/drivers/framed_device.hpp"
#include "pnn/drivers/sim_instrument.hpp"
#include "pnn/drivers/simulated.hpp"
#include "sim_kinds.hpp"

namespace pnn::drivers {
namespace {

// Options every simulated board takes, removed before its datasheet reads the others.
struct SimLinkOptions {
  std::string faults;
  FramedDeviceOptions driver;
  bool direct = false;
  double drift = 0.0;  // relative gain change of the readings per 1,000 samples run
};

// drift=R: the instrument's readings slowly change gain, by R per 1,000 samples it has run
// (y · (1 + R·n/1000), n counted since the instrument was created, across firmware resets and
// reconnects, as a thermal or ageing drift would be). For testing pnnd's drift monitor.
class DriftingReality final : public sim::Reality {
 public:
  DriftingReality(std::unique_ptr<sim::Reality> inner, double rate,
                  std::shared_ptr<std::atomic<std::uint64_t>> samples)
      : inner_(std::move(inner)), rate_(rate), samples_(std::move(samples)) {}
  Matrix run(const MatrixRef& x, const VectorRef& theta) override {
    const auto n = samples_->fetch_add(static_cast<std::uint64_t>(x.rows()));
    return inner_->run(x, theta) * (1.0 + rate_ * static_cast<double>(n) / 1000.0);
  }
  // Drift changes the readout gain of forward; node voltages of a settle are read unscaled.
  std::optional<Matrix> settle(const MatrixRef& x, const VectorRef& theta,
                               const digital_twin::SettleBoundary& boundary,
                               bool warm_start) override {
    return inner_->settle(x, theta, boundary, warm_start);
  }

 private:
  std::unique_ptr<sim::Reality> inner_;
  double rate_;
  std::shared_ptr<std::atomic<std::uint64_t>> samples_;
};

sim::RealityFactory with_drift(sim::RealityFactory make, double rate) {
  if (rate == 0.0) return make;
  auto samples = std::make_shared<std::atomic<std::uint64_t>>(0);
  return [make = std::move(make), rate, samples] {
    return std::make_unique<DriftingReality>(make(), rate, samples);
  };
}

SimLinkOptions take_link_options(DeviceAddress& address) {
  SimLinkOptions o;
  o.faults = address.get("faults", "");
  o.driver = take_framed_device_options(address);
  const std::string link = address.get("link", "frames");
  if (link != "frames" && link != "direct") {
    throw std::invalid_argument(address.text + ": link '" + link +
                                "' is not one of frames (default), direct");
  }
  o.direct = link == "direct";
  o.drift = address.get_double("drift", 0.0);
  if (!std::isfinite(o.drift) || std::abs(o.drift) > 1.0) {
    throw std::invalid_argument(address.text + ": drift must be a finite gain change per 1,000 "
                                "samples in [-1, 1] (e.g. drift=0.01)");
  }
  for (const char* key : {"faults", "link", "drift"}) address.query.erase(key);
  return o;
}

// link=direct: the reality called in-process with no wire protocol, for benchmarks that
// measure what the protocol costs. Not a path real hardware can take.
class DirectSimDevice final : public PhysicalSystem {
 public:
  explicit DirectSimDevice(sim::SimSetup setup)
      : PhysicalSystem(setup.spec), setup_(std::move(setup)) {}
  digital_twin::ModelPtr nominal_twin() const override { return setup_.twin; }

 private:
  Result<void> do_configure() override {
    reality_ = setup_.make_reality();
    return {};
  }
  Result<void> do_cleanup() override {
    reality_.reset();
    return {};
  }
  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    return reality_->run(x, theta);
  }
  Result<Matrix> do_settle(const MatrixRef& x, const VectorRef& theta,
                           const digital_twin::SettleBoundary& boundary, bool warm_start) override {
    auto nodes = reality_->settle(x, theta, boundary, warm_start);
    if (!nodes) {
      return make_error(Errc::kTimeout, spec().serial +
                                            ": the network did not settle within its "
                                            "settle time");
    }
    return std::move(*nodes);
  }
  sim::SimSetup setup_;
  std::unique_ptr<sim::Reality> reality_;
};

struct Board {
  sim::SimSetup setup;
  SimLinkOptions link;
};

const sim::SimKind& find_kind(const DeviceAddress& address) {
  if (address.scheme != "sim") {
    throw std::invalid_argument("device address '" + address.text + "' is not a sim:// address");
  }
  return sim::find_sim_kind(address);
}

Board board_setup(const sim::SimKind& kind, DeviceAddress address) {
  SimLinkOptions link = take_link_options(address);
  sim::SimSetup setup = kind.board(address);
  setup.make_reality = with_drift(std::move(setup.make_reality), link.drift);
  return Board{std::move(setup), std::move(link)};
}

std::shared_ptr<sim::FirmwareEmulator> make_emulator(const Board& b) {
  const auto plan = sim::FaultPlan::parse(b.link.faults, sim::serial_seed(b.setup.spec.serial));
  return std::make_shared<sim::FirmwareEmulator>(b.setup.spec, b.setup.make_reality, plan);
}

}  // namespace

SimulatedDevice make_simulated_device(const std::string& text) {
  const DeviceAddress address = DeviceAddress::parse(text);
  const sim::SimKind& kind = find_kind(address);
  if (!kind.board) return {kind.device(address), nullptr};
  Board board = board_setup(kind, address);
  if (board.link.direct) {
    if (!board.link.faults.empty()) {
      throw std::invalid_argument(text + ": faults= needs the frame link (drop link=direct)");
    }
    return {std::make_unique<DirectSimDevice>(std::move(board.setup)), nullptr};
  }
  auto firmware = make_emulator(board);
  auto driver = make_framed_device(board.setup.spec, board.setup.twin,
                                   firmware_iface::make_loopback_transport(firmware),
                                   board.link.driver);
  return {std::move(driver), std::move(firmware)};
}

std::shared_ptr<SimulatedFirmware> make_simulated_firmware(const std::string& text) {
  const DeviceAddress address = DeviceAddress::parse(text);
  const sim::SimKind& kind = find_kind(address);
  if (!kind.board) {
    throw std::invalid_argument(text + ": this simulated instrument does not speak the frame "
                                       "protocol (it has an instrument driver of its own)");
  }
  return make_emulator(board_setup(kind, address));
}

std::shared_ptr<firmware_iface::DeviceEndpoint> make_simulated_instrument(
    const std::string& sim_address) {
  const DeviceAddress address = DeviceAddress::parse(sim_address);
  if (address.scheme != "sim") {
    throw std::invalid_argument("'" + sim_address +
                                "' is not a simulated instrument (expected sim://KIND?…, e.g. "
                                "sim://electronic-circuit?seed=1&slots=32)");
  }
  const sim::SimKind& kind = sim::find_sim_kind(address);
  if (kind.instrument) return kind.instrument(address);
  // Every other setup is a lab-built board: its firmware emulator speaks the frame protocol.
  return make_simulated_firmware(sim_address);
}

PhysicalSystemPtr make_physical_system(const std::string& text) {
  const DeviceAddress address = DeviceAddress::parse(text);
  if (address.scheme == "sim") return make_simulated_device(text).driver;
  if (address.scheme == "usb" || address.scheme == "usbtmc" || address.scheme == "tcp") {
    return make_instrument_device(address);
  }
  throw std::invalid_argument("device address '" + text + "': scheme '" + address.scheme +
                              "' is not supported (supported: sim, usb, usbtmc, tcp)");
}

}  // namespace pnn::drivers

#include "pnn/drivers/registry.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>
#include <stdexcept>

#include "../sim/faults.hpp"
#include "../sim/firmware_emulator.hpp"
#include "../sim/sim_devices.hpp"
#include "pnn/drivers/framed_device.hpp"
#include "pnn/drivers/simulated.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "pnn/firmware_iface/usb_transport.hpp"
#include "scpi_circuit.hpp"

namespace pnn::drivers {

DeviceAddress DeviceAddress::parse(const std::string& text) {
  const auto form = " (expected SCHEME://TARGET?key=value&..., e.g. "
                    "sim://mechanical-oscillators?seed=3)";
  DeviceAddress a;
  a.text = text;
  const auto sep = text.find("://");
  if (sep == std::string::npos || sep == 0) {
    throw std::invalid_argument("device address '" + text + "' has no scheme" + form);
  }
  a.scheme = text.substr(0, sep);
  const std::string rest = text.substr(sep + 3);
  const auto q = rest.find('?');
  a.target = rest.substr(0, q);
  if (a.target.empty()) throw std::invalid_argument("device address '" + text + "' has no target" + form);
  if (q != std::string::npos) {
    std::string query = rest.substr(q + 1);
    std::size_t start = 0;
    while (start <= query.size()) {
      const auto amp = std::min(query.find('&', start), query.size());
      const std::string item = query.substr(start, amp - start);
      if (!item.empty()) {
        const auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0) {
          throw std::invalid_argument("device address '" + text + "': query item '" + item +
                                      "' is not key=value" + form);
        }
        a.query[item.substr(0, eq)] = item.substr(eq + 1);
      }
      start = amp + 1;
    }
  }
  return a;
}

std::string DeviceAddress::get(const std::string& key, const std::string& fallback) const {
  auto it = query.find(key);
  return it == query.end() ? fallback : it->second;
}

double DeviceAddress::get_double(const std::string& key, double fallback) const {
  auto it = query.find(key);
  if (it == query.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0' || errno != 0 || !std::isfinite(v)) {
    throw std::invalid_argument(text + ": " + key + "=" + it->second + " is not a finite number");
  }
  return v;
}

long long DeviceAddress::get_int(const std::string& key, long long fallback) const {
  auto it = query.find(key);
  if (it == query.end()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno != 0) {
    throw std::invalid_argument(text + ": " + key + "=" + it->second + " is not an integer");
  }
  return v;
}

void DeviceAddress::allow_only(const std::vector<std::string>& allowed) const {
  for (const auto& [key, value] : query) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string list;
      for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument(text + ": unknown option '" + key + "' (allowed: " + list + ")");
    }
  }
}

namespace {

// A simulated setup: a lab-built board (its reality behind the frame protocol, driven by the
// framed-board driver) or an instrument with a driver of its own.
struct SimEntry {
  SetupInfo info;
  std::function<sim::SimSetup(const DeviceAddress&)> board;
  std::function<PhysicalSystemPtr(const DeviceAddress&)> make = nullptr;
};

const std::vector<SimEntry>& sim_entries() {
  static const std::vector<SimEntry> entries = {
      {{"mechanical-oscillators", "coupled nonlinear oscillators (pendula / plate modes)",
        "sim://mechanical-oscillators?seed=1&n=64&gap=small"},
       sim::make_oscillators},
      {{"power-law", "toy device y = a·x^θ (the pat-toy benchmark)", "sim://power-law?prefactor=2"},
       sim::make_power_law},
      {{"optical-shg", "pulse shaper, chi(2) crystal (SHG) and spectrometer",
        "sim://optical-shg?seed=1&inputs=64&params=64&outputs=64&gap=large"},
       sim::make_optical_shg},
      {{"optical-spd", "optical matrix-vector product read by single-photon detectors",
        "sim://optical-spd?seed=1&inputs=64&outputs=100&photons=1"},
       sim::make_optical_spd},
      {{"stno-rnn", "spin-torque nano-oscillator recurrent network (sequences, 8 inputs per period)",
        "sim://stno-rnn?seed=1&neurons=64&steps=8&inputs=8"},
       sim::make_stno_rnn},
      {{"mtj-rf", "spin-diode MTJ synapse chains on an RF comb, STNO neurons",
        "sim://mtj-rf?seed=1&inputs=64&chains=64&offset_mhz=8"},
       sim::make_mtj_rf},
      {{"electronic-circuit", "series RLC circuit with a junction diode, drive time-multiplexed",
        "sim://electronic-circuit?seed=1&slots=32"},
       nullptr, make_scpi_circuit},
      {{"mechanical-plate", "speaker-driven plate (modal), drive time-multiplexed, microphone",
        "sim://mechanical-plate?seed=1&slots=32"},
       sim::make_speaker_plate},
      {{"null", "returns its input (y = x), no parameters: measures overheads", "sim://null?inputs=784"},
       nullptr, sim::make_null},
  };
  return entries;
}

const SimEntry& find_sim_entry(const DeviceAddress& address) {
  std::string kinds;
  for (const auto& e : sim_entries()) {
    if (e.info.kind == address.target) return e;
    kinds += (kinds.empty() ? "" : ", ") + e.info.kind;
  }
  throw std::invalid_argument("device address '" + address.text + "': no simulated setup '" +
                              address.target + "' (known: " + kinds + ")");
}

// Options every simulated instrument takes, removed before the setup reads its own.
struct SimLinkOptions {
  std::string faults;
  FramedDeviceOptions driver;
  bool direct = false;
};

SimLinkOptions take_link_options(DeviceAddress& address) {
  SimLinkOptions o;
  o.faults = address.get("faults", "");
  const long long timeout_ms = address.get_int("timeout_ms", o.driver.command_timeout.count());
  if (timeout_ms < 1 || timeout_ms > 600000) {
    throw std::invalid_argument(address.text + ": timeout_ms must be in 1..600000");
  }
  if (address.query.count("timeout_ms")) {
    // A run gets ten times the command timeout: it waits for the physics as well as the link.
    o.driver.command_timeout = std::chrono::milliseconds(timeout_ms);
    o.driver.run_timeout = o.driver.command_timeout * 10;
  }
  const long long retries = address.get_int("retries", o.driver.retries);
  if (retries < 0 || retries > 100) {
    throw std::invalid_argument(address.text + ": retries must be in 0..100");
  }
  o.driver.retries = static_cast<int>(retries);
  const std::string link = address.get("link", "frames");
  if (link != "frames" && link != "direct") {
    throw std::invalid_argument(address.text + ": link '" + link +
                                "' is not one of frames (default), direct");
  }
  o.direct = link == "direct";
  for (const char* key : {"faults", "timeout_ms", "retries", "link"}) address.query.erase(key);
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
  sim::SimSetup setup_;
  std::unique_ptr<sim::Reality> reality_;
};

struct Board {
  sim::SimSetup setup;
  SimLinkOptions link;
};

std::optional<Board> board_setup(const std::string& text, const SimEntry** entry_out = nullptr) {
  DeviceAddress address = DeviceAddress::parse(text);
  if (address.scheme != "sim") {
    throw std::invalid_argument("device address '" + text + "' is not a sim:// address");
  }
  const SimEntry& entry = find_sim_entry(address);
  if (entry_out) *entry_out = &entry;
  if (!entry.board) return std::nullopt;
  SimLinkOptions link = take_link_options(address);
  return Board{entry.board(address), std::move(link)};
}

std::shared_ptr<sim::FirmwareEmulator> make_emulator(const Board& b) {
  const auto plan = sim::FaultPlan::parse(b.link.faults, sim::serial_seed(b.setup.spec.serial));
  return std::make_shared<sim::FirmwareEmulator>(b.setup.spec, b.setup.make_reality, plan);
}

}  // namespace

std::vector<SetupInfo> known_setups() {
  std::vector<SetupInfo> out;
  for (const auto& e : sim_entries()) out.push_back(e.info);
  return out;
}

SimulatedDevice make_simulated_device(const std::string& text) {
  const SimEntry* entry = nullptr;
  auto board = board_setup(text, &entry);
  if (!board) return {entry->make(DeviceAddress::parse(text)), nullptr};
  if (board->link.direct) {
    if (!board->link.faults.empty()) {
      throw std::invalid_argument(text + ": faults= needs the frame link (drop link=direct)");
    }
    return {std::make_unique<DirectSimDevice>(std::move(board->setup)), nullptr};
  }
  auto firmware = make_emulator(*board);
  auto driver = make_framed_device(board->setup.spec, board->setup.twin,
                                   firmware_iface::make_loopback_transport(firmware),
                                   board->link.driver);
  return {std::move(driver), std::move(firmware)};
}

std::shared_ptr<SimulatedFirmware> make_simulated_firmware(const std::string& text) {
  auto board = board_setup(text);
  if (!board) {
    throw std::invalid_argument(text + ": this simulated instrument does not speak the frame "
                                       "protocol (it has an instrument driver of its own)");
  }
  return make_emulator(*board);
}

namespace {

std::string setup_kinds() {
  std::string kinds;
  for (const auto& e : sim_entries()) kinds += (kinds.empty() ? "" : ", ") + e.info.kind;
  return kinds;
}

// A real instrument (or a simulated one served by pnn-siminst): the link comes from the scheme,
// the driver and the datasheet (spec with units and limits, nominal twin) from kind=.
//   usb://VID:PID?serial=S&kind=K&...      a lab-built board, frame protocol over USB bulk
//   tcp://HOST:PORT?kind=K&...             a board's frame protocol over TCP, or for the
//                                          electronic circuit its SCPI instruments
//   usbtmc://VID:PID?serial=S&kind=electronic-circuit&...   SCPI instruments over USBTMC
PhysicalSystemPtr make_instrument_device(const DeviceAddress& address) {
  const std::string& text = address.text;
  const std::string kind = address.get("kind", "");
  if (kind.empty()) {
    throw std::invalid_argument("device address '" + text + "' needs kind=KIND, the setup the "
                                "instrument belongs to (one of " + setup_kinds() + ")");
  }
  const SimEntry* entry = nullptr;
  for (const auto& e : sim_entries()) {
    if (e.info.kind == kind) entry = &e;
  }
  if (!entry) {
    throw std::invalid_argument("device address '" + text + "': unknown kind '" + kind +
                                "' (known: " + setup_kinds() + ")");
  }
  const std::string serial = address.get("serial", "");
  auto usb_match = [&] {
    try {
      return firmware_iface::UsbDeviceMatch::parse(address.target, serial);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("device address '" + text + "': " + e.what());
    }
  };
  auto tcp = [&] {
    try {
      return firmware_iface::make_tcp_transport(firmware_iface::TcpOptions::parse(address.target));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("device address '" + text + "': " + e.what());
    }
  };
  if (!entry->board) {  // the electronic bench: SCPI instruments
    if (address.scheme == "tcp") return make_scpi_circuit(address);
    if (address.scheme == "usbtmc") {
      return make_scpi_circuit_over(address, firmware_iface::make_usbtmc_transport({.match = usb_match()}));
    }
    throw std::invalid_argument("device address '" + text + "': kind '" + kind +
                                "' is driven as SCPI instruments: use tcp://HOST:PORT or "
                                "usbtmc://VID:PID");
  }
  firmware_iface::TransportPtr transport;
  if (address.scheme == "usb") {
    transport = firmware_iface::make_usb_bulk_transport({.match = usb_match()});
  } else if (address.scheme == "tcp") {
    transport = tcp();
  } else {
    throw std::invalid_argument("device address '" + text + "': kind '" + kind +
                                "' is a lab-built board speaking the frame protocol: use "
                                "usb://VID:PID?serial=... or tcp://HOST:PORT");
  }
  DeviceAddress datasheet = address;
  datasheet.query.erase("kind");
  for (const char* key : {"faults", "link"}) {
    if (datasheet.query.count(key)) {
      throw std::invalid_argument("device address '" + text + "': '" + key +
                                  "' exists only for sim:// instruments");
    }
  }
  const SimLinkOptions link = take_link_options(datasheet);
  sim::SimSetup setup = entry->board(datasheet);  // the datasheet view; no reality is made
  if (!serial.empty()) setup.spec.serial = serial;
  // The datasheet gives units, sizes and limits; model and firmware are the board's own.
  setup.spec.model = "(read from the board when configured)";
  setup.spec.firmware = "unknown until configured";
  return make_framed_device(std::move(setup.spec), std::move(setup.twin), std::move(transport),
                            link.driver);
}

}  // namespace

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

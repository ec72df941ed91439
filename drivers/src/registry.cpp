#include "pnn/drivers/registry.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <stdexcept>

#include "../sim/sim_devices.hpp"

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
struct SimEntry {
  SetupInfo info;
  std::function<PhysicalSystemPtr(const DeviceAddress&)> make;
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
       sim::make_electronic_circuit},
      {{"mechanical-plate", "speaker-driven plate (modal), drive time-multiplexed, microphone",
        "sim://mechanical-plate?seed=1&slots=32"},
       sim::make_speaker_plate},
  };
  return entries;
}
}  // namespace

std::vector<SetupInfo> known_setups() {
  std::vector<SetupInfo> out;
  for (const auto& e : sim_entries()) out.push_back(e.info);
  return out;
}

PhysicalSystemPtr make_physical_system(const std::string& text) {
  const DeviceAddress address = DeviceAddress::parse(text);
  if (address.scheme != "sim") {
    throw std::invalid_argument("device address '" + text + "': scheme '" + address.scheme +
                                "' is not supported by this build (supported: sim)");
  }
  std::string kinds;
  for (const auto& e : sim_entries()) {
    if (e.info.kind == address.target) return e.make(address);
    kinds += (kinds.empty() ? "" : ", ") + e.info.kind;
  }
  throw std::invalid_argument("device address '" + text + "': no simulated setup '" +
                              address.target + "' (known: " + kinds + ")");
}

}  // namespace pnn::drivers

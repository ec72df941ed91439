#pragma once
/// Device addresses and the one factory that names concrete drivers (docs/config.md,
/// "Device addresses").
///
///   sim://mechanical-oscillators?seed=3&n=64&gap=large       simulated board (frame protocol)
///   sim://electronic-circuit?seed=1&slots=32                 simulated SCPI instruments
///   usb://1209:0001?serial=B7&kind=mechanical-oscillators&n=64   a real board over USB bulk
///   tcp://10.0.0.5:5025?kind=electronic-circuit&slots=32     SCPI instruments on the LAN
///   usbtmc://0957:1755?serial=MY1&kind=electronic-circuit    SCPI instruments over USBTMC
#include <map>
#include <string>
#include <vector>

#include "pnn/drivers/physical_system.hpp"

namespace pnn::drivers {

struct DeviceAddress {
  std::string text;    ///< as written
  std::string scheme;  ///< "sim" (later also usb, usbtmc, tcp)
  std::string target;  ///< setup kind for sim://, host:port or VID:PID otherwise
  std::map<std::string, std::string> query;

  /// Throws std::invalid_argument naming the address and the expected form.
  static DeviceAddress parse(const std::string& text);

  /// Query helpers: throw std::invalid_argument naming the key, the value and the fix.
  std::string get(const std::string& key, const std::string& fallback) const;
  double get_double(const std::string& key, double fallback) const;
  long long get_int(const std::string& key, long long fallback) const;
  /// Throws if the query has a key outside `allowed`, listing the allowed keys.
  void allow_only(const std::vector<std::string>& allowed) const;
};

/// One entry per setup kind a `sim://` address can name, for help texts and `describe`.
struct SetupInfo {
  std::string kind;
  std::string summary;
  std::string example_address;
};
std::vector<SetupInfo> known_setups();

/// Creates the driver for `address` (UNCONFIGURED). Throws std::invalid_argument on an unknown
/// scheme or kind, or bad query values, naming the fix.
PhysicalSystemPtr make_physical_system(const std::string& address);

}  // namespace pnn::drivers

#pragma once
/// Device addresses (docs/config.md, "Device addresses"): `SCHEME://TARGET?key=value&...`.
///
///   sim://mechanical-oscillators?seed=3&n=64&gap=large       simulated board (frame protocol)
///   sim://electronic-circuit?seed=1&slots=32                 simulated SCPI instruments
///   usb://1209:0001?serial=B7&kind=mechanical-oscillators&n=64   a real board over USB bulk
///   tcp://10.0.0.5:5025?kind=electronic-circuit&slots=32     SCPI instruments on the LAN
///   usbtmc://0957:1755?serial=MY1&kind=electronic-circuit    SCPI instruments over USBTMC
///
/// Errors are bad configuration (HOUSE_STYLE.md, "Errors"): every function here throws
/// std::invalid_argument with a message that names the address, the key and the fix.
#include <map>
#include <string>
#include <vector>

namespace pnn::drivers {

struct DeviceAddress {
  std::string text;    ///< as written
  std::string scheme;  ///< "sim", "usb", "usbtmc" or "tcp" (checked by the factories)
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

/// An integer address option within [lo, hi]; throws std::invalid_argument naming the option,
/// its value, what it counts (`what`, may be empty) and the allowed range:
/// "ADDRESS: n = 0 oscillators is outside 1..1024".
long long int_in_range(const DeviceAddress& address, const std::string& key, long long fallback,
                       long long lo, long long hi, const std::string& what);

/// A real address option within [lo, hi]; throws like int_in_range.
double double_in_range(const DeviceAddress& address, const std::string& key, double fallback,
                       double lo, double hi);

}  // namespace pnn::drivers

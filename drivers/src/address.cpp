#include "pnn/drivers/address.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "pnn/drivers/format.hpp"

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

long long int_in_range(const DeviceAddress& address, const std::string& key, long long fallback,
                       long long lo, long long hi, const std::string& what) {
  const long long v = address.get_int(key, fallback);
  if (v < lo || v > hi) {
    throw std::invalid_argument(address.text + ": " + key + " = " + std::to_string(v) +
                                (what.empty() ? "" : " " + what) + " is outside " +
                                std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

double double_in_range(const DeviceAddress& address, const std::string& key, double fallback,
                       double lo, double hi) {
  const double v = address.get_double(key, fallback);
  if (!(v >= lo && v <= hi)) {
    throw std::invalid_argument(address.text + ": " + key + " = " + format_shortest(v) +
                                " is outside [" + format_shortest(lo) + ", " +
                                format_shortest(hi) + "]");
  }
  return v;
}

}  // namespace pnn::drivers

#include "faults.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

namespace pnn::drivers::sim {
namespace {

constexpr const char* kAllowed =
    "drop, corrupt, delay_ms, stall, stall_after, stall_ms, nan, reset, reset_after, unplug, unplug_after, "
    "unplug_ms, truncate, seed";

double number(const std::string& item, const std::string& value) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || errno != 0 || !std::isfinite(v) || v < 0.0) {
    throw std::invalid_argument("faults item '" + item + "': '" + value +
                                "' is not a finite number ≥ 0");
  }
  return v;
}

double probability(const std::string& item, const std::string& value) {
  const double p = number(item, value);
  if (p > 1.0) throw std::invalid_argument("faults item '" + item + "': a probability is ≤ 1");
  return p;
}

long long count(const std::string& item, const std::string& value) {
  const double v = number(item, value);
  if (v != std::floor(v) || v > 1e15) {
    throw std::invalid_argument("faults item '" + item + "': '" + value + "' is not a count");
  }
  return static_cast<long long>(v);
}

std::chrono::milliseconds millis(const std::string& item, const std::string& value) {
  return std::chrono::milliseconds(count(item, value));
}

}  // namespace

bool FaultPlan::any() const {
  return drop > 0 || corrupt > 0 || delay.count() > 0 || stall > 0 || stall_after > 0 || nan > 0 ||
         reset > 0 ||
         reset_after > 0 || unplug > 0 || unplug_after > 0 || truncate > 0;
}

FaultPlan FaultPlan::parse(const std::string& text, std::uint64_t default_seed) {
  FaultPlan plan;
  plan.seed = default_seed ^ 0x5EEDFA17u;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const std::size_t colon = item.find(':');
    if (colon == std::string::npos) {
      throw std::invalid_argument("faults item '" + item + "' is not key:value (keys: " +
                                  kAllowed + ")");
    }
    const std::string key = item.substr(0, colon), value = item.substr(colon + 1);
    if (key == "drop") {
      plan.drop = probability(item, value);
    } else if (key == "corrupt") {
      plan.corrupt = probability(item, value);
    } else if (key == "delay_ms") {
      plan.delay = millis(item, value);
    } else if (key == "stall") {
      plan.stall = probability(item, value);
    } else if (key == "stall_after") {
      plan.stall_after = count(item, value);
    } else if (key == "stall_ms") {
      plan.stall_duration = millis(item, value);
    } else if (key == "nan") {
      plan.nan = probability(item, value);
    } else if (key == "reset") {
      plan.reset = probability(item, value);
    } else if (key == "reset_after") {
      plan.reset_after = count(item, value);
    } else if (key == "unplug") {
      plan.unplug = probability(item, value);
    } else if (key == "unplug_after") {
      plan.unplug_after = count(item, value);
    } else if (key == "unplug_ms") {
      plan.unplug_duration = millis(item, value);
    } else if (key == "truncate") {
      plan.truncate = probability(item, value);
    } else if (key == "seed") {
      plan.seed = static_cast<std::uint64_t>(count(item, value));
    } else {
      throw std::invalid_argument("faults item '" + item + "': unknown key '" + key +
                                  "' (keys: " + kAllowed + ")");
    }
  }
  return plan;
}

FaultInjector::FaultInjector(FaultPlan plan) : plan_(plan), rng_(plan.seed) {}

bool FaultInjector::chance(double p) {
  if (p <= 0.0) return false;
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p;
}

FaultInjector::Decision FaultInjector::on_command(FaultClock::time_point now) {
  std::lock_guard lock(mutex_);
  Decision d;
  d.ready_at = now;
  const auto n = ++stats_.commands;
  if (!plan_.any()) return d;
  if (now < stalled_until_) {
    d.drop = d.lost = true;
    ++stats_.dropped;
    return d;
  }
  const bool unplug = (plan_.unplug_after > 0 && static_cast<long long>(n) == plan_.unplug_after) ||
                      chance(plan_.unplug);
  if (unplug) {
    unplugged_until_ = now + plan_.unplug_duration;
    ++stats_.unplugs;
    ++stats_.resets;  // it comes back power-cycled
    d.drop = d.lost = true;
    d.reset = true;
    return d;
  }
  if ((plan_.stall_after > 0 && static_cast<long long>(n) == plan_.stall_after) ||
      chance(plan_.stall)) {
    stalled_until_ = now + plan_.stall_duration;
    ++stats_.stalls;
    ++stats_.dropped;
    d.drop = d.lost = true;
    return d;
  }
  if ((plan_.reset_after > 0 && static_cast<long long>(n) == plan_.reset_after) ||
      chance(plan_.reset)) {
    d.reset = true;
    ++stats_.resets;
  }
  if (chance(plan_.drop)) {
    d.drop = true;
    ++stats_.dropped;
    return d;
  }
  if (chance(plan_.corrupt)) {
    d.corrupt = true;
    ++stats_.corrupted;
  }
  if (chance(plan_.nan)) d.nan = true;  // counted when a reply actually carries the NaN
  if (plan_.delay.count() > 0) {
    d.ready_at = now + plan_.delay;
    ++stats_.delayed;
  }
  return d;
}

bool FaultInjector::connected(FaultClock::time_point now) {
  std::lock_guard lock(mutex_);
  return now >= unplugged_until_;
}

bool FaultInjector::truncate_reply(std::vector<std::uint8_t>& bytes) {
  if (plan_.truncate <= 0.0 || bytes.size() < 2) return false;
  std::lock_guard lock(mutex_);
  if (!chance(plan_.truncate)) return false;
  // The chip stops somewhere in the event lists: at least the header goes out, never the trailer.
  const std::size_t keep =
      std::uniform_int_distribution<std::size_t>(1, bytes.size() - 1)(rng_);
  bytes.resize(keep);
  ++stats_.truncated;
  return true;
}

void FaultInjector::corrupt_reply(std::vector<std::uint8_t>& bytes) {
  if (bytes.empty()) return;
  std::lock_guard lock(mutex_);
  const std::size_t i = std::uniform_int_distribution<std::size_t>(0, bytes.size() - 1)(rng_);
  const int bit = std::uniform_int_distribution<int>(0, 7)(rng_);
  bytes[i] ^= static_cast<std::uint8_t>(1u << bit);
}

std::size_t FaultInjector::pick(std::size_t n) {
  std::lock_guard lock(mutex_);
  ++stats_.nans;
  return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
}

FaultStats FaultInjector::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::uint64_t serial_seed(const std::string& serial) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : serial) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace pnn::drivers::sim

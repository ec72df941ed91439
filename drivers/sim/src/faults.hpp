#pragma once
/// Fault injection for simulated instruments, configured by the `faults=` query of a device
/// address (docs/config.md, "Fault injection"):
///
///   sim://mechanical-oscillators?seed=1&faults=drop:0.01,corrupt:0.01,delay_ms:2
///
/// Items (comma-separated key:value; all default to off):
///   drop:P          each reply is lost with probability P (the host times out)
///   corrupt:P       each reply has one byte flipped with probability P
///   delay_ms:T      every reply arrives T ms late (beyond the host's timeout: a timeout)
///   stall:P         with probability P per command the device stops answering for stall_ms
///   stall_after:N   the device stops answering on the N-th command, for stall_ms
///   stall_ms:T      length of a stall (default 1000)
///   nan:P           each batch of readings contains a NaN with probability P
///   reset:P         with probability P per command the firmware resets (loses θ and batch)
///   reset_after:N   the firmware resets once, on the N-th command
///   unplug:P        with probability P per command the device disconnects for unplug_ms
///   unplug_after:N  the device disconnects once, on the N-th command
///   unplug_ms:T     how long it stays away (default 300), then re-enumerates (power-cycled)
///   truncate:P      each spike_run reply stops mid-batch with probability P: the chip sends part
///                   of the frame and then nothing (the host times out; nothing is half-returned)
///   seed:S          the injector's own random stream (default: from the device seed)
/// Decisions are drawn from a seeded stream, so a fault scenario replays exactly.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers::sim {

using FaultClock = firmware_iface::Clock;

struct FaultPlan {
  double drop = 0.0;
  double corrupt = 0.0;
  std::chrono::milliseconds delay{0};
  double stall = 0.0;
  long long stall_after = 0;  ///< 0: never
  std::chrono::milliseconds stall_duration{1000};
  double nan = 0.0;
  double reset = 0.0;
  long long reset_after = 0;  ///< 0: never
  double unplug = 0.0;
  long long unplug_after = 0;  ///< 0: never
  std::chrono::milliseconds unplug_duration{300};
  double truncate = 0.0;
  std::uint64_t seed = 0;
  bool any() const;

  /// Parses the value of a `faults=` query item. Throws std::invalid_argument naming the item
  /// and the allowed keys. `default_seed` seeds the stream unless the text has seed:S.
  static FaultPlan parse(const std::string& text, std::uint64_t default_seed);
};

/// What was injected so far (for tests: a fault scenario must actually have happened).
struct FaultStats {
  std::uint64_t commands = 0;
  std::uint64_t dropped = 0;
  std::uint64_t corrupted = 0;
  std::uint64_t delayed = 0;
  std::uint64_t stalls = 0;
  std::uint64_t nans = 0;
  std::uint64_t resets = 0;
  std::uint64_t unplugs = 0;
  std::uint64_t truncated = 0;
};

/// Draws the faults of one simulated device. Thread-safe (stats may be read from any thread).
class FaultInjector {
 public:
  explicit FaultInjector(FaultPlan plan = {});

  /// What happens to the reply of one command received at `now`.
  struct Decision {
    bool drop = false;     ///< send nothing
    bool lost = false;     ///< the command never executes (the device stalled or went away)
    bool corrupt = false;  ///< flip one byte of the reply (corrupt_reply)
    bool nan = false;      ///< put a NaN into the readings, if the reply carries any
    bool reset = false;    ///< the firmware resets before executing the command (state lost)
    FaultClock::time_point ready_at;  ///< when the reply reaches the host
  };
  /// Call once per command. While stalled, or when the command triggers an unplug, the reply is
  /// dropped; an unplug also resets the firmware (it comes back power-cycled).
  Decision on_command(FaultClock::time_point now);
  /// False during an unplug window.
  bool connected(FaultClock::time_point now);
  /// With probability plan().truncate, cuts `bytes` (one encoded spike_run reply) to a strict,
  /// non-empty prefix and returns true. Draws from the stream only when truncate > 0, so other
  /// fault scenarios replay unchanged.
  bool truncate_reply(std::vector<std::uint8_t>& bytes);
  /// Flips one byte (chosen from the seeded stream) of `bytes`.
  void corrupt_reply(std::vector<std::uint8_t>& bytes);
  /// Index in [0, n) for placing an injected NaN.
  std::size_t pick(std::size_t n);

  FaultStats stats() const;
  const FaultPlan& plan() const { return plan_; }

 private:
  bool chance(double p);  // with mutex_ held

  FaultPlan plan_;
  mutable std::mutex mutex_;
  std::mt19937_64 rng_;
  FaultStats stats_;
  FaultClock::time_point stalled_until_{};
  FaultClock::time_point unplugged_until_{};
};

/// FNV-1a of a device serial: the seed of a simulated device, so one serial is one device.
std::uint64_t serial_seed(const std::string& serial);

}  // namespace pnn::drivers::sim

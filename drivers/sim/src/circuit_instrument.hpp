#pragma once
/// The simulated bench of the electronic setup (PHYSICS.md "Electronic"): an arbitrary-waveform
/// generator (Keysight 33500-style source subsystem) drives the RLC-junction circuit, a digitizer
/// (scope-style ACQuire/WAVeform subsystems) samples the capacitor voltage; both behind one
/// scpi-raw socket, as in combined AWG + scope instruments. The circuit itself is the reality
/// simulator (circuit_reality.hpp). Command set, units and errors: docs/protocol.md, "SCPI
/// instruments". Private to drivers_sim.
///
/// AWG: 16-bit DAC, codes −32767 … +32767 for −10 … +10 V (volts = code · 10 / 32767; float32
/// uploads are normalized to ±1 and rounded to the nearest code). Waveforms live in volatile
/// memory by name (4 Mi points in total). With the voltage limits on, an upload or an INIT whose
/// waveform leaves [LOW, HIGH] is refused with -222 "Data out of range" and counted. OUTPut OFF
/// (the power-on and *RST state) opens the output relay: the circuit sees 0 V.
/// Digitizer: 1 MS/s at most, 14-bit over ±5 V, segmented acquisition: INIT arms, the trigger
/// (*TRG with TRIGger:SOURce BUS, at once with IMMediate) plays the selected waveform as
/// ACQuire:SEGMented:COUNt equal segments, one circuit run each, and records every segment.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "circuit_reality.hpp"
#include "pnn/drivers/address.hpp"
#include "scpi_instrument.hpp"

namespace pnn::drivers::sim {

struct CircuitInstrumentConfig {
  std::string serial = "SIM-RLC-1";
  CircuitRealityConfig reality;
  FaultPlan faults;
};

class CircuitInstrument final : public ScpiInstrument {
 public:
  static constexpr const char* kManufacturer = "PNN-HIL";
  static constexpr const char* kModel = "AWGDIG-100";
  static constexpr const char* kFirmware = "1.0-sim";
  static constexpr int kDacMaxCode = 32767;
  static constexpr double kFullScaleV = 10.0;
  static constexpr std::size_t kMemoryPoints = std::size_t{1} << 22;  // AWG and digitizer each
  static constexpr double kMaxRateSps = 1e6;
  /// Volts of a DAC code (exactly as the instrument computes them when checking limits).
  static double dac_volts(int code) { return code * kFullScaleV / kDacMaxCode; }

  explicit CircuitInstrument(CircuitInstrumentConfig config);

  /// A snapshot of the instrument's state, for tests (thread-safe).
  struct Status {
    bool output_on = false;
    bool limits_on = false;
    double limit_low_v = 0.0;
    double limit_high_v = 0.0;
    std::uint64_t acquisitions = 0;  ///< triggered acquisitions
    std::uint64_t runs = 0;          ///< circuit runs (segments) so far
    std::uint64_t out_of_range = 0;  ///< uploads and INITs refused for out-of-range volts
    std::size_t stored_points = 0;   ///< points in the AWG's volatile memory
  };
  Status status() const;

 private:
  enum class ByteOrder { kNormal, kSwapped };
  enum class TriggerSource { kBus, kImmediate };
  enum class TraceFormat { kWord, kReal };

  bool execute(const scpi::Command& command, Context& context) override;
  void trigger() override;
  void reset_settings() override;
  void clear_volatile_memory() override;

  void upload(const scpi::Command& command, bool dac_codes);
  void initiate();
  void acquire();
  void send_trace(Context& context);
  /// Checks a waveform against the limits; reports -222 and counts it when outside.
  bool within_limits(const std::vector<std::int16_t>& codes);
  /// Settings that make an acquisition impossible (-221), or "" when it can run.
  std::string acquisition_conflict() const;
  std::size_t samples_per_point() const;

  CircuitReality reality_;
  // Settings (*RST defaults in reset_settings).
  ByteOrder byte_order_ = ByteOrder::kNormal;
  double awg_rate_sps_ = 1e6;
  double scope_rate_sps_ = 1e6;
  double limit_low_v_ = -kFullScaleV;
  double limit_high_v_ = kFullScaleV;
  bool limits_on_ = false;
  bool output_on_ = false;
  TriggerSource trigger_source_ = TriggerSource::kImmediate;
  TraceFormat format_ = TraceFormat::kWord;
  long long segments_ = 1;
  // Data.
  std::map<std::string, std::vector<std::int16_t>> waveforms_;
  std::string selected_;
  bool armed_ = false;
  Matrix trace_;  ///< segments × samples, volts; empty when there is no valid acquisition
  // Counters.
  std::uint64_t acquisitions_ = 0;
  std::uint64_t runs_ = 0;
  std::uint64_t out_of_range_ = 0;
};

/// The instrument for `sim://electronic-circuit?seed=S[&serial=…][&tolerance=…][&faults=…]`
/// (other query keys are the driver's and are ignored here). The serial defaults to
/// SIM-RLC-<seed> and seeds the hidden components. Throws std::invalid_argument on bad values.
std::shared_ptr<CircuitInstrument> make_circuit_instrument(const DeviceAddress& address);

}  // namespace pnn::drivers::sim

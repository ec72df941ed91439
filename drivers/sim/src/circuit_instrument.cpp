#include "circuit_instrument.hpp"

#include <bit>
#include <cctype>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "pnn/drivers/format.hpp"
#include "pnn/drivers/scpi_circuit.hpp"
#include "sim_devices.hpp"

namespace pnn::drivers::sim {
namespace {

using Kind = scpi::Argument::Kind;

bool matches(std::string_view pattern, const scpi::Command& command) {
  return scpi::header_matches(pattern, command);
}

// Waveform names: a letter, then up to 11 letters, digits or '_'; case-insensitive.
std::optional<std::string> waveform_name(const scpi::Argument& arg) {
  if (arg.kind != Kind::kCharacter && arg.kind != Kind::kString) return std::nullopt;
  const std::string& t = arg.text;
  if (t.empty() || t.size() > 12 || !std::isalpha(static_cast<unsigned char>(t[0]))) {
    return std::nullopt;
  }
  std::string upper;
  for (const char c : t) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return std::nullopt;
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  return upper;
}

template <class U>
U read_unsigned(const char* p, bool big_endian) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    const auto byte =
        static_cast<U>(static_cast<unsigned char>(p[big_endian ? i : sizeof(U) - 1 - i]));
    v = static_cast<U>((v << 8) | byte);
  }
  return v;
}

template <class U>
void write_unsigned(std::vector<std::uint8_t>& out, U v, bool big_endian) {
  for (std::size_t i = 0; i < sizeof(U); ++i) {
    const std::size_t shift = 8 * (big_endian ? sizeof(U) - 1 - i : i);
    out.push_back(static_cast<std::uint8_t>((v >> shift) & 0xFF));
  }
}

}  // namespace

CircuitInstrument::CircuitInstrument(CircuitInstrumentConfig config)
    : ScpiInstrument(Options{
          .identity = {kManufacturer, kModel, config.serial, kFirmware},
          .faults = config.faults,
          // The largest upload: the whole memory as float32, plus header and name.
          .max_message_bytes = kMemoryPoints * 4 + 4096,
      }),
      reality_(config.reality) {}

CircuitInstrument::Status CircuitInstrument::status() const {
  std::lock_guard lock(mutex_);
  Status s;
  s.output_on = output_on_;
  s.limits_on = limits_on_;
  s.limit_low_v = limit_low_v_;
  s.limit_high_v = limit_high_v_;
  s.acquisitions = acquisitions_;
  s.runs = runs_;
  s.out_of_range = out_of_range_;
  for (const auto& [name, codes] : waveforms_) s.stored_points += codes.size();
  return s;
}

void CircuitInstrument::reset_settings() {
  byte_order_ = ByteOrder::kNormal;
  awg_rate_sps_ = scope_rate_sps_ = kMaxRateSps;
  limit_low_v_ = -kFullScaleV;
  limit_high_v_ = kFullScaleV;
  limits_on_ = false;
  output_on_ = false;
  trigger_source_ = TriggerSource::kImmediate;
  format_ = TraceFormat::kWord;
  segments_ = 1;
  armed_ = false;
  trace_.resize(0, 0);
}

void CircuitInstrument::clear_volatile_memory() {
  waveforms_.clear();
  selected_.clear();
}

bool CircuitInstrument::execute(const scpi::Command& c, Context& context) {
  const auto on_off = [](bool b) { return std::string(b ? "1" : "0"); };
  // --- format --------------------------------------------------------------------------------
  if (matches("FORMat:BORDer", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto i = choice_arg(c.args[0], {"NORMal", "SWAPped"})) {
      byte_order_ = *i == 0 ? ByteOrder::kNormal : ByteOrder::kSwapped;
    }
  } else if (matches("FORMat:BORDer?", c)) {
    if (expect_args(c, 0)) context.respond(byte_order_ == ByteOrder::kNormal ? "NORM" : "SWAP");
    // --- AWG ---------------------------------------------------------------------------------
  } else if (matches("[SOURce:]FUNCtion", c)) {
    if (expect_args(c, 1)) (void)choice_arg(c.args[0], {"ARBitrary"});
  } else if (matches("[SOURce:]FUNCtion?", c)) {
    if (expect_args(c, 0)) context.respond("ARB");
  } else if (matches("[SOURce:]FUNCtion:ARBitrary", c)) {
    if (!expect_args(c, 1)) return true;
    const auto name = waveform_name(c.args[0]);
    if (!name || waveforms_.count(*name) == 0) {
      error(-224, "Illegal parameter value; no waveform of that name in volatile memory");
      return true;
    }
    selected_ = *name;
    armed_ = false;
  } else if (matches("[SOURce:]FUNCtion:ARBitrary?", c)) {
    if (expect_args(c, 0)) context.respond(scpi::quote(selected_));
  } else if (matches("[SOURce:]FUNCtion:ARBitrary:SRATe", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto v = number_arg(c.args[0], 1.0, kMaxRateSps)) awg_rate_sps_ = *v;
  } else if (matches("[SOURce:]FUNCtion:ARBitrary:SRATe?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(awg_rate_sps_));
  } else if (matches("[SOURce:]DATA:ARBitrary:DAC", c)) {
    upload(c, true);
  } else if (matches("[SOURce:]DATA:ARBitrary", c)) {
    upload(c, false);
  } else if (matches("[SOURce:]DATA:VOLatile:CLEar", c)) {
    if (!expect_args(c, 0)) return true;
    clear_volatile_memory();
    armed_ = false;
  } else if (matches("[SOURce:]DATA:VOLatile:CATalog?", c)) {
    if (!expect_args(c, 0)) return true;
    std::string list;
    for (const auto& [name, codes] : waveforms_) {
      if (!list.empty()) list += ',';
      list += scpi::quote(name);
    }
    context.respond(list.empty() ? scpi::quote("") : list);
  } else if (matches("[SOURce:]DATA:VOLatile:FREE?", c)) {
    if (!expect_args(c, 0)) return true;
    std::size_t used = 0;
    for (const auto& [name, codes] : waveforms_) used += codes.size();
    context.respond(std::to_string(kMemoryPoints - used));
  } else if (matches("[SOURce:]VOLTage:LIMit:HIGH", c) ||
             matches("[SOURce:]VOLTage:LIMit:LOW", c)) {
    if (!expect_args(c, 1)) return true;
    const bool high = matches("[SOURce:]VOLTage:LIMit:HIGH", c);
    const auto v = number_arg(c.args[0], -kFullScaleV, kFullScaleV);
    if (!v) return true;
    if ((high && *v < limit_low_v_) || (!high && *v > limit_high_v_)) {
      error(-221, "Settings conflict; the high voltage limit must not be below the low limit");
      return true;
    }
    (high ? limit_high_v_ : limit_low_v_) = *v;
  } else if (matches("[SOURce:]VOLTage:LIMit:HIGH?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(limit_high_v_));
  } else if (matches("[SOURce:]VOLTage:LIMit:LOW?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(limit_low_v_));
  } else if (matches("[SOURce:]VOLTage:LIMit:STATe", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto b = bool_arg(c.args[0])) limits_on_ = *b;
  } else if (matches("[SOURce:]VOLTage:LIMit:STATe?", c)) {
    if (expect_args(c, 0)) context.respond(on_off(limits_on_));
  } else if (matches("OUTPut[:STATe]", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto b = bool_arg(c.args[0])) output_on_ = *b;
  } else if (matches("OUTPut[:STATe]?", c)) {
    if (expect_args(c, 0)) context.respond(on_off(output_on_));
    // --- trigger and acquisition --------------------------------------------------------------
  } else if (matches("TRIGger[:SEQuence]:SOURce", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto i = choice_arg(c.args[0], {"BUS", "IMMediate"})) {
      trigger_source_ = *i == 0 ? TriggerSource::kBus : TriggerSource::kImmediate;
    }
  } else if (matches("TRIGger[:SEQuence]:SOURce?", c)) {
    if (expect_args(c, 0)) {
      context.respond(trigger_source_ == TriggerSource::kBus ? "BUS" : "IMM");
    }
  } else if (matches("INITiate[:IMMediate]", c)) {
    if (expect_args(c, 0)) initiate();
  } else if (matches("ABORt", c)) {
    if (expect_args(c, 0)) armed_ = false;
  } else if (matches("ACQuire:SRATe", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto v = number_arg(c.args[0], 1.0, kMaxRateSps)) scope_rate_sps_ = *v;
  } else if (matches("ACQuire:SRATe?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(scope_rate_sps_));
  } else if (matches("ACQuire:SEGMented:COUNt", c)) {
    if (!expect_args(c, 1)) return true;
    const auto v = number_arg(c.args[0], 1.0, 65536.0);
    if (!v) return true;
    if (*v != std::floor(*v)) {
      error(-224, "Illegal parameter value; the segment count is an integer");
      return true;
    }
    segments_ = static_cast<long long>(*v);
  } else if (matches("ACQuire:SEGMented:COUNt?", c)) {
    if (expect_args(c, 0)) context.respond(std::to_string(segments_));
  } else if (matches("ACQuire:POINts?", c)) {
    if (!expect_args(c, 0)) return true;
    const auto it = waveforms_.find(selected_);
    const std::size_t points = it == waveforms_.end() ? 0 : it->second.size();
    const std::size_t per_segment =
        points % static_cast<std::size_t>(segments_) == 0
            ? points / static_cast<std::size_t>(segments_) * samples_per_point()
            : 0;
    context.respond(std::to_string(per_segment));
  } else if (matches("WAVeform:FORMat", c)) {
    if (!expect_args(c, 1)) return true;
    if (const auto i = choice_arg(c.args[0], {"WORD", "REAL"})) {
      format_ = *i == 0 ? TraceFormat::kWord : TraceFormat::kReal;
    }
  } else if (matches("WAVeform:FORMat?", c)) {
    if (expect_args(c, 0)) context.respond(format_ == TraceFormat::kWord ? "WORD" : "REAL");
  } else if (matches("WAVeform:DATA?", c)) {
    if (expect_args(c, 0)) send_trace(context);
  } else if (matches("WAVeform:POINts?", c)) {
    if (expect_args(c, 0)) context.respond(std::to_string(trace_.size()));
  } else if (matches("WAVeform:YINCrement?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(reality_.adc_step_v()));
  } else if (matches("WAVeform:YORigin?", c)) {
    if (expect_args(c, 0)) context.respond(format_number(reality_.adc_origin_v()));
  } else {
    return false;
  }
  return true;
}

void CircuitInstrument::upload(const scpi::Command& c, bool dac_codes) {
  if (!expect_args(c, 2)) return;
  const auto name = waveform_name(c.args[0]);
  if (!name) {
    error(-224,
          "Illegal parameter value; a waveform name is a letter and up to 11 letters, "
          "digits or '_'");
    return;
  }
  if (c.args[1].kind != Kind::kBlock) {
    error(-104, "Data type error; the waveform is a definite-length block #<n><length><data>");
    return;
  }
  const std::string& data = c.args[1].text;
  const std::size_t width = dac_codes ? 2 : 4;
  if (data.empty() || data.size() % width != 0) {
    error(-161, "Invalid block data; the length must be a nonzero multiple of " +
                    std::to_string(width) + " bytes");
    return;
  }
  const bool big_endian = byte_order_ == ByteOrder::kNormal;
  const std::size_t n = data.size() / width;
  std::vector<std::int16_t> codes(n);
  bool in_range = true;
  for (std::size_t i = 0; i < n && in_range; ++i) {
    const char* p = data.data() + i * width;
    if (dac_codes) {
      const auto code = static_cast<std::int16_t>(read_unsigned<std::uint16_t>(p, big_endian));
      in_range = code >= -kDacMaxCode;
      codes[i] = code;
    } else {
      const float f = std::bit_cast<float>(read_unsigned<std::uint32_t>(p, big_endian));
      in_range = f >= -1.0f && f <= 1.0f;  // false for NaN too
      if (in_range) codes[i] = static_cast<std::int16_t>(std::lround(f * kDacMaxCode));
    }
  }
  if (!in_range) {
    ++out_of_range_;
    error(-222, dac_codes ? "Data out of range; DAC codes are -32767 to +32767"
                          : "Data out of range; normalized values are -1 to +1");
    return;
  }
  if (!within_limits(codes)) return;
  std::size_t others = 0;
  for (const auto& [stored, w] : waveforms_) others += stored == *name ? 0 : w.size();
  if (others + n > kMemoryPoints) {
    error(-225, "Out of memory; " + std::to_string(kMemoryPoints - others) +
                    " points free (SOURce:DATA:VOLatile:CLEar frees them)");
    return;
  }
  waveforms_[*name] = std::move(codes);
  if (*name == selected_) armed_ = false;
}

bool CircuitInstrument::within_limits(const std::vector<std::int16_t>& codes) {
  if (!limits_on_) return true;
  for (const std::int16_t code : codes) {
    const double v = dac_volts(code);
    if (v > limit_high_v_ || v < limit_low_v_) {
      ++out_of_range_;
      error(-222, "Data out of range; the waveform leaves the voltage limits " +
                      format_number(limit_low_v_) + " to " + format_number(limit_high_v_) + " V");
      return false;
    }
  }
  return true;
}

std::size_t CircuitInstrument::samples_per_point() const {
  const double ratio = scope_rate_sps_ / awg_rate_sps_;
  const double whole = std::round(ratio);
  return whole >= 1.0 && std::abs(ratio - whole) <= 1e-9 * ratio ? static_cast<std::size_t>(whole)
                                                                 : 0;
}

std::string CircuitInstrument::acquisition_conflict() const {
  const auto it = waveforms_.find(selected_);
  if (it == waveforms_.end()) {
    return "no arbitrary waveform selected (upload one with SOURce:DATA:ARBitrary:DAC and select "
           "it with SOURce:FUNCtion:ARBitrary)";
  }
  const std::size_t points = it->second.size();
  const auto segments = static_cast<std::size_t>(segments_);
  if (points % segments != 0) {
    return "the waveform's " + std::to_string(points) + " points do not split into " +
           std::to_string(segments) + " equal segments";
  }
  const std::size_t spp = samples_per_point();
  if (spp == 0) {
    return "the digitizer's sample rate must be a whole multiple of the AWG's point rate";
  }
  if (points * spp > kMemoryPoints) {
    return "the acquisition needs " + std::to_string(points * spp) +
           " samples; the digitizer "
           "holds " +
           std::to_string(kMemoryPoints);
  }
  return {};
}

void CircuitInstrument::initiate() {
  if (armed_) {
    error(-213, "Init ignored; the acquisition is already armed");
    return;
  }
  if (const std::string why = acquisition_conflict(); !why.empty()) {
    error(-221, "Settings conflict; " + why);
    return;
  }
  if (!within_limits(waveforms_.at(selected_))) return;  // the limits may have moved since
  trace_.resize(0, 0);
  if (trigger_source_ == TriggerSource::kImmediate) {
    acquire();
  } else {
    armed_ = true;
  }
}

void CircuitInstrument::trigger() {
  if (!armed_ || trigger_source_ != TriggerSource::kBus) {
    error(-211, "Trigger ignored");
    return;
  }
  armed_ = false;
  acquire();
}

void CircuitInstrument::acquire() {
  const std::vector<std::int16_t>& w = waveforms_.at(selected_);
  const Index rows = static_cast<Index>(segments_);
  const Index cols = static_cast<Index>(w.size()) / rows;
  Matrix drive(rows, cols);
  for (Index r = 0; r < rows; ++r) {
    for (Index j = 0; j < cols; ++j) {
      // Output off: the relay is open and the circuit's input sits at 0 V.
      drive(r, j) = output_on_ ? dac_volts(w[static_cast<std::size_t>(r * cols + j)]) : 0.0;
    }
  }
  trace_ = reality_.acquire(drive, 1.0 / awg_rate_sps_, 1.0 / scope_rate_sps_);
  ++acquisitions_;
  runs_ += static_cast<std::uint64_t>(rows);
}

void CircuitInstrument::send_trace(Context& context) {
  if (trace_.size() == 0) {
    error(-230, "Data corrupt or stale; no acquisition since the last INITiate");
    context.respond(scpi::format_block({}));
    return;
  }
  const auto n = static_cast<std::size_t>(trace_.size());
  const std::size_t nan_at = context.nan ? pick_fault_index(n) : n;
  const bool big_endian = byte_order_ == ByteOrder::kNormal;
  const double step = reality_.adc_step_v(), origin = reality_.adc_origin_v();
  std::vector<std::uint8_t> bytes;
  bytes.reserve(n * (format_ == TraceFormat::kWord ? 2 : 4));
  std::size_t i = 0;
  for (Index r = 0; r < trace_.rows(); ++r) {
    for (Index j = 0; j < trace_.cols(); ++j, ++i) {
      const double v = i == nan_at ? std::nan("") : trace_(r, j);
      if (format_ == TraceFormat::kReal) {
        write_unsigned(bytes, std::bit_cast<std::uint32_t>(static_cast<float>(v)), big_endian);
      } else {
        // −32768 marks an invalid sample (no 14-bit code maps to it).
        const std::int16_t code = std::isnan(v)
                                      ? std::int16_t{-32768}
                                      : static_cast<std::int16_t>(std::lround((v - origin) / step));
        write_unsigned(bytes, static_cast<std::uint16_t>(code), big_endian);
      }
    }
  }
  context.respond(scpi::format_block(bytes));
}

std::shared_ptr<CircuitInstrument> make_circuit_instrument(const DeviceAddress& address) {
  const long long seed = address.get_int("seed", 1);
  CircuitInstrumentConfig config;
  config.serial = address.get("serial", "SIM-RLC-" + std::to_string(seed));
  config.reality.tolerance = address.get_double("tolerance", 0.05);
  if (config.reality.tolerance < 0.0 || config.reality.tolerance > 0.2) {
    throw std::invalid_argument(address.text +
                                ": tolerance = " + format_shortest(config.reality.tolerance) +
                                " is outside 0..0.2 (relative component tolerance)");
  }
  config.reality.seed = serial_seed(config.serial);
  config.faults = FaultPlan::parse(address.get("faults", ""), config.reality.seed);
  return std::make_shared<CircuitInstrument>(std::move(config));
}

PhysicalSystemPtr make_circuit_device(const DeviceAddress& address) {
  // The simulated bench: the real driver over the in-process loopback to this instrument.
  auto instrument = make_circuit_instrument(address);
  std::string serial = instrument->identity().serial;
  return make_scpi_circuit_over(
      address, firmware_iface::make_loopback_transport(std::move(instrument)), std::move(serial));
}

}  // namespace pnn::drivers::sim

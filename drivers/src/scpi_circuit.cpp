// The electronic-circuit driver: the time multiplexing of (x, θ) into the AWG waveform and the
// window averaging of the digitizer trace happen here, as they would with bench instruments, so
// the simulated bench runs exactly the code a real one would.
//
// One forward is three round trips:
//   1. SOUR:DATA:VOL:CLE; SOUR:DATA:ARB:DAC PNNDRIVE,<codes>; SOUR:FUNC:ARB PNNDRIVE;
//      ACQ:SEGM:COUN <batch>; INIT; *TRG; *OPC?     → "1" once the acquisition is complete
//   2. WAV:DATA?                                     → float32 block, batch × 2K samples
//   3. *ESR?; OUTP?; SYST:ERR?  (then SYST:ERR? until 0)
// The volatile memory is cleared first so that a refused upload can never leave the previous
// batch's waveform to be played instead. Step 3 comes after the data so it also catches a reset
// that happened while the trace was read (the power-on bit, the output found off).
#include "scpi_circuit.hpp"
#include "pnn/common/hex.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <optional>
#include <sstream>
#include <variant>

#include "../sim/circuit_instrument.hpp"  // the sim:// wiring only; the driver never calls it
#include "pnn/digital_twin/circuit.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "scpi_client.hpp"

namespace pnn::drivers {
namespace {

namespace fw = firmware_iface;
namespace scpi = firmware_iface::scpi;

// The instrument's conventions (docs/protocol.md, "SCPI instruments").
constexpr const char* kSupportedModel = "AWGDIG-100";
constexpr int kDacMaxCode = 32767;  // codes ±32767 are ±kFullScaleV
constexpr double kFullScaleV = 10.0;
constexpr double kAdcRangeV = 5.0;   // digitizer input range ±; readings beyond are garbled
constexpr double kAdcNoiseV = 1e-3;  // rms per sample
constexpr double kRateSps = 1e6;     // AWG points and digitizer samples: one per 1 µs slot
constexpr const char* kWaveform = "PNNDRIVE";
constexpr unsigned kEsrPowerOn = 0x80;
constexpr Index kMaxBatch = 4096;
constexpr int kMaxErrorsDrained = 64;

double dac_volts(int code) { return code * kFullScaleV / kDacMaxCode; }

// The largest code whose voltage (computed as the instrument computes it) is within limit_v.
int max_code_within(double limit_v) {
  int c =
      std::clamp(static_cast<int>(std::floor(limit_v / kFullScaleV * kDacMaxCode)), 0, kDacMaxCode);
  while (c < kDacMaxCode && dac_volts(c + 1) <= limit_v) ++c;
  while (c > 0 && dac_volts(c) > limit_v) --c;
  return c;
}

// Why an exchange with the instrument failed, and whether resynchronising and trying once more
// may help (a timeout or a garbled reply: yes; a refused command or a lost link: no).
struct Failure {
  Error error;
  bool transient = false;
};

template <class T>
class Outcome {
 public:
  Outcome(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  Outcome(Failure failure) : v_(std::move(failure)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  T& value() { return std::get<0>(v_); }
  const Failure& failure() const { return std::get<1>(v_); }

 private:
  std::variant<T, Failure> v_;
};

struct Done {};

// What step 3 (and its equivalents in configure and activate) found.
struct Status {
  unsigned esr = 0;
  std::vector<long long> values;  // the other numeric responses, in order
  std::vector<scpi::ErrorEntry> errors;
};

class ScpiCircuit final : public PhysicalSystem {
 public:
  struct Options {
    Index slots = 32;
    double vmax_v = kFullScaleV;
    std::chrono::milliseconds timeout{5000};
    std::string expected_serial;  // "" = accept the first instrument, then insist on it
    std::string address;
  };

  ScpiCircuit(DeviceSpec spec, fw::TransportPtr transport, Options options)
      : PhysicalSystem(std::move(spec)),
        client_(std::move(transport), options.timeout),
        options_(std::move(options)),
        max_code_(max_code_within(options_.vmax_v)),
        expected_serial_(options_.expected_serial) {}

  digital_twin::ModelPtr nominal_twin() const override {
    return std::make_shared<digital_twin::CircuitModel>(
        digital_twin::CircuitConfig{.num_slots = options_.slots});
  }

 private:
  // --- lifecycle ---------------------------------------------------------------------------------

  Result<void> do_configure() override {
    if (const auto ec = client_.open()) {
      return link_failure(ec, "connecting").error;
    }
    auto r = retry_once([&] { return identify_and_setup(); });
    if (!r) client_.close();
    return r;
  }

  Outcome<Done> identify_and_setup() {
    if (const auto ec = client_.resync()) return link_failure(ec, "synchronising");
    auto idn_reply = ask("*IDN?");
    if (!idn_reply.ok()) return idn_reply.failure();
    const auto idn = scpi::parse_identity(idn_reply.value());
    if (!idn) return garbled("*IDN?", idn_reply.value());
    if (idn->model != kSupportedModel) {
      return Failure{make_error(Errc::kDeviceFault,
                                "the instrument at " + client_.describe() + " identifies as '" +
                                    idn_reply.value() + "'; this driver speaks the " +
                                    kSupportedModel + " command set (docs/protocol.md)"),
                     false};
    }
    if (!expected_serial_.empty() && idn->serial != expected_serial_) {
      return Failure{{make_error_code(fw::Errc::kIdentityMismatch),
                      "expected the instrument with serial " + expected_serial_ + " at " +
                          client_.describe() + " but serial " + idn->serial +
                          " answers: it was swapped or the address points elsewhere (fix the "
                          "address, or give serial=" +
                          idn->serial + " to accept this one)"},
                     false};
    }
    expected_serial_ = idn->serial;
    auto& spec = mutable_spec();
    spec.serial = idn->serial;
    spec.firmware = idn->firmware;
    spec.model = idn->manufacturer + " " + idn->model +
                 " (AWG 16-bit ±10 V, digitizer 14-bit 1 MS/s) driving a series RLC circuit with a "
                 "junction diode (30 Ω / 100 µH / 10 nF nominal)";

    // *RST turns the output off; the limits make the AWG itself refuse any point beyond vmax.
    const std::string v = format_decimal(options_.vmax_v);
    if (auto w = tell("*RST;*CLS;:FORM:BORD SWAP;:SOUR:FUNC:ARB:SRAT " + format_decimal(kRateSps) +
                      ";:ACQ:SRAT " + format_decimal(kRateSps) +
                      ";:WAV:FORM REAL;:TRIG:SOUR BUS;:SOUR:VOLT:LIM:LOW -" + v +
                      ";:SOUR:VOLT:LIM:HIGH " + v + ";:SOUR:VOLT:LIM:STAT ON;:OUTP OFF");
        !w.ok()) {
      return w.failure();
    }
    auto s = status("SOUR:VOLT:LIM:LOW?;:SOUR:VOLT:LIM:HIGH?;:SOUR:VOLT:LIM:STAT?;:OUTP?", 4);
    if (!s.ok()) return s.failure();
    if (auto bad = refused(s.value(), "configuring")) return *bad;
    // Read back what protects the circuit: the limits exactly as sent, armed, output off.
    const Status& st = s.value();
    const auto lo = parse_decimal(raw_[0]), hi = parse_decimal(raw_[1]);
    if (!lo || !hi || *lo != -options_.vmax_v || *hi != options_.vmax_v || st.values[2] != 1 ||
        st.values[3] != 0) {
      return Failure{make_error(Errc::kDeviceFault,
                                "instrument " + expected_serial_ +
                                    " did not take the voltage limits (read back LOW " + raw_[0] +
                                    ", HIGH " + raw_[1] + ", STATe " + raw_[2] + ", OUTPut " +
                                    raw_[3] + "); it is left with the output off"),
                     true};  // a damaged readback looks the same: set up and read once more
    }
    return Done{};
  }

  Result<void> do_activate() override {
    return retry_once([&]() -> Outcome<Done> {
      if (auto w = tell("OUTP ON"); !w.ok()) return w.failure();
      auto s = status("OUTP?", 1);
      if (!s.ok()) return s.failure();
      if (auto bad = refused(s.value(), "switching the output on")) return *bad;
      if (s.value().values[0] != 1) return output_off("after OUTP ON");
      return Done{};
    });
  }

  Result<void> do_safe_state() override {
    // When the link is gone nothing can be commanded, and a lost link does not mean a powered-off
    // instrument (a LAN cable, a hung socket): the output may still be on. That is an error, not
    // a safe state. recover() reconnects, and configure sends *RST (output off) first.
    const auto link_gone = [this] {
      return make_error(Errc::kIo, "the link to instrument " + expected_serial_ +
                                       " is gone, so its output could not be switched off (it is "
                                       "off only if the instrument lost power); check the "
                                       "instrument, then recover the device (reconnect: "
                                       "configure switches the output off first)");
    };
    if (!client_.is_open()) return link_gone();
    auto r = retry_once([&]() -> Outcome<Done> {
      if (auto w = tell("ABOR;:OUTP OFF"); !w.ok()) return w.failure();
      auto s = status("OUTP?", 1);
      if (!s.ok()) return s.failure();
      if (s.value().values[0] != 0) {
        return Failure{make_error(Errc::kDeviceFault, "instrument " + expected_serial_ +
                                                          " still reports its output on after "
                                                          "OUTP OFF; switch it off at the front "
                                                          "panel"),
                       false};
      }
      return Done{};
    });
    if (!r && !client_.is_open()) return link_gone();  // the link went away meanwhile
    return r;
  }

  Result<void> do_cleanup() override {
    client_.close();
    return {};
  }

  // --- forward -----------------------------------------------------------------------------------

  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    const Index batch = x.rows(), k = options_.slots;
    // Row r is run r: [x_r0 | θ_0 | x_r1 | θ_1 | …], one AWG point per 1 µs slot, the layout the
    // twin (digital_twin::CircuitModel::drive_levels) assumes. Little-endian int16 (FORM:BORD
    // SWAP).
    std::vector<std::uint8_t> codes;
    codes.reserve(static_cast<std::size_t>(batch * 2 * k * 2));
    const auto put = [&](double volts) {
      const int code = std::clamp(static_cast<int>(std::lround(volts / kFullScaleV * kDacMaxCode)),
                                  -max_code_, max_code_);
      const auto u = static_cast<std::uint16_t>(static_cast<std::int16_t>(code));
      codes.push_back(static_cast<std::uint8_t>(u & 0xFF));
      codes.push_back(static_cast<std::uint8_t>(u >> 8));
    };
    for (Index r = 0; r < batch; ++r) {
      for (Index s = 0; s < k; ++s) {
        put(x(r, s));
        put(theta[s]);
      }
    }
    const std::string upload = std::string("SOUR:DATA:VOL:CLE;:SOUR:DATA:ARB:DAC ") + kWaveform +
                               "," + scpi::format_block(codes) + ";:SOUR:FUNC:ARB " + kWaveform +
                               ";:ACQ:SEGM:COUN " + std::to_string(batch) + ";:INIT;*TRG;*OPC?";
    Matrix y;
    auto r = retry_once([&]() -> Outcome<Done> {
      auto m = acquire(upload, batch);
      if (!m.ok()) return m.failure();
      y = std::move(m.value());
      return Done{};
    });
    if (!r) return r.error();
    return y;
  }

  Outcome<Matrix> acquire(const std::string& upload, Index batch) {
    const Index k = options_.slots;
    auto opc = ask(upload, "the waveform upload and trigger (*OPC?)");
    if (!opc.ok()) return opc.failure();
    if (opc.value() != "1") return garbled("*OPC?", opc.value());
    auto data = ask("WAV:DATA?");
    if (!data.ok()) return data.failure();
    auto s = status("OUTP?", 1);
    if (!s.ok()) return s.failure();
    if ((s.value().esr & kEsrPowerOn) != 0) {
      return Failure{make_error(Errc::kDeviceFault,
                                "instrument " + expected_serial_ +
                                    " reset itself during the batch (power-on bit in *ESR?): its "
                                    "waveform, limits and output state were lost and the batch "
                                    "was not measured; deactivate, cleanup and configure it" +
                                    error_list(s.value().errors)),
                     false};
    }
    if (auto bad = refused(s.value(), "measuring the batch")) return *bad;
    if (s.value().values[0] != 1) return output_off("during the batch");

    const auto block = scpi::parse_arguments(data.value());
    if (!block || block->size() != 1 || block->front().kind != scpi::Argument::Kind::kBlock) {
      return garbled("WAV:DATA?", data.value());
    }
    const std::string& bytes = block->front().text;
    const Index per_run = 2 * k;  // samples: one per slot at 1 MS/s
    if (bytes.size() != static_cast<std::size_t>(batch * per_run * 4)) {
      return garbled("WAV:DATA?", std::to_string(bytes.size()) + " bytes for " +
                                      std::to_string(batch * per_run) + " float32 samples");
    }
    Matrix y(batch, k);
    for (Index r = 0; r < batch; ++r) {
      for (Index w = 0; w < k; ++w) {
        double sum = 0.0;
        for (Index j = 0; j < 2; ++j) {
          const std::size_t at = static_cast<std::size_t>((r * per_run + 2 * w + j) * 4);
          std::uint32_t u = 0;
          for (int b = 3; b >= 0; --b) {
            u = (u << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(b)]);
          }
          const double v = std::bit_cast<float>(u);
          // A NaN is the instrument's own verdict (kept: the caller sees kNonFinite); a reading
          // beyond the ADC's range cannot come from it, so the reply was damaged on the way.
          if (!std::isnan(v) && !(std::abs(v) <= kAdcRangeV * 1.001)) {
            return garbled("WAV:DATA?", "a sample of " + format_decimal(v) + " V");
          }
          sum += v;
        }
        y(r, w) = 0.5 * sum;  // the window of slot w: its data slot and its parameter slot
      }
    }
    return y;
  }

  // --- exchanges ---------------------------------------------------------------------------------

  // Runs `attempt`; after a transient failure resynchronises and runs it once more (every
  // exchange of this driver may be repeated: uploads replace, acquisitions have no lasting
  // effect). Health becomes WARNING when the retry succeeds; the caller's error makes it FAULT.
  template <class F>
  Result<void> retry_once(F&& attempt) {
    auto first = attempt();
    if (first.ok()) return {};
    if (!first.failure().transient) return first.failure().error;
    if (const auto ec = client_.resync()) {
      Failure f = link_failure(ec, "resynchronising after: " + first.failure().error.message);
      return f.error;
    }
    auto second = attempt();
    if (!second.ok()) return second.failure().error;
    set_health(Health::kWarning, "recovered by resynchronising and retrying once after: " +
                                     first.failure().error.message);
    return {};
  }

  std::string who() const { return expected_serial_.empty() ? options_.address : expected_serial_; }

  Failure link_failure(std::error_code ec, const std::string& doing) const {
    const std::string who = this->who();
    if (ec == fw::Errc::kTimeout) {
      return {make_error(Errc::kTimeout,
                         "no reply from " + who + " (" + client_.describe() + ") within " +
                             std::to_string(options_.timeout.count()) + " ms while " + doing),
              true};
    }
    if (ec == fw::Errc::kDisconnected || ec == fw::Errc::kNotOpen) {
      const bool connecting = doing == "connecting";
      return {make_error(Errc::kIo, "instrument " + who + " at " + client_.describe() +
                                        " is disconnected (unplugged, powered off or not "
                                        "listening) while " +
                                        doing +
                                        (connecting ? "; check that it is on and reachable, "
                                                      "then configure again"
                                                    : "; run cleanup, then configure to "
                                                      "reconnect and re-identify it")),
              false};
    }
    if (ec == fw::Errc::kMessageTooLong) {
      return {make_error(Errc::kIo, "garbled reply from " + who + " while " + doing +
                                        " (a response without its terminator)"),
              true};
    }
    return {make_error(Errc::kIo, "link to " + who + " (" + client_.describe() + ") failed while " +
                                      doing + ": " + ec.message()),
            false};
  }

  Failure garbled(const std::string& query, const std::string& reply) const {
    // Printable, and short: a damaged reply may be binary, or megabytes long.
    std::string shown;
    for (const char c : reply.substr(0, 48)) {
      const auto u = static_cast<unsigned char>(c);
      if (u >= 0x20 && u < 0x7F) {
        shown.push_back(c);
      } else {
        shown += "\\x" + common::hex_byte(u);
      }
    }
    if (reply.size() > 48) shown += "...";
    return {
        make_error(Errc::kIo, "garbled reply from " + who() + " to " + query + ": '" + shown + "'"),
        true};
  }

  Failure output_off(const std::string& when) const {
    return {make_error(Errc::kDeviceFault,
                       "instrument " + expected_serial_ + " has its output off " + when +
                           " although the device is ACTIVE (it reset, or was switched at the "
                           "front panel); deactivate, cleanup and configure it"),
            false};
  }

  Outcome<Done> tell(const std::string& message) {
    if (const auto ec = client_.write(message)) return link_failure(ec, "sending commands");
    return Done{};
  }

  Outcome<std::string> ask(const std::string& query, const std::string& what = "") {
    auto reply = client_.query(query);
    if (!reply) return link_failure(reply.error(), "waiting for " + (what.empty() ? query : what));
    return std::move(reply).value();
  }

  // "<query>;*ESR?;:SYST:ERR?" → the n integer (or decimal) responses of `query` in raw_ and
  // values, then the ESR, then the error queue drained until 0.
  Outcome<Status> status(const std::string& query, std::size_t n) {
    auto reply = ask(query + ";*ESR?;:SYST:ERR?", query + ";*ESR?;:SYST:ERR?");
    if (!reply.ok()) return reply.failure();
    const std::vector<std::string> parts = split_responses(reply.value());
    if (parts.size() != n + 2) return garbled(query + ";*ESR?;:SYST:ERR?", reply.value());
    Status s;
    raw_.assign(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      const auto d = parse_decimal(parts[i]);
      if (!d) return garbled(query, reply.value());
      s.values.push_back(std::llround(*d));
    }
    const auto esr = parse_integer(parts[n]);
    auto entry = scpi::parse_error(parts[n + 1]);
    if (!esr || *esr < 0 || *esr > 255 || !entry) return garbled("*ESR?;:SYST:ERR?", reply.value());
    s.esr = static_cast<unsigned>(*esr);
    for (int i = 0; entry->code != 0 && i < kMaxErrorsDrained; ++i) {
      s.errors.push_back(*entry);
      auto next = ask("SYST:ERR?");
      if (!next.ok()) return next.failure();
      entry = scpi::parse_error(next.value());
      if (!entry) return garbled("SYST:ERR?", next.value());
    }
    return s;
  }

  static std::string error_list(const std::vector<scpi::ErrorEntry>& errors) {
    std::string out;
    for (const auto& e : errors) {
      out += out.empty() ? "; its error queue: " : " | ";
      out += scpi::format_error(e);
    }
    return out;
  }

  // The instrument refused something: its queued errors as one kDeviceFault.
  std::optional<Failure> refused(const Status& s, const std::string& doing) const {
    if (s.errors.empty()) return std::nullopt;
    return Failure{make_error(Errc::kDeviceFault, "instrument " + expected_serial_ +
                                                      " reported errors while " + doing +
                                                      error_list(s.errors)),
                   false};
  }

  ScpiClient client_;
  Options options_;
  int max_code_;
  std::string expected_serial_;
  std::vector<std::string> raw_;  // the raw responses of the last status() query
};

// "HOST:PORT" or "[V6]:PORT", with the address's form in the message.
fw::TcpOptions tcp_target(const DeviceAddress& address) {
  try {
    return fw::TcpOptions::parse(address.target);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("device address '" + address.text + "': " + e.what() +
                                " (e.g. tcp://127.0.0.1:5025?kind=electronic-circuit&slots=32)");
  }
}

}  // namespace

namespace {

PhysicalSystemPtr build(const DeviceAddress& address, fw::TransportPtr transport,
                        std::string expected_serial) {
  const bool sim = address.scheme == "sim";
  if (sim) {
    address.allow_only({"seed", "serial", "slots", "tolerance", "faults", "timeout_ms", "vmax"});
  } else {
    address.allow_only({"kind", "serial", "slots", "timeout_ms", "vmax"});
  }
  const long long slots = address.get_int("slots", 32);
  if (slots < 1 || slots > 256) {
    throw std::invalid_argument(address.text + ": slots = " + std::to_string(slots) +
                                " is outside 1..256");
  }
  const long long timeout_ms = address.get_int("timeout_ms", 5000);
  if (timeout_ms < 1 || timeout_ms > 600000) {
    throw std::invalid_argument(address.text + ": timeout_ms = " + std::to_string(timeout_ms) +
                                " is outside 1..600000");
  }
  const double vmax = address.get_double("vmax", kFullScaleV);
  if (!(vmax > 0.0 && vmax <= kFullScaleV)) {
    throw std::invalid_argument(address.text + ": vmax = " + format_decimal(vmax) +
                                " V is outside (0, 10] (the drive limit in volts, at most the "
                                "AWG's ±10 V)");
  }
  if (!transport) transport = fw::make_tcp_transport(tcp_target(address));

  DeviceSpec spec;
  spec.kind = "electronic-circuit";
  spec.model = std::string(kSupportedModel) +
               " (AWG + digitizer) driving a series RLC circuit "
               "with a junction diode; identified when configured";
  spec.serial = expected_serial.empty() ? address.text : expected_serial;
  spec.firmware = "unknown until configured";
  spec.num_inputs = spec.num_outputs = slots;
  spec.input_unit = spec.output_unit = "V";
  // The driver rounds levels to the nearest DAC code, never to one beyond ±vmax, so no
  // accepted request can trip the AWG's own limit check (set to ±vmax in configure).
  spec.input_min = -vmax;
  spec.input_max = vmax;
  spec.output_noise_std = kAdcNoiseV / std::sqrt(2.0);  // two samples per window
  spec.max_batch = kMaxBatch;
  spec.params = {
      {"drive", slots, "V", -vmax, vmax, "AWG level of the 1 µs parameter slot after data slot k"}};
  ScpiCircuit::Options options{.slots = slots,
                               .vmax_v = vmax,
                               .timeout = std::chrono::milliseconds(timeout_ms),
                               .expected_serial = std::move(expected_serial),
                               .address = address.text};
  return std::make_unique<ScpiCircuit>(std::move(spec), std::move(transport), std::move(options));
}

}  // namespace

PhysicalSystemPtr make_scpi_circuit(const DeviceAddress& address) {
  if (address.scheme != "sim") return build(address, nullptr, address.get("serial", ""));
  // The simulated bench: its firmware emulator behind the in-process loopback.
  auto instrument = sim::make_circuit_instrument(address);
  std::string serial = instrument->identity().serial;
  return build(address, fw::make_loopback_transport(std::move(instrument)), std::move(serial));
}

PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address, fw::TransportPtr transport) {
  if (!transport) throw std::invalid_argument("make_scpi_circuit_over: null transport");
  return build(address, std::move(transport), address.get("serial", ""));
}

}  // namespace pnn::drivers

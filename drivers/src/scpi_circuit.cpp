// The electronic-circuit driver (pnn/drivers/scpi_circuit.hpp): lifecycle and forward. The
// exchanges and their failures are the session's (scpi_circuit/session.hpp), the waveform
// encoding and the trace decoding have files of their own (waveform.hpp, trace.hpp).
//
// One forward is three round trips:
//   1. SOUR:DATA:VOL:CLE; SOUR:DATA:ARB:DAC PNNDRIVE,<codes>; SOUR:FUNC:ARB PNNDRIVE;
//      ACQ:SEGM:COUN <batch>; INIT; *TRG; *OPC?     → "1" once the acquisition is complete
//   2. WAV:DATA?                                     → float32 block, batch × 2K samples
//   3. *ESR?; OUTP?; SYST:ERR?  (then SYST:ERR? until 0)
// Step 3 comes after the data so it also catches a reset that happened while the trace was read
// (the power-on bit, the output found off).
#include "pnn/drivers/scpi_circuit.hpp"

#include <stdexcept>

#include "pnn/drivers/setups/electronic_circuit.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "scpi_circuit/session.hpp"
#include "scpi_circuit/trace.hpp"
#include "scpi_circuit/waveform.hpp"

namespace pnn::drivers {
namespace {

namespace fw = firmware_iface;
using scpi_circuit::Session;
using scpi_circuit::Status;

// The instrument's conventions (docs/protocol.md, "SCPI instruments").
constexpr const char* kSupportedModel = "AWGDIG-100";
constexpr unsigned kEsrPowerOn = 0x80;

class ScpiCircuit final : public PhysicalSystem {
 public:
  struct Options {
    double vmax_v = setups::kCircuitFullScaleV;
    std::chrono::milliseconds timeout{5000};
    std::string expected_serial;  // "" = accept the first instrument, then insist on it
    std::string address;
  };

  ScpiCircuit(Datasheet datasheet, fw::TransportPtr transport, Options options)
      : PhysicalSystem(std::move(datasheet.spec)),
        twin_(std::move(datasheet.twin)),
        session_(std::move(transport), options.timeout, options.address,
                 options.expected_serial),
        vmax_v_(options.vmax_v),
        max_code_(scpi_circuit::max_code_within(options.vmax_v)) {}

  digital_twin::ModelPtr nominal_twin() const override { return twin_; }

 private:
  // --- lifecycle ---------------------------------------------------------------------------------

  Result<void> do_configure() override {
    if (auto r = session_.open(); !r) return r;
    auto r = retry_once([&] { return identify_and_setup(); });
    if (!r) session_.close();
    return r;
  }

  Result<void> identify_and_setup() {
    namespace scpi = firmware_iface::scpi;
    if (auto r = session_.resync("synchronising"); !r) return r;
    auto idn_reply = session_.ask("*IDN?");
    if (!idn_reply) return idn_reply.error();
    const auto idn = scpi::parse_identity(idn_reply.value());
    if (!idn) return session_.garbled("*IDN?", idn_reply.value());
    if (idn->model != kSupportedModel) {
      return session_.fail(make_error(Errc::kDeviceFault,
                                      "the instrument at " + session_.describe() +
                                          " identifies as '" + idn_reply.value() +
                                          "'; this driver speaks the " + kSupportedModel +
                                          " command set (docs/protocol.md)"),
                           false);
    }
    if (!session_.serial().empty() && idn->serial != session_.serial()) {
      return session_.fail({make_error_code(fw::Errc::kIdentityMismatch),
                            "expected the instrument with serial " + session_.serial() + " at " +
                                session_.describe() + " but serial " + idn->serial +
                                " answers: it was swapped or the address points elsewhere (fix "
                                "the address, or give serial=" +
                                idn->serial + " to accept this one)"},
                           false);
    }
    session_.bind_serial(idn->serial);
    auto& spec = mutable_spec();
    spec.serial = idn->serial;
    spec.firmware = idn->firmware;
    spec.model = idn->manufacturer + " " + idn->model +
                 " (AWG 16-bit ±10 V, digitizer 14-bit 1 MS/s) driving a series RLC circuit with a "
                 "junction diode (30 Ω / 100 µH / 10 nF nominal)";

    // *RST turns the output off; the limits make the AWG itself refuse any point beyond vmax.
    const std::string v = format_decimal(vmax_v_);
    const std::string rate = format_decimal(scpi_circuit::kRateSps);
    if (auto w = session_.tell("*RST;*CLS;:FORM:BORD SWAP;:SOUR:FUNC:ARB:SRAT " + rate +
                               ";:ACQ:SRAT " + rate +
                               ";:WAV:FORM REAL;:TRIG:SOUR BUS;:SOUR:VOLT:LIM:LOW -" + v +
                               ";:SOUR:VOLT:LIM:HIGH " + v + ";:SOUR:VOLT:LIM:STAT ON;:OUTP OFF");
        !w) {
      return w;
    }
    auto s =
        session_.status("SOUR:VOLT:LIM:LOW?;:SOUR:VOLT:LIM:HIGH?;:SOUR:VOLT:LIM:STAT?;:OUTP?", 4);
    if (!s) return s.error();
    if (auto bad = session_.refused(s.value(), "configuring")) return *bad;
    // Read back what protects the circuit: the limits exactly as sent, armed, output off.
    const Status& st = s.value();
    const auto lo = parse_decimal(st.raw[0]), hi = parse_decimal(st.raw[1]);
    if (!lo || !hi || *lo != -vmax_v_ || *hi != vmax_v_ || st.values[2] != 1 ||
        st.values[3] != 0) {
      // A damaged readback looks the same: set up and read once more.
      return session_.fail(make_error(Errc::kDeviceFault,
                                      "instrument " + session_.serial() +
                                          " did not take the voltage limits (read back LOW " +
                                          st.raw[0] + ", HIGH " + st.raw[1] + ", STATe " +
                                          st.raw[2] + ", OUTPut " + st.raw[3] +
                                          "); it is left with the output off"),
                           true);
    }
    return {};
  }

  Result<void> do_activate() override {
    return retry_once([&]() -> Result<void> {
      if (auto w = session_.tell("OUTP ON"); !w) return w;
      auto s = session_.status("OUTP?", 1);
      if (!s) return s.error();
      if (auto bad = session_.refused(s.value(), "switching the output on")) return *bad;
      if (s.value().values[0] != 1) return output_off("after OUTP ON");
      return {};
    });
  }

  Result<void> do_safe_state() override {
    // When the link is gone nothing can be commanded, and a lost link does not mean a powered-off
    // instrument (a LAN cable, a hung socket): the output may still be on. That is an error, not
    // a safe state. recover() reconnects, and configure sends *RST (output off) first.
    const auto link_gone = [this] {
      return make_error(Errc::kIo, "the link to instrument " + session_.serial() +
                                       " is gone, so its output could not be switched off (it is "
                                       "off only if the instrument lost power); check the "
                                       "instrument, then recover the device (reconnect: "
                                       "configure switches the output off first)");
    };
    if (!session_.is_open()) return link_gone();
    auto r = retry_once([&]() -> Result<void> {
      if (auto w = session_.tell("ABOR;:OUTP OFF"); !w) return w;
      auto s = session_.status("OUTP?", 1);
      if (!s) return s.error();
      if (s.value().values[0] != 0) {
        return session_.fail(
            make_error(Errc::kDeviceFault, "instrument " + session_.serial() +
                                               " still reports its output on after OUTP OFF; "
                                               "switch it off at the front panel"),
            false);
      }
      return {};
    });
    if (!r && !session_.is_open()) return link_gone();  // the link went away meanwhile
    return r;
  }

  Result<void> do_cleanup() override {
    session_.close();
    return {};
  }

  // --- forward -----------------------------------------------------------------------------------

  Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override {
    const std::string upload = scpi_circuit::upload_message(x, theta, max_code_);
    Matrix y;
    auto r = retry_once([&]() -> Result<void> {
      auto m = acquire(upload, x.rows());
      if (!m) return m.error();
      y = std::move(m.value());
      return {};
    });
    if (!r) return r.error();
    return y;
  }

  Result<Matrix> acquire(const std::string& upload, Index batch) {
    auto opc = session_.ask(upload, "the waveform upload and trigger (*OPC?)");
    if (!opc) return opc.error();
    if (opc.value() != "1") return session_.garbled("*OPC?", opc.value());
    auto data = session_.ask("WAV:DATA?");
    if (!data) return data.error();
    auto s = session_.status("OUTP?", 1);
    if (!s) return s.error();
    if ((s.value().esr & kEsrPowerOn) != 0) {
      return session_.fail(
          make_error(Errc::kDeviceFault,
                     "instrument " + session_.serial() +
                         " reset itself during the batch (power-on bit in *ESR?): its waveform, "
                         "limits and output state were lost and the batch was not measured; "
                         "deactivate, cleanup and configure it" +
                         Session::error_list(s.value().errors)),
          false);
    }
    if (auto bad = session_.refused(s.value(), "measuring the batch")) return *bad;
    if (s.value().values[0] != 1) return output_off("during the batch");
    return scpi_circuit::decode_trace(session_, data.value(), batch, spec().num_outputs);
  }

  // --- retry policy ------------------------------------------------------------------------------

  // Runs `attempt`; after a transient failure resynchronises and runs it once more (every
  // exchange of this driver may be repeated: uploads replace, acquisitions have no lasting
  // effect). Health becomes WARNING when the retry succeeds; the caller's error makes it FAULT.
  template <class F>
  Result<void> retry_once(F&& attempt) {
    session_.clear_failure();
    Result<void> first = attempt();
    if (first) return {};
    if (!session_.last_failure_transient()) return first;
    const std::string after = first.error().message;
    if (auto r = session_.resync("resynchronising after: " + after); !r) return r;
    session_.clear_failure();
    Result<void> second = attempt();
    if (!second) return second;
    set_health(Health::kWarning, "recovered by resynchronising and retrying once after: " + after);
    return {};
  }

  Error output_off(const std::string& when) {
    return session_.fail(make_error(Errc::kDeviceFault,
                                    "instrument " + session_.serial() + " has its output off " +
                                        when +
                                        " although the device is ACTIVE (it reset, or was "
                                        "switched at the front panel); deactivate, cleanup and "
                                        "configure it"),
                         false);
  }

  digital_twin::ModelPtr twin_;
  Session session_;
  double vmax_v_;
  int max_code_;
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

PhysicalSystemPtr build(const DeviceAddress& address, fw::TransportPtr transport,
                        std::string expected_serial) {
  Datasheet datasheet = setups::electronic_circuit(address);
  const long long timeout_ms = address.get_int("timeout_ms", 5000);
  if (timeout_ms < 1 || timeout_ms > 600000) {
    throw std::invalid_argument(address.text + ": timeout_ms = " + std::to_string(timeout_ms) +
                                " is outside 1..600000");
  }
  if (!transport) transport = fw::make_tcp_transport(tcp_target(address));
  DeviceSpec& spec = datasheet.spec;
  spec.model = std::string(kSupportedModel) +
               " (AWG + digitizer) driving a series RLC circuit "
               "with a junction diode; identified when configured";
  spec.serial = expected_serial.empty() ? address.text : expected_serial;
  spec.firmware = "unknown until configured";
  ScpiCircuit::Options options{.vmax_v = spec.input_max,
                               .timeout = std::chrono::milliseconds(timeout_ms),
                               .expected_serial = std::move(expected_serial),
                               .address = address.text};
  return std::make_unique<ScpiCircuit>(std::move(datasheet), std::move(transport),
                                       std::move(options));
}

}  // namespace

PhysicalSystemPtr make_scpi_circuit(const DeviceAddress& address) {
  return build(address, nullptr, address.get("serial", ""));
}

PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address, fw::TransportPtr transport) {
  return make_scpi_circuit_over(address, std::move(transport), address.get("serial", ""));
}

PhysicalSystemPtr make_scpi_circuit_over(const DeviceAddress& address, fw::TransportPtr transport,
                                         std::string expected_serial) {
  if (!transport) throw std::invalid_argument("make_scpi_circuit_over: null transport");
  return build(address, std::move(transport), std::move(expected_serial));
}

}  // namespace pnn::drivers

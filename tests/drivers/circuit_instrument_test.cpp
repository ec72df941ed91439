// The simulated AWG + digitizer of the electronic bench, spoken to over the in-process loopback
// the way a host would: identification, the status registers and the error queue, uploads and
// their range and limit checks, acquisitions, trace formats, and injected resets, NaNs and
// unplugging.
#include "../../drivers/sim/src/circuit_instrument.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <thread>

#include "../../drivers/src/scpi_client.hpp"

using namespace pnn;
using namespace pnn::drivers;
using namespace std::chrono_literals;
namespace fw = pnn::firmware_iface;

namespace {

struct Bench {
  std::shared_ptr<sim::CircuitInstrument> instrument;
  ScpiClient client;

  explicit Bench(const std::string& address, std::chrono::milliseconds timeout = 2000ms)
      : instrument(sim::make_circuit_instrument(DeviceAddress::parse(address))),
        client(fw::make_loopback_transport(instrument), timeout) {
    REQUIRE_FALSE(client.open());
  }
  std::string ask(const std::string& query) {
    auto r = client.query(query);
    REQUIRE_MESSAGE(r, query << ": " << r.error().message());
    return r.value();
  }
  void send(const std::string& message) { REQUIRE_FALSE(client.write(message)); }
  std::string next_error() { return ask("SYST:ERR?"); }
};

std::string int16_block(const std::vector<int>& codes, bool big_endian) {
  std::vector<std::uint8_t> bytes;
  for (const int c : codes) {
    const auto u = static_cast<std::uint16_t>(static_cast<std::int16_t>(c));
    bytes.push_back(static_cast<std::uint8_t>(big_endian ? u >> 8 : u & 0xFF));
    bytes.push_back(static_cast<std::uint8_t>(big_endian ? u & 0xFF : u >> 8));
  }
  return fw::scpi::format_block(bytes);
}

std::string float_block(const std::vector<float>& values) {  // big-endian (FORM:BORD NORM)
  std::vector<std::uint8_t> bytes;
  for (const float f : values) {
    const auto u = std::bit_cast<std::uint32_t>(f);
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<std::uint8_t>(u >> s));
  }
  return fw::scpi::format_block(bytes);
}

// The data of a block reply, as raw bytes.
std::string block_data(const std::string& reply) {
  auto args = fw::scpi::parse_arguments(reply);
  REQUIRE(args);
  REQUIRE(args->size() == 1);
  REQUIRE(args->front().kind == fw::scpi::Argument::Kind::kBlock);
  return args->front().text;
}

std::vector<float> floats_le(const std::string& data) {
  std::vector<float> out(data.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<unsigned char>(data[i * 4 + b]);
    out[i] = std::bit_cast<float>(u);
  }
  return out;
}

std::vector<int> int16s_le(const std::string& data) {
  std::vector<int> out(data.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto u = static_cast<std::uint16_t>(static_cast<unsigned char>(data[2 * i]) |
                                              static_cast<unsigned char>(data[2 * i + 1]) << 8);
    out[i] = static_cast<std::int16_t>(u);
  }
  return out;
}

}  // namespace

TEST_CASE("circuit instrument: identity, status registers and the error queue (SCPI 1999)") {
  Bench b("sim://electronic-circuit?seed=3");
  CHECK(b.ask("*IDN?") == "PNN-HIL,AWGDIG-100,SIM-RLC-3,1.0-sim");
  CHECK(b.ask("*ESR?") == "128");  // power-on
  CHECK(b.ask("*ESR?") == "0");    // read and cleared
  CHECK(b.next_error() == "0,\"No error\"");

  b.send("FOO:BAR 1");
  CHECK(b.ask("*ESR?") == "32");  // command error
  CHECK(b.next_error() == "-113,\"Undefined header\"");
  b.send("SOUR:FUNC:ARB:SRAT 2e6");
  CHECK(b.ask("*ESR?") == "16");  // execution error
  CHECK(b.next_error().starts_with("-222,\"Data out of range"));
  b.send("SOUR:FUNC:ARB:SRAT ,,");
  CHECK(b.next_error() == "-102,\"Syntax error\"");
  b.send("OUTP MAYBE");
  CHECK(b.next_error().starts_with("-224,"));
  b.send("ACQ:SRAT 1e5 V");
  CHECK(b.next_error().starts_with("-131,"));
  b.send("OUTP");
  CHECK(b.next_error() == "-109,\"Missing parameter\"");
  b.send("*CLS 1");
  CHECK(b.next_error() == "-108,\"Parameter not allowed\"");

  // Long and short forms, optional nodes, compound messages with one response message.
  CHECK(b.ask("SOUR:FUNC:ARB:SRAT 5e5;:source:function:arbitrary:srate?") == "500000");
  CHECK(b.ask("FUNC:ARB:SRAT?;:ACQ:SRAT?;:OUTP:STAT?") == "500000;1e+06;0");
  CHECK(b.ask("*ESE 36;*ESE?") == "36");
  b.send("*ESE 300");
  CHECK(b.next_error().starts_with("-222,"));

  // *RST keeps the error queue, *CLS clears it; an undefined header ends its message.
  b.send("BOGUS;:OUTP ON");
  CHECK(b.ask("OUTP?") == "0");
  b.send("*RST");
  CHECK(b.ask("SYST:ERR:COUN?") == "1");
  CHECK(b.ask("*STB?") == "36");  // error available (4), and a CME enabled by *ESE 36 (32)
  b.send("*CLS");
  CHECK(b.ask("SYST:ERR:COUN?") == "0");
  CHECK(b.ask("SOUR:FUNC:ARB:SRAT?") == "1e+06");  // *RST restored the default

  // 30 entries; the newest is replaced by -350 on overflow, the oldest survive.
  for (int i = 0; i < 35; ++i) b.send("NOPE" + std::to_string(i));
  CHECK(b.ask("SYST:ERR:COUN?") == "30");
  CHECK(b.next_error() == "-113,\"Undefined header\"");
  for (int i = 0; i < 28; ++i) b.next_error();
  CHECK(b.next_error() == "-350,\"Queue overflow\"");
  CHECK(b.next_error() == "0,\"No error\"");
  CHECK(b.instrument->num_errors(-113) == 37);
}

TEST_CASE(
    "circuit instrument: uploads are range- and limit-checked, refusals are -222 and counted") {
  Bench b("sim://electronic-circuit?seed=1");
  b.send("SOUR:VOLT:LIM:LOW -2;:SOUR:VOLT:LIM:HIGH 2;:SOUR:VOLT:LIM:STAT ON");
  CHECK(b.ask("SOUR:VOLT:LIM:LOW?;:SOUR:VOLT:LIM:HIGH?;:SOUR:VOLT:LIM:STAT?") == "-2;2;1");
  const int at_2v = 6553;  // 6553 · 10 / 32767 = 1.99988 V
  REQUIRE(sim::CircuitInstrument::dac_volts(at_2v) <= 2.0);
  REQUIRE(sim::CircuitInstrument::dac_volts(at_2v + 1) > 2.0);

  b.send("SOUR:DATA:ARB:DAC OK1," + int16_block({0, at_2v, -at_2v, 100}, true));
  CHECK(b.next_error() == "0,\"No error\"");
  b.send("SOUR:DATA:ARB:DAC TOOHIGH," + int16_block({0, at_2v + 1}, true));
  CHECK(b.next_error().starts_with("-222,\"Data out of range; the waveform leaves the voltage"));
  b.send("FORM:BORD SWAP;:SOUR:DATA:ARB:DAC LE," + int16_block({-at_2v, 7, 8}, false));
  CHECK(b.next_error() == "0,\"No error\"");
  b.send("FORM:BORD NORM;:SOUR:DATA:ARB:DAC BAD," + int16_block({-32768}, true));
  CHECK(b.next_error() == "-222,\"Data out of range; DAC codes are -32767 to +32767\"");
  b.send("SOUR:DATA:ARB FLT," + float_block({0.1f, -0.2f}));  // ±1 V: inside the limits
  CHECK(b.next_error() == "0,\"No error\"");
  b.send("SOUR:DATA:ARB FLT2," + float_block({0.1f, 1.5f}));
  CHECK(b.next_error() == "-222,\"Data out of range; normalized values are -1 to +1\"");
  b.send("SOUR:DATA:ARB FLT3," + float_block({std::nanf("")}));
  CHECK(b.next_error().starts_with("-222,"));
  b.send("SOUR:DATA:ARB FLT4," + float_block({0.5f}));  // 5 V: beyond the 2 V limit
  CHECK(b.next_error().starts_with("-222,\"Data out of range; the waveform leaves"));
  CHECK(b.instrument->status().out_of_range == 5);

  b.send("SOUR:DATA:ARB:DAC ODD,#13abc");
  CHECK(b.next_error().starts_with("-161,"));
  b.send("SOUR:DATA:ARB:DAC NUM,5");
  CHECK(b.next_error().starts_with("-104,"));
  b.send("SOUR:DATA:ARB:DAC 9X," + int16_block({1}, true));
  CHECK(b.next_error().starts_with("-224,"));
  b.send("SOUR:DATA:ARB:DAC BAD,#Z1");  // no length digit after '#'
  CHECK(b.next_error() == "-161,\"Invalid block data\"");
  b.send("SOUR:VOLT:LIM:HIGH -3");
  CHECK(b.next_error().starts_with("-221,"));

  CHECK(b.ask("SOUR:DATA:VOL:CAT?") == "\"FLT\",\"LE\",\"OK1\"");
  CHECK(b.ask("SOUR:DATA:VOL:FREE?") == std::to_string((1 << 22) - 9));
  b.send("SOUR:FUNC:ARB NOSUCH");
  CHECK(b.next_error().starts_with("-224,"));
  b.send("SOUR:FUNC:ARB ok1");
  CHECK(b.ask("SOUR:FUNC:ARB?") == "\"OK1\"");
  b.send("SOUR:DATA:VOL:CLE");
  CHECK(b.ask("SOUR:DATA:VOL:CAT?;:SOUR:FUNC:ARB?") == "\"\";\"\"");
  CHECK(b.instrument->status().stored_points == 0);
}

TEST_CASE("circuit instrument: segmented acquisitions, trace formats, output off is 0 V") {
  Bench b("sim://electronic-circuit?seed=2");
  // Two runs of four 1 µs points at +5 V: the capacitor charges during each run, from 0 V.
  const int code_5v = 16384;
  b.send(
      "FORM:BORD SWAP;:SOUR:DATA:ARB:DAC W," +
      int16_block({code_5v, code_5v, code_5v, code_5v, code_5v, code_5v, code_5v, code_5v}, false) +
      ";:SOUR:FUNC:ARB W;:ACQ:SEGM:COUN 2;:TRIG:SOUR BUS;:OUTP ON");
  CHECK(b.ask("ACQ:POIN?") == "4");
  b.send("*TRG");
  CHECK(b.next_error() == "-211,\"Trigger ignored\"");  // not armed
  b.send("INIT");
  CHECK(block_data(b.ask("WAV:DATA?")).empty());  // armed, not triggered yet
  CHECK(b.next_error().starts_with("-230,"));
  b.send("INIT");
  CHECK(b.next_error().starts_with("-213,"));
  CHECK(b.ask("*TRG;*OPC?") == "1");
  CHECK(b.ask("WAV:POIN?") == "8");
  b.send("WAV:FORM REAL");
  const auto v = floats_le(block_data(b.ask("WAV:DATA?")));
  REQUIRE(v.size() == 8);
  for (int run = 0; run < 2; ++run) {
    INFO("run " << run << ": " << v[4 * run] << " " << v[4 * run + 1] << " " << v[4 * run + 2]);
    CHECK(v[4 * run] > 0.01);
    CHECK(v[4 * run + 3] > v[4 * run]);  // still charging
    CHECK(v[4 * run + 3] < 5.0);
  }
  CHECK(std::abs(v[3] - v[7]) < 0.05);  // both runs start discharged: the same up to noise
  // WORD: 14-bit codes, volts = code · YINC + YORigin.
  b.send("WAV:FORM WORD");
  const auto codes = int16s_le(block_data(b.ask("WAV:DATA?")));
  const double yinc = std::stod(b.ask("WAV:YINC?")), yor = std::stod(b.ask("WAV:YOR?"));
  REQUIRE(codes.size() == 8);
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(codes[i] >= -8192);
    CHECK(codes[i] <= 8191);
    CHECK(std::abs(codes[i] * yinc + yor - v[i]) < 1e-5);
  }
  CHECK(b.instrument->status().acquisitions == 1);
  CHECK(b.instrument->status().runs == 2);

  // Output off: the relay is open, the circuit sees 0 V.
  b.send("OUTP OFF;:WAV:FORM REAL;:INIT;*TRG");
  for (const float x : floats_le(block_data(b.ask("WAV:DATA?")))) CHECK(std::abs(x) < 0.02);
  // The AWG at half the digitizer's rate: two samples per point.
  b.send("SOUR:FUNC:ARB:SRAT 5e5");
  CHECK(b.ask("ACQ:POIN?") == "8");
  CHECK(b.ask("INIT;*TRG;*OPC?;:WAV:POIN?") == "1;16");
  // Settings conflicts refuse INIT.
  b.send("ACQ:SRAT 3e5;:INIT");
  CHECK(b.next_error().starts_with("-221,\"Settings conflict; the digitizer's sample rate"));
  b.send("ACQ:SRAT 1e6;:ACQ:SEGM:COUN 3;:INIT");
  CHECK(b.next_error().starts_with("-221,\"Settings conflict; the waveform's 8 points"));
  b.send("SOUR:DATA:VOL:CLE;:ACQ:SEGM:COUN 1;:INIT");
  CHECK(b.next_error().starts_with("-221,\"Settings conflict; no arbitrary waveform"));
  // Limits switched on after the upload still guard the output: INIT refuses.
  b.send("SOUR:DATA:ARB:DAC W," + int16_block({code_5v, code_5v}, false) +
         ";:SOUR:FUNC:ARB W;:SOUR:VOLT:LIM:HIGH 4;:SOUR:VOLT:LIM:STAT ON;:INIT");
  CHECK(b.next_error().starts_with("-222,\"Data out of range; the waveform leaves"));
  CHECK(b.instrument->status().acquisitions == 3);
}

TEST_CASE(
    "circuit instrument: an injected reset is a power-on: waveform and output lost, PON set") {
  // Commands: 1 *CLS, 2 OUTP ON, 3 the upload, 4 the select, 5 *ESR? (reset before it runs).
  Bench b("sim://electronic-circuit?seed=1&faults=reset_after:5");
  b.send("*CLS");
  b.send("OUTP ON");
  b.send("SOUR:DATA:ARB:DAC W," + int16_block({100, 200}, true));
  b.send("SOUR:FUNC:ARB W");
  CHECK(b.ask("*ESR?") == "128");
  CHECK(b.ask("OUTP?;:SOUR:DATA:VOL:CAT?;:SOUR:FUNC:ARB?") == "0;\"\";\"\"");
  CHECK(b.instrument->num_power_ons() == 2);
  CHECK(b.instrument->fault_stats().resets == 1);
}

TEST_CASE("circuit instrument: injected NaN readings (REAL: NaN, WORD: the -32768 marker)") {
  Bench b("sim://electronic-circuit?seed=1&faults=nan:1");
  b.send("FORM:BORD SWAP;:SOUR:DATA:ARB:DAC W," + int16_block({1000, 2000, 3000}, false) +
         ";:SOUR:FUNC:ARB W;:OUTP ON;:INIT;:WAV:FORM REAL");
  const auto v = floats_le(block_data(b.ask("WAV:DATA?")));
  CHECK(std::count_if(v.begin(), v.end(), [](float f) { return std::isnan(f); }) == 1);
  b.send("WAV:FORM WORD");
  const auto c = int16s_le(block_data(b.ask("WAV:DATA?")));
  CHECK(std::count(c.begin(), c.end(), -32768) == 1);
  CHECK(b.instrument->fault_stats().nans == 2);
}

TEST_CASE("circuit instrument: unplugged, it refuses the link, then returns power-cycled") {
  Bench b("sim://electronic-circuit?seed=1&faults=unplug_after:2,unplug_ms:150", 100ms);
  b.send("OUTP ON");
  auto r = b.client.query("*IDN?");  // the second command: the instrument drops off the bus
  REQUIRE_FALSE(r);
  CHECK(r.error() == fw::Errc::kDisconnected);
  CHECK(b.client.open() == fw::Errc::kDisconnected);
  std::error_code ec = fw::Errc::kDisconnected;
  for (int i = 0; i < 200 && ec; ++i) {
    std::this_thread::sleep_for(10ms);
    ec = b.client.open();
  }
  REQUIRE_FALSE(ec);
  CHECK(b.ask("*ESR?;:OUTP?") == "128;0");
  CHECK(b.instrument->fault_stats().unplugs == 1);
}

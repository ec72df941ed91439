// Writes the generated part of the checked-in seed corpora (fuzz/corpus/<target>/gen-*): valid
// frames of every message type, valid SCPI programs and USBTMC transfers, each prefixed with the
// option bytes its harness reads. Hand-made hard cases (regressions) sit beside them, named
// after the issue that found them. Regenerate with: bash fuzz/run.sh --make-seeds
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "pnn/firmware_iface/usbtmc.hpp"

using namespace pnn::firmware_iface;
namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

void write(const fs::path& dir, const std::string& name, std::uint8_t opt0, std::uint8_t opt1,
           const Bytes& body) {
  fs::create_directories(dir);
  std::ofstream f(dir / ("gen-" + name), std::ios::binary | std::ios::trunc);
  f.put(static_cast<char>(opt0));
  f.put(static_cast<char>(opt1));
  f.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
  if (!f) throw std::runtime_error("cannot write " + (dir / name).string());
}

void frame_seeds(const fs::path& dir) {
  const std::vector<std::pair<std::string, Message>> messages = {
      {"identify", IdentifyRequest{}},
      {"identify_reply", IdentifyReply{"SIM-OSC-1", "mechanical-oscillators", "1.4.2"}},
      {"capabilities", CapabilitiesRequest{}},
      {"capabilities_reply",
       CapabilitiesReply{4, 4, 6, 32, {{"theta", 4, -1.0, 1.0}, {"bias", 2, 0.0, 5.0}}}},
      {"set_parameters", SetParameters{{0.5, -0.25, 1.0, 0.0}}},
      {"load_input_batch", LoadInputBatch{2, 3, {0.1, 0.2, 0.3, 0.4, 0.5, 0.6}}},
      {"run", RunRequest{}},
      {"read_outputs", ReadOutputsRequest{}},
      {"outputs_reply", OutputsReply{1, 2, {1.5, -2.5}}},
      {"status", StatusRequest{}},
      {"status_reply", StatusReply{DeviceState::kOutputsReady, Health::kWarning, 3, 10, 1, 2, 5}},
      {"abort", AbortRequest{}},
      {"self_test", SelfTestRequest{}},
      {"self_test_reply", SelfTestReply{true, "all 64 channels ok"}},
      {"ack", Ack{MessageType::kRun}},
      {"error_reply", ErrorReply{3, "theta[2] = 5 outside [-1, 1]"}},
      {"describe", DescribeRequest{}},
      {"describe_reply",
       DescribeReply{1, "tanh-mixer", 4, 3, 15, 64, "V", -1.0, 1.0, "1", 0.01,
                     {{"W", "1", "mixing weights", 12, -2.0, 2.0},
                      {"b", "V", "offsets", 3, -0.5, 0.5}}}},
      // boundary 1 = nudged (β, target per sample), warm start on; the reply's node voltages.
      {"settle", SettleRequest{1, 0.05, true, 2, 2, {0.1, -0.2, 1.0, 0.0}}},
      {"settle_reply", SettleReply{2, 3, {0.5, -0.5, 0.25, 0.0, 1.0, -1.0}}},
      // Two samples of input events (step, channel), the second empty; the reply's outputs,
      // hidden spikes (step, neuron) and 2 steps x 2 channels of 8-bit membrane codes.
      {"spike_run", SpikeRunRequest{{{{2, 0}, {2, 3}, {14, 4}}, {}}}},
      {"spike_run_reply",
       SpikeRunReply{2, 2, {0.5, -1.0, 2.0, 0.25}, {{{3, 1}, {5, 0}, {5, 7}}, {}}, 2, 2, -1.0,
                     5.0, {0, 42, 255, 7, 1, 2, 3, 4}}},
  };
  Bytes stream;
  for (const auto& [name, m] : messages) {
    Bytes one;
    encode_message(m, 7, one);
    // mode = the message type (the harness also decodes the raw input as that type, and its low
    // six bits set the decoder's maximum payload); chunking 0 = feed at once.
    write(dir, name, static_cast<std::uint8_t>(message_type(m)), 0, one);
    stream.insert(stream.end(), one.begin(), one.end());
  }
  write(dir, "stream-chunked", 0xFF, 5, stream);  // every frame in 5-byte pieces
}

void scpi_seeds(const fs::path& dir) {
  const std::vector<std::pair<std::string, std::string>> programs = {
      {"idn", "*IDN?\n"},
      {"compound", ":SOUR:VOLT 1.25;:OUTP ON;*OPC?\n"},
      {"strings", "SYST:ERR? \"quoted \"\"text\"\"\",'single'\n"},
      {"block", ":DATA #15hello,#0tail\n"},
      {"numbers", "CONF 1e-3,-2.5E+2,INF,NAN,#H1F,#B101\n"},
  };
  for (const auto& [name, text] : programs) {
    // mode: max message 1 + 127·4 bytes, binary blocks on (0x80); chunk 1 + 3.
    write(dir, name, 0xFF, 3, Bytes(text.begin(), text.end()));
  }
}

void usbtmc_seeds(const fs::path& dir) {
  const std::string text = "*IDN?\n";
  const Bytes payload(text.begin(), text.end());
  Bytes in;
  usbtmc::encode_dev_dep_msg_in(0x05, payload, /*eom=*/true, in);
  write(dir, "dev_dep_msg_in", 0x05, 16, in);
  Bytes out;
  usbtmc::encode_dev_dep_msg_out(0x05, payload, /*eom=*/true, out);
  write(dir, "dev_dep_msg_out", 0x05, 0, out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds CORPUS_ROOT\n");
    return 2;
  }
  const fs::path root = argv[1];
  frame_seeds(root / "frame_decoder");
  scpi_seeds(root / "scpi");
  usbtmc_seeds(root / "usbtmc");
  return 0;
}

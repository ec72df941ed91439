// The golden frames of tests/data/frames (shared with the Python board side, pnn_device): the
// C++ codec must encode the same messages to exactly these bytes and decode them back.
#include <doctest/doctest.h>

#include <fstream>
#include <string>
#include <vector>

#include "pnn/common/hex.hpp"
#include "pnn/firmware_iface/messages.hpp"

using namespace pnn::firmware_iface;

namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes read_hex(const std::string& name) {
  const std::string path = std::string(PNN_SOURCE_DIR) + "/tests/data/frames/" + name + ".hex";
  std::ifstream f(path);
  REQUIRE_MESSAGE(f, "cannot open " << path);
  std::string text;
  f >> text;
  REQUIRE(text.size() % 2 == 0);
  Bytes out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoul(text.substr(i, 2), nullptr, 16)));
  }
  return out;
}

DescribeReply golden_description() {
  return DescribeReply{1, "tanh-mixer", 4, 3, 15, 64, "V", -1.0, 1.0, "1", 0.01,
                       {{"W", "1", "mixing weights", 12, -2.0, 2.0},
                        {"b", "V", "offsets", 3, -0.5, 0.5}}};
}

struct Golden {
  const char* name;
  std::uint32_t seq;
  Message message;
};

std::vector<Golden> golden() {
  return {
      {"identify", 1, IdentifyRequest{}},
      {"identify_reply", 1, IdentifyReply{"TANH-MIX-01", "tanh mixer", "demo-1.0"}},
      {"describe", 2, DescribeRequest{}},
      {"describe_reply", 2, golden_description()},
      {"capabilities_reply", 3,
       CapabilitiesReply{4, 3, 15, 64, {{"W", 12, -2.0, 2.0}, {"b", 3, -0.5, 0.5}}}},
      {"set_parameters", 4, SetParameters{{0.5, -0.25, 1.0}}},
      {"load_input_batch", 5, LoadInputBatch{2, 2, {0.1, -0.2, 0.3, 1.0}}},
      {"ack", 5, Ack{MessageType::kLoadInputBatch}},
      {"run", 6, RunRequest{}},
      {"outputs_reply", 7, OutputsReply{1, 3, {0.25, -0.5, 0.75}}},
      {"status_reply", 8, StatusReply{DeviceState::kOutputsReady, Health::kOk, 0, 7, 1, 2, 1}},
      {"error_reply", 9, ErrorReply{3, "parameter W[2] = 5 outside [-2, 2]: refused"}},
  };
}

}  // namespace

TEST_CASE("golden frames: the C++ codec encodes and decodes the frames shared with pnn_device") {
  for (const Golden& g : golden()) {
    CAPTURE(g.name);
    const Bytes file = read_hex(g.name);
    Bytes mine;
    encode_message(g.message, g.seq, mine);
    CHECK(pnn::common::to_hex({reinterpret_cast<const char*>(mine.data()), mine.size()}) ==
          pnn::common::to_hex({reinterpret_cast<const char*>(file.data()), file.size()}));
    auto frame = decode_frame(file);
    REQUIRE(frame);
    CHECK(frame->header.seq == g.seq);
    CHECK(frame->header.type == message_type(g.message));
    auto back = decode_message(*frame);
    REQUIRE(back);
    CHECK(*back == g.message);
  }
}

TEST_CASE("golden frames: the shared description is one a host accepts") {
  CHECK(describe_problem(golden_description()).empty());
}

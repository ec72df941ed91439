#include "pnn/firmware_iface/messages.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <vector>

using namespace pnn::firmware_iface;

namespace {

using Bytes = std::vector<std::uint8_t>;

std::vector<Message> sample_messages() {
  const double inf = std::numeric_limits<double>::infinity();
  return {
      IdentifyRequest{},
      IdentifyReply{"SN-0042", "PNN-OSC-8", "1.4.2+g3af"},
      IdentifyReply{"", "", ""},
      CapabilitiesRequest{},
      CapabilitiesReply{.num_inputs = 8,
                        .num_outputs = 8,
                        .num_params = 10,
                        .max_batch = 512,
                        .blocks = {{"drive_amplitude", 8, -1.5, 1.5}, {"coupling", 2, 0.0, inf}}},
      CapabilitiesReply{},
      SetParameters{{0.5, -0.25, 1e-300, -0.0, 3.0}},
      SetParameters{},
      LoadInputBatch{2, 3, {1, 2, 3, 4, 5, 6}},
      LoadInputBatch{0, 7, {}},
      RunRequest{},
      ReadOutputsRequest{},
      OutputsReply{3, 1, {-1.0, 0.0, 1.0}},
      StatusRequest{},
      StatusReply{DeviceState::kOutputsReady, Health::kWarning, -7, 1, 2, 3, 0xFFFFFFFFFFFFFFFFull},
      AbortRequest{},
      SelfTestRequest{},
      SelfTestReply{true, "dac ok\nadc ok"},
      SelfTestReply{false, std::string(kMaxStringBytes, 'x')},
      Ack{MessageType::kSetParameters},
      ErrorReply{42, "parameter 3 above limit"},
      DescribeRequest{},
      DescribeReply{1, "x", 2, 1, 2, 8, "V", -1.0, 1.0, "1", 0.0, {{"g", "1", "", 2, 0.0, 1.0}}},
      SettleRequest{2, 0.0, true, 1, 2, {0.1, -0.2}},
      SettleReply{1, 3, {0.01, 0.02, -0.03}},
      SpikeRunRequest{{{{0, 1}, {0, 4}, {7, 2}}, {}, {{39, 0}}}},
      SpikeRunRequest{},
      SpikeRunReply{2, 1, {0.5, -0.5}, {{{1, 3}, {2, 0}}, {}}, 2, 2, -1.0, 5.0, {0, 1, 2, 255, 4, 5, 6, 7}},
      SpikeRunReply{},
  };
}

Bytes payload_of(const Message& m) {
  Bytes p;
  encode_payload(m, p);
  return p;
}

}  // namespace

TEST_CASE("messages: every message type round-trips through a frame and the stream decoder") {
  const auto messages = sample_messages();
  // Every alternative of the variant is covered.
  std::vector<bool> seen(std::variant_size_v<Message>, false);
  Bytes stream;
  std::uint32_t seq = 100;
  for (const Message& m : messages) {
    seen[m.index()] = true;
    encode_message(m, seq++, stream);
  }
  CHECK(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  FrameDecoder d({.max_payload_bytes = 1u << 17});
  d.feed(stream);
  seq = 100;
  std::size_t i = 0;
  while (auto f = d.next()) {
    REQUIRE(i < messages.size());
    CHECK(f->header.seq == seq++);
    CHECK(f->header.type == message_type(messages[i]));
    auto decoded = decode_message(*f);
    REQUIRE(decoded);
    CHECK(*decoded == messages[i]);
    ++i;
  }
  CHECK(i == messages.size());
  CHECK(d.stats().errors() == 0);
}

TEST_CASE("messages: payload layouts match hand-computed bytes") {
  CHECK(payload_of(ErrorReply{-2, "ab"}) == Bytes{0xFE, 0xFF, 0xFF, 0xFF, 0x02, 0x00, 'a', 'b'});
  CHECK(payload_of(Ack{MessageType::kRun}) == Bytes{0x05});
  CHECK(payload_of(RunRequest{}).empty());
  CHECK(payload_of(SetParameters{{1.0}}) ==
        Bytes{0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F});  // 1.0 = 0x3FF0000000000000
  CHECK(payload_of(LoadInputBatch{1, 1, {-2.0}}) ==
        Bytes{1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xC0});
  const Bytes status =
      payload_of(StatusReply{DeviceState::kRunning, Health::kFault, 1, 2, 3, 4, 5});
  REQUIRE(status.size() == 2 + 4 + 32);
  CHECK(status[0] == 2);
  CHECK(status[1] == 2);
  CHECK(status[2] == 1);
  CHECK(status[6] == 2);
  CHECK(status[30] == 5);
  CHECK(message_type(StatusReply{}) == MessageType::kStatusReply);
  CHECK(message_type(LoadInputBatch{}) == MessageType::kLoadInputBatch);
}

TEST_CASE("messages: every strict prefix and any extra byte of a payload is rejected") {
  for (const Message& m : sample_messages()) {
    const Bytes p = payload_of(m);
    const MessageType t = message_type(m);
    INFO("type " << to_string(t) << " payload " << p.size() << " bytes");
    for (std::size_t n = 0; n < p.size(); n += (p.size() > 1000 ? 997 : 1)) {
      const auto r = decode_payload(t, std::span(p).first(n));
      REQUIRE(!r);
      CHECK(r.error() == Errc::kTruncated);
    }
    Bytes longer = p;
    longer.push_back(0);
    const auto r = decode_payload(t, longer);
    REQUIRE(!r);
    // A trailing zero may also complete a longer prefix (e.g. a count) and leave bytes short.
    CHECK((r.error() == Errc::kTrailingBytes || r.error() == Errc::kTruncated));
  }
}

TEST_CASE("messages: lying counts and out-of-domain fields are rejected") {
  // A count of 2^32 - 1 doubles with 8 bytes present: rejected before any allocation.
  Bytes p = {0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(decode_payload(MessageType::kSetParameters, p).error() == Errc::kTruncated);
  // rows * cols overflowing 32 bits.
  p = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(decode_payload(MessageType::kLoadInputBatch, p).error() == Errc::kTruncated);
  CHECK(decode_payload(MessageType::kOutputsReply, p).error() == Errc::kTruncated);
  // Block count far beyond the bytes present.
  p = payload_of(CapabilitiesReply{});
  p[16] = 0xFF;
  CHECK(decode_payload(MessageType::kCapabilitiesReply, p).error() == Errc::kTruncated);

  auto caps = CapabilitiesReply{.num_params = 3, .blocks = {{"a", 2, 0, 1}}};
  CHECK(decode_payload(MessageType::kCapabilitiesReply, payload_of(caps)).error() ==
        Errc::kInconsistent);
  caps = CapabilitiesReply{.num_params = 2, .blocks = {{"a", 2, 1, 0}}};  // min > max
  CHECK(decode_payload(MessageType::kCapabilitiesReply, payload_of(caps)).error() ==
        Errc::kBadValue);
  caps.blocks[0].min = std::nan("");
  CHECK(decode_payload(MessageType::kCapabilitiesReply, payload_of(caps)).error() ==
        Errc::kBadValue);

  Bytes status = payload_of(StatusReply{});
  status[0] = 5;  // no such DeviceState
  CHECK(decode_payload(MessageType::kStatusReply, status).error() == Errc::kBadValue);
  status[0] = 0;
  status[1] = 3;  // no such Health
  CHECK(decode_payload(MessageType::kStatusReply, status).error() == Errc::kBadValue);

  Bytes self_test = payload_of(SelfTestReply{true, "x"});
  self_test[0] = 2;  // bools are 0 or 1
  CHECK(decode_payload(MessageType::kSelfTestReply, self_test).error() == Errc::kBadValue);

  CHECK(decode_payload(MessageType::kAck, Bytes{0x42}).error() == Errc::kBadValue);
  CHECK(decode_payload(static_cast<MessageType>(0x42), {}).error() == Errc::kUnknownMessageType);
  // Strings announce more bytes than present.
  CHECK(decode_payload(MessageType::kErrorReply, Bytes{1, 0, 0, 0, 5, 0, 'a'}).error() ==
        Errc::kTruncated);
}

TEST_CASE("messages: encoding an impossible message throws and leaves the buffer as it was") {
  Bytes out = {7, 7};
  CHECK_THROWS_AS(encode_message(LoadInputBatch{2, 2, {1, 2, 3}}, 1, out), std::invalid_argument);
  CHECK(out == Bytes{7, 7});
  CHECK_THROWS_AS(encode_message(ErrorReply{1, std::string(kMaxStringBytes + 1, 'e')}, 1, out),
                  std::invalid_argument);
  CHECK(out == Bytes{7, 7});
  const std::vector<double> data(6, 1.0);
  CHECK_THROWS_AS(encode_batch_message(MessageType::kRun, 1, 2, 3, data, out),
                  std::invalid_argument);
  CHECK_THROWS_AS(encode_batch_message(MessageType::kOutputsReply, 1, 4, 3, data, out),
                  std::invalid_argument);
  CHECK(out == Bytes{7, 7});
}

TEST_CASE("messages: batch fast path matches the generic encoder and reuses storage") {
  std::vector<double> data(5000);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = 0.001 * static_cast<double>(i) - 1.0;
  Bytes fast, generic;
  encode_batch_message(MessageType::kLoadInputBatch, 9, 50, 100, data, fast);
  encode_message(LoadInputBatch{50, 100, data}, 9, generic);
  CHECK(fast == generic);

  auto f = decode_frame(fast, 1u << 20);
  REQUIRE(f);
  std::uint32_t rows = 0, cols = 0;
  std::vector<double> out;
  out.reserve(data.size());
  const double* storage = out.data();
  CHECK(!decode_batch_payload(f->payload, rows, cols, out));
  CHECK(rows == 50);
  CHECK(cols == 100);
  CHECK(out == data);
  CHECK(out.data() == storage);
  CHECK(decode_batch_payload(f->payload.first(f->payload.size() - 1), rows, cols, out) ==
        Errc::kTruncated);
}

TEST_CASE("messages: spike_run layouts, lying event counts and bad trace scales") {
  // u32 samples, u16 count, (u16 step, u16 channel) pairs.
  CHECK(payload_of(SpikeRunRequest{{{{2, 3}}}}) == Bytes{1, 0, 0, 0, 1, 0, 2, 0, 3, 0});
  CHECK(message_type(SpikeRunRequest{}) == MessageType::kSpikeRun);
  CHECK(message_type(SpikeRunReply{}) == MessageType::kSpikeRunReply);
  CHECK(to_string(MessageType::kSpikeRun) == "spike_run");
  CHECK(to_string(MessageType::kSpikeRunReply) == "spike_run_reply");
  CHECK(is_known_message_type(0x0C));
  CHECK(is_known_message_type(0x8C));
  // 2^32 - 1 samples announced in 6 bytes: refused before anything is allocated.
  CHECK(decode_payload(MessageType::kSpikeRun, Bytes{0xFF, 0xFF, 0xFF, 0xFF, 0, 0}).error() ==
        Errc::kTruncated);
  // One sample announcing 65535 events with one present.
  CHECK(decode_payload(MessageType::kSpikeRun, Bytes{1, 0, 0, 0, 0xFF, 0xFF, 1, 0, 1, 0})
            .error() == Errc::kTruncated);
  const SpikeRunReply reply{1, 1, {2.0}, {{{1, 2}}}, 1, 1, -1.0, 5.0, {9}};
  const Bytes good = payload_of(reply);
  REQUIRE(decode_payload(MessageType::kSpikeRunReply, good));
  CHECK(reply.membrane(255) == 5.0);
  CHECK(reply.membrane(0) == -1.0);
  // Offsets: rows 0, cols 4, outputs 8, samples 16, count 20, event 24, steps 28, channels 30,
  // lo 32, hi 40, codes 48.
  Bytes p = good;
  p[16] = 2;  // samples != rows
  CHECK(decode_payload(MessageType::kSpikeRunReply, p).error() == Errc::kInconsistent);
  p = good;
  p[22] = 0xFF;  // the hidden event count lies: 0xFF0001 events in 4 bytes
  CHECK(decode_payload(MessageType::kSpikeRunReply, p).error() == Errc::kTruncated);
  p = good;
  p[29] = 0xFF;  // trace steps far beyond the codes present
  CHECK(decode_payload(MessageType::kSpikeRunReply, p).error() == Errc::kTruncated);
  SpikeRunReply bad = reply;
  bad.trace_hi = bad.trace_lo;  // a flat ADC scale
  CHECK(decode_payload(MessageType::kSpikeRunReply, payload_of(bad)).error() == Errc::kBadValue);
  bad.trace_hi = std::nan("");
  CHECK(decode_payload(MessageType::kSpikeRunReply, payload_of(bad)).error() == Errc::kBadValue);
  // Encoding an inconsistent reply is a caller bug.
  bad = reply;
  bad.hidden.clear();
  Bytes out;
  CHECK_THROWS_AS(encode_message(bad, 1, out), std::invalid_argument);
  bad = reply;
  bad.trace_codes.push_back(0);
  CHECK_THROWS_AS(encode_message(bad, 1, out), std::invalid_argument);
  CHECK(out.empty());
  CHECK(to_string(DeviceError::kBadEvents) == "bad event list");
}

TEST_CASE("messages: event_list_problem names the first bad event and the fix") {
  const EventLimits limits{10, 5, 2, 4, "channel"};
  CHECK(event_list_problem(EventList{{0, 1}, {0, 4}, {9, 0}}, limits).empty());
  CHECK(event_list_problem(EventList{}, limits).empty());
  const std::string unsorted = event_list_problem(EventList{{3, 1}, {2, 0}}, limits);
  CHECK(unsorted.find("event 1 (step 2, channel 0) comes after event 0") != std::string::npos);
  CHECK(unsorted.find("sort") != std::string::npos);
  CHECK(event_list_problem(EventList{{3, 2}, {3, 1}}, limits).find("comes after") !=
        std::string::npos);
  CHECK(event_list_problem(EventList{{3, 2}, {3, 2}}, limits).find("repeats") !=
        std::string::npos);
  const std::string late = event_list_problem(EventList{{10, 0}}, limits);
  CHECK(late.find("outside the time window of 10 steps") != std::string::npos);
  const std::string channel = event_list_problem(EventList{{1, 5}}, limits);
  CHECK(channel.find("unknown channel; the chip has 5") != std::string::npos);
  const std::string per_step = event_list_problem(EventList{{1, 0}, {1, 1}, {1, 2}}, limits);
  CHECK(per_step.find("over the chip's 2 events per step") != std::string::npos);
  const std::string per_sample =
      event_list_problem(EventList{{1, 0}, {2, 0}, {3, 0}, {4, 0}, {5, 0}}, limits);
  CHECK(per_sample.find("5 events in one sample exceed the 4") != std::string::npos);
  const std::string neuron = event_list_problem(EventList{{1, 9}}, {10, 5, 5, 50, "neuron"});
  CHECK(neuron.find("unknown neuron") != std::string::npos);
}

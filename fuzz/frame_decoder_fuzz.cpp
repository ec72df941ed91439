// libFuzzer target: FrameDecoder on arbitrary streams, message payload decoders on arbitrary
// bytes (the describe reply's and the spike events' meaning checks too), and recovery of a
// valid frame hidden in garbage. Built by fuzz/run.sh.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/messages.hpp"

using namespace pnn::firmware_iface;

namespace {

// A payload that decodes must re-encode to exactly the same bytes (one encoding per message).
void check_payload(MessageType type, std::span<const std::uint8_t> payload) {
  auto m = decode_payload(type, payload);
  if (!m) return;
  FUZZ_CHECK(message_type(*m) == type);
  if (const auto* d = std::get_if<DescribeReply>(&*m)) {
    // The host's check of a description must hold on anything that decodes.
    const std::string problem = describe_problem(*d);
    FUZZ_CHECK(problem.size() < 4096);
  }
  if (const auto* run = std::get_if<SpikeRunRequest>(&*m)) {
    // The board's check of the events it received must hold on anything that decodes.
    for (const EventList& events : run->samples) {
      const std::string problem = event_list_problem(events, {40, 5, 32, 512, "channel"});
      FUZZ_CHECK(problem.size() < 4096);
    }
  }
  if (const auto* reply = std::get_if<SpikeRunReply>(&*m)) {
    FUZZ_CHECK(reply->hidden.size() == reply->rows);
    FUZZ_CHECK(reply->outputs.size() == std::size_t{reply->rows} * reply->cols);
    FUZZ_CHECK(reply->trace_codes.size() ==
               std::size_t{reply->rows} * reply->trace_steps * reply->trace_channels);
    for (const EventList& events : reply->hidden) {
      FUZZ_CHECK(events.size() <= payload.size() / 4);
      const std::string problem = event_list_problem(events, {40, 120, 120, 4800, "neuron"});
      FUZZ_CHECK(problem.size() < 4096);
    }
  }
  std::vector<std::uint8_t> again;
  encode_payload(*m, again);
  FUZZ_CHECK(std::equal(again.begin(), again.end(), payload.begin(), payload.end()));
}

void stream_decode(std::span<const std::uint8_t> in, std::uint8_t mode, std::uint8_t chunking) {
  const std::uint32_t max_payload = 1u + (mode & 0x3Fu) * 64u;
  FrameDecoder d({.max_payload_bytes = max_payload});
  const std::size_t chunk = chunking == 0 ? in.size() + 1 : chunking;
  std::uint64_t frame_bytes = 0;
  std::vector<std::uint8_t> reencoded;
  for (std::size_t at = 0; at < in.size(); at += chunk) {
    d.feed(in.subspan(at, std::min(chunk, in.size() - at)));
    while (auto f = d.next()) {
      FUZZ_CHECK(f->payload.size() <= max_payload);
      FUZZ_CHECK(f->header.version == kProtocolVersion);
      frame_bytes += frame_size(f->payload.size());
      // The accepted frame must be exactly what the encoder produces for its fields.
      reencoded.clear();
      encode_frame(f->header.type, f->header.seq, f->payload, reencoded, f->header.flags);
      auto again = decode_frame(reencoded, max_payload);
      FUZZ_CHECK(again.has_value());
      FUZZ_CHECK(again->header == f->header);
      check_payload(f->header.type, f->payload);
    }
  }
  // Every byte is accounted for: in a frame, skipped as garbage, or still buffered.
  const FrameDecoderStats& st = d.stats();
  FUZZ_CHECK(frame_bytes + st.garbage_bytes + d.buffered_bytes() == in.size());
  FUZZ_CHECK(d.buffered_bytes() <= frame_size(max_payload) + chunk);
  d.flush();
  FUZZ_CHECK(d.buffered_bytes() == 0);
}

// A valid frame between sync-free garbage must come out exactly once, unchanged.
void hidden_frame(std::span<const std::uint8_t> in, std::uint8_t mode) {
  const std::size_t cut = in.empty() ? 0 : in[0] % (in.size() + 1);
  std::vector<std::uint8_t> stream;
  for (std::size_t i = 0; i < cut; ++i) {
    stream.push_back(in[i] == kSync0 ? 0 : in[i]);
  }
  const auto payload = in.subspan(cut);
  if (payload.size() > (1u << 16)) return;
  encode_frame(static_cast<MessageType>(mode), 0xC0FFEE, payload, stream, mode);
  stream.insert(stream.end(), {0x00, kSync0, kSync1, 0x01});  // trailing partial garbage
  FrameDecoder d({.max_payload_bytes = 1u << 16});
  d.feed(stream);
  auto f = d.next();
  FUZZ_CHECK(f.has_value());
  FUZZ_CHECK(f->header.seq == 0xC0FFEE);
  FUZZ_CHECK(f->header.type == static_cast<MessageType>(mode));
  FUZZ_CHECK(std::equal(f->payload.begin(), f->payload.end(), payload.begin(), payload.end()));
  FUZZ_CHECK(!d.next().has_value());  // skips the trailing 0x00, then waits on the partial header
  FUZZ_CHECK(d.stats().garbage_bytes == cut + 1);
  FUZZ_CHECK(d.stats().errors() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::uint8_t chunking = data[1];
  const std::span<const std::uint8_t> in(data + 2, size - 2);
  stream_decode(in, mode, chunking);
  check_payload(static_cast<MessageType>(mode), in);
  hidden_frame(in, mode);
  (void)decode_frame(in, 1u << 16);
  return 0;
}

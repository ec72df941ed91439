#include "pnn/firmware_iface/frame.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <random>
#include <vector>

#include "pnn/firmware_iface/crc32c.hpp"

using namespace pnn::firmware_iface;

namespace {

using Bytes = std::vector<std::uint8_t>;

void put_u32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Bytes frame(MessageType type, std::uint32_t seq, const Bytes& payload, std::uint8_t flags = 0) {
  Bytes out;
  encode_frame(type, seq, payload, out, flags);
  return out;
}

// A decoded frame, copied out of the decoder's buffer.
struct Got {
  FrameHeader header;
  Bytes payload;
  bool operator==(const Got&) const = default;
};

std::vector<Got> drain(FrameDecoder& d) {
  std::vector<Got> out;
  while (auto f = d.next()) out.push_back({f->header, {f->payload.begin(), f->payload.end()}});
  return out;
}

std::vector<Got> decode_all(const Bytes& stream, std::size_t chunk,
                            FrameDecoderOptions options = {}, FrameDecoderStats* stats = nullptr) {
  FrameDecoder d(options);
  std::vector<Got> out;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    d.feed(std::span(stream).subspan(at, std::min(chunk, stream.size() - at)));
    for (auto& g : drain(d)) out.push_back(std::move(g));
  }
  d.flush();
  if (stats) *stats = d.stats();
  return out;
}

Bytes random_bytes(std::mt19937& rng, std::size_t n, bool avoid_sync = false) {
  Bytes b(n);
  for (auto& x : b) {
    do x = static_cast<std::uint8_t>(rng());
    while (avoid_sync && x == kSync0);
  }
  return b;
}

}  // namespace

TEST_CASE("frame: encoded bytes follow the documented layout") {
  const Bytes payload = {0xAA, 0xBB};
  const Bytes f = frame(MessageType::kSetParameters, 0x01020304, payload, 0x40);
  // Hand-written header per docs/protocol.md.
  Bytes expect = {0xA5, 0x5A, 0x01, 0x03, 0x40, 0x00, 0x00, 0x00,  // sync ver type flags rsvd
                  0x04, 0x03, 0x02, 0x01,                          // seq LE
                  0x02, 0x00, 0x00, 0x00};                         // length LE
  const std::uint32_t header_check = crc32c(expect);
  put_u32(expect, header_check);
  expect.insert(expect.end(), payload.begin(), payload.end());
  Bytes covered(expect.begin(), expect.begin() + 16);
  covered.insert(covered.end(), payload.begin(), payload.end());
  put_u32(expect, crc32c(covered));
  CHECK(f == expect);
  CHECK(f.size() == frame_size(payload.size()));
}

TEST_CASE("frame: encode_frame appends and split header/trailer encoding agrees") {
  Bytes out = {1, 2, 3};
  const Bytes payload = {9, 8, 7, 6, 5};
  encode_frame(MessageType::kRun, 77, payload, out);
  REQUIRE(out.size() == 3 + frame_size(payload.size()));
  CHECK(out[0] == 1);
  CHECK(out[2] == 3);
  const auto header =
      encode_frame_header({.type = MessageType::kRun, .seq = 77, .payload_size = 5});
  CHECK(std::equal(header.begin(), header.end(), out.begin() + 3));
  const std::uint32_t check = frame_check(header, payload);
  Bytes trailer;
  put_u32(trailer, check);
  CHECK(std::equal(trailer.begin(), trailer.end(), out.end() - 4));
}

TEST_CASE("frame: decode_frame returns a zero-copy view and each fault class") {
  const Bytes payload = {1, 2, 3, 4};
  Bytes f = frame(MessageType::kAck, 5, payload);
  f.push_back(0xEE);  // bytes after the frame are not its business
  auto r = decode_frame(f);
  REQUIRE(r);
  CHECK(r->header.seq == 5);
  CHECK(r->header.type == MessageType::kAck);
  CHECK(r->payload.data() == f.data() + kFrameHeaderSize);
  CHECK(r->payload.size() == 4);

  CHECK(decode_frame(std::span(f).first(10)).error() == Errc::kTruncated);
  CHECK(decode_frame(std::span(f).first(f.size() - 2)).error() == Errc::kTruncated);
  CHECK(decode_frame(std::span(f).first(0)).error() == Errc::kTruncated);
  CHECK(decode_frame(std::span(f).subspan(1)).error() == Errc::kBadSync);
  CHECK(decode_frame(f, 3).error() == Errc::kOversize);
  Bytes bad = f;
  bad[12] ^= 0x01;  // length
  CHECK(decode_frame(bad).error() == Errc::kBadHeader);
  bad = f;
  bad[kFrameHeaderSize + 1] ^= 0x10;  // payload
  CHECK(decode_frame(bad).error() == Errc::kCrcMismatch);
}

TEST_CASE("frame: every single-byte corruption is rejected and the next frame survives") {
  std::mt19937 rng(11);
  const Bytes payload = random_bytes(rng, 40, /*avoid_sync=*/true);
  const Bytes a = frame(MessageType::kLoadInputBatch, 1234, payload);
  const Bytes b = frame(MessageType::kRun, 1235, {});
  // The header check of `a` must not contain a sync byte either, or the exact counts below would
  // include a second bad candidate. Guard the test's own assumption.
  REQUIRE(std::count(a.begin() + 2, a.end(), kSync0) == 0);
  const Got want_b{{.type = MessageType::kRun, .seq = 1235, .payload_size = 0}, {}};
  for (std::size_t i = 0; i < a.size(); ++i) {
    for (const std::uint8_t mask : {0x01, 0x80, 0xFF, 0x5A}) {
      Bytes stream = a;
      stream[i] ^= mask;
      // A new sync pattern would add a candidate of its own and change the counts below.
      if (i >= 2 && stream[i] == kSync0 && i + 1 < a.size() && stream[i + 1] == kSync1) continue;
      stream.insert(stream.end(), b.begin(), b.end());
      FrameDecoderStats st;
      const auto got = decode_all(stream, stream.size(), {}, &st);
      INFO("byte " << i << " mask " << int(mask));
      REQUIRE(got.size() == 1);
      CHECK(got[0] == want_b);
      CHECK(!decode_frame(std::span(stream).first(a.size())));
      if (i < 2) {
        CHECK(st.errors() == 0);
        CHECK(st.garbage_bytes == a.size());
      } else if (i < kFrameHeaderSize) {
        CHECK(st.bad_header == 1);
        CHECK(st.errors() == 1);
      } else {
        CHECK(st.crc_mismatch == 1);
        CHECK(st.errors() == 1);
      }
    }
  }
}

TEST_CASE("frame: garbage before, between and after frames is skipped (resync)") {
  std::mt19937 rng(5);
  Bytes stream;
  std::vector<Got> want;
  std::uint64_t garbage = 0;
  for (std::uint32_t k = 0; k < 20; ++k) {
    Bytes g = random_bytes(rng, rng() % 50);
    // Sprinkle sync-looking bytes and a fake header so the hunt has to reject candidates.
    if (k % 3 == 0) g.insert(g.end(), {kSync0, kSync1, 1, 2, 3});
    if (k % 4 == 0) g.push_back(kSync0);
    garbage += g.size();
    stream.insert(stream.end(), g.begin(), g.end());
    const Bytes p = random_bytes(rng, rng() % 100);
    const Bytes f = frame(MessageType::kOutputsReply, k, p);
    stream.insert(stream.end(), f.begin(), f.end());
    want.push_back({{.type = MessageType::kOutputsReply,
                     .seq = k,
                     .payload_size = static_cast<std::uint32_t>(p.size())},
                    p});
  }
  const Bytes tail = {0x00, 0x13, 0x37};
  stream.insert(stream.end(), tail.begin(), tail.end());
  garbage += tail.size();
  FrameDecoderStats st;
  CHECK(decode_all(stream, stream.size(), {}, &st) == want);
  CHECK(st.frames == want.size());
  CHECK(st.garbage_bytes == garbage);
  CHECK(st.crc_mismatch == 0);
  CHECK(st.truncated == 0);
}

TEST_CASE("frame: oversize length is rejected without waiting for or buffering the payload") {
  FrameDecoder d({.max_payload_bytes = 64});
  const Bytes big = frame(MessageType::kLoadInputBatch, 1, Bytes(100, 0x11));
  const Bytes ok = frame(MessageType::kAck, 2, {0x05});
  d.feed(std::span(big).first(kFrameHeaderSize));  // only the header so far
  CHECK(!d.next());
  CHECK(d.stats().oversize == 1);
  CHECK(d.buffered_bytes() < kFrameHeaderSize);
  d.feed(std::span(big).subspan(kFrameHeaderSize));
  d.feed(ok);
  const auto got = drain(d);
  REQUIRE(got.size() == 1);
  CHECK(got[0].header.seq == 2);
  CHECK(d.stats().oversize == 1);
  CHECK(d.stats().crc_mismatch == 0);
}

TEST_CASE("frame: a truncated frame is counted on flush and reset, and the stream recovers") {
  const Bytes f = frame(MessageType::kStatusReply, 9, Bytes(30, 0x22));
  FrameDecoder d;
  d.feed(std::span(f).first(25));
  CHECK(!d.next());
  CHECK(d.buffered_bytes() == 25);
  d.flush();
  CHECK(d.stats().truncated == 1);
  CHECK(d.buffered_bytes() == 0);
  d.feed(std::span(f).first(3));
  d.reset();
  CHECK(d.stats().truncated == 2);
  d.feed(f);
  CHECK(drain(d).size() == 1);
  d.flush();  // nothing buffered: nothing truncated
  CHECK(d.stats().truncated == 2);
  CHECK(d.stats().frames == 1);
}

TEST_CASE("frame: a valid header of another version is reported as unsupported") {
  FrameHeader h{.version = 2, .type = MessageType::kRun, .seq = 1, .payload_size = 0};
  const auto header = encode_frame_header(h);
  Bytes v2(header.begin(), header.end());
  put_u32(v2, frame_check(header, {}));
  CHECK(decode_frame(v2).error() == Errc::kUnsupportedVersion);
  FrameDecoder d;
  d.feed(v2);
  d.feed(frame(MessageType::kRun, 2, {}));
  const auto got = drain(d);
  REQUIRE(got.size() == 1);
  CHECK(got[0].header.seq == 2);
  CHECK(d.stats().unsupported_version == 1);
  CHECK(d.stats().bad_header == 0);
}

TEST_CASE("frame: non-zero reserved bytes under a valid header check are a bad header") {
  Bytes f = frame(MessageType::kRun, 1, {});
  f[6] = 0x01;
  // Re-seal both checks so only the reserved byte is wrong.
  const std::uint32_t hc = crc32c(std::span(f).first(16));
  for (int i = 0; i < 4; ++i) f[16 + i] = static_cast<std::uint8_t>(hc >> (8 * i));
  const std::uint32_t fc = crc32c(std::span(f).first(16));
  for (int i = 0; i < 4; ++i) f[20 + i] = static_cast<std::uint8_t>(fc >> (8 * i));
  CHECK(decode_frame(f).error() == Errc::kBadHeader);
  FrameDecoderStats st;
  CHECK(decode_all(f, f.size(), {}, &st).empty());
  CHECK(st.bad_header == 1);
}

TEST_CASE("frame: feeding byte by byte or in random chunks equals feeding at once") {
  std::mt19937 rng(99);
  Bytes stream;
  for (std::uint32_t k = 0; k < 40; ++k) {
    const Bytes g = random_bytes(rng, rng() % 7);
    stream.insert(stream.end(), g.begin(), g.end());
    Bytes f = frame(static_cast<MessageType>(1 + k % 9), k, random_bytes(rng, rng() % 300));
    if (k % 10 == 3) f[f.size() - 1] ^= 1;  // a few bad frames too
    stream.insert(stream.end(), f.begin(), f.end());
  }
  stream.push_back(kSync0);  // truncated at the end
  FrameDecoderStats one_shot, by_byte, chunked;
  const auto a = decode_all(stream, stream.size(), {}, &one_shot);
  const auto b = decode_all(stream, 1, {}, &by_byte);
  CHECK(a.size() == 36);
  CHECK(a == b);
  for (const std::size_t chunk : {2u, 3u, 19u, 20u, 21u, 64u, 1000u}) {
    CHECK(decode_all(stream, chunk, {}, &chunked) == a);
    CHECK(chunked.garbage_bytes == one_shot.garbage_bytes);
    CHECK(chunked.crc_mismatch == 4);
  }
  CHECK(by_byte.garbage_bytes == one_shot.garbage_bytes);
  CHECK(by_byte.crc_mismatch == one_shot.crc_mismatch);
  CHECK(one_shot.truncated == 1);
  CHECK(by_byte.truncated == 1);
}

TEST_CASE("frame: views from next() stay valid until the next feed") {
  Bytes stream;
  for (std::uint32_t k = 0; k < 5; ++k) {
    const Bytes f = frame(MessageType::kAck, k, Bytes(1000 + k, static_cast<std::uint8_t>(k)));
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameDecoder d;
  // Fed in two parts so the decoder has to wait for (and reserve) a frame in between.
  d.feed(std::span(stream).first(1500));
  std::vector<FrameView> views;
  while (auto f = d.next()) views.push_back(*f);
  d.feed(std::span(stream).subspan(1500));
  views.clear();
  while (auto f = d.next()) views.push_back(*f);
  REQUIRE(views.size() == 4);
  for (std::size_t i = 0; i < views.size(); ++i) {
    const auto k = static_cast<std::uint8_t>(i + 1);
    CHECK(views[i].header.seq == k);
    CHECK(views[i].payload.size() == 1000u + k);
    CHECK(std::all_of(views[i].payload.begin(), views[i].payload.end(),
                      [k](std::uint8_t b) { return b == k; }));
  }
}

TEST_CASE("frame: finish_frame rejects an offset that was not begun") {
  Bytes out(5);
  CHECK_THROWS_AS(finish_frame(out, 2, MessageType::kRun, 0), std::invalid_argument);
  CHECK_THROWS_AS(finish_frame(out, 9, MessageType::kRun, 0), std::invalid_argument);
  CHECK(to_string(MessageType::kAck) == "ack");
  CHECK(to_string(static_cast<MessageType>(0x42)) == "unknown");
  CHECK(is_known_message_type(0x89));
  CHECK(is_known_message_type(0x0A));  // describe, protocol 1.1
  CHECK(is_known_message_type(0x0B));  // settle (energy-based boards)
  CHECK(is_known_message_type(0x0C));  // spike_run (spiking boards)
  CHECK(is_known_message_type(0x8C));
  CHECK(!is_known_message_type(0x0D));
}

TEST_CASE("frame: a frame that lost a byte does not take the following frame with it") {
  // A link that drops a byte shortens the frame, so its length field now reaches into the next
  // frame. Rejecting only one byte and hunting again must still find that next frame.
  std::mt19937 rng(21);
  Bytes a = frame(MessageType::kOutputsReply, 1, random_bytes(rng, 64, /*avoid_sync=*/true));
  a.erase(a.begin() + kFrameHeaderSize + 10);
  const Bytes b = frame(MessageType::kAck, 2, {0x05});
  const Bytes c = frame(MessageType::kAck, 3, {0x05});
  Bytes stream = a;
  stream.insert(stream.end(), b.begin(), b.end());
  stream.insert(stream.end(), c.begin(), c.end());
  FrameDecoderStats st;
  const auto got = decode_all(stream, stream.size(), {}, &st);
  REQUIRE(got.size() == 2);
  CHECK(got[0].header.seq == 2);
  CHECK(got[1].header.seq == 3);
  CHECK(st.crc_mismatch == 1);
}

TEST_CASE("frame: decode_frame of a 20-23-byte buffer with a valid header is truncated (issue 10)") {
  // The fuzzer's reproducer (fuzz/corpus/frame_decoder/issue10-short-frame): a valid header that
  // declares a 242-byte payload, cut after 23 bytes. `size - overhead` used to underflow here,
  // so the size check passed and the trailer check read past the end of the buffer (ASan).
  const Bytes repro = {0xa5, 0x5a, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x2f, 0x9a, 0x98,
                       0xf2, 0x00, 0x00, 0x00, 0x02, 0xc0, 0xf7, 0xe9, 0x29, 0x00, 0xa5};
  REQUIRE(repro.size() == 23);
  CHECK(decode_frame(repro).error() == Errc::kTruncated);

  // Every cut between the header and header + trailer, for empty and non-empty payloads, each in
  // a heap buffer of exactly that size, so ASan sees a read one byte past it.
  for (const std::size_t payload_size : {std::size_t{0}, std::size_t{1}, std::size_t{3},
                                         std::size_t{4}, std::size_t{200}}) {
    const Bytes full = frame(MessageType::kAck, 9, Bytes(payload_size, 0x11));
    for (std::size_t cut = kFrameHeaderSize; cut < full.size(); ++cut) {
      CAPTURE(payload_size);
      CAPTURE(cut);
      const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(cut));
      CHECK(decode_frame(prefix).error() == Errc::kTruncated);
    }
    CHECK(decode_frame(full).has_value());
  }
}

#include "pnn/training/checkpoint.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include "test_util.hpp"

namespace pnn::training {
namespace {

namespace fs = std::filesystem;

// Under the system temp directory: checkpoints are about the disk.
struct TempDir : ::pnn::test::TempDir {
  TempDir() : ::pnn::test::TempDir("pnn_checkpoint_test") {}
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Bitwise CRC-32 (IEEE, as zlib's crc32), independent of the code under test.
std::uint32_t crc32_ieee(std::string_view data) {
  std::uint32_t crc = 0xffffffffu;
  for (char ch : data) {
    crc ^= static_cast<unsigned char>(ch);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::uint64_t get_le(const std::string& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) {
    v |= std::uint64_t{static_cast<unsigned char>(b[at + static_cast<std::size_t>(i)])} << (8 * i);
  }
  return v;
}

void set_le(std::string& b, std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
}

// After editing an encoded checkpoint: fix the body length (offset 12) and the CRC (last 4
// bytes), as docs/checkpoint-format.md specifies, so only the planted problem remains.
void reseal(std::string& b) {
  set_le(b, 12, b.size() - 24, 8);
  set_le(b, b.size() - 4, crc32_ieee(std::string_view(b).substr(0, b.size() - 4)), 4);
}

Vector vec(std::initializer_list<double> values) {
  Vector v(static_cast<Index>(values.size()));
  Index i = 0;
  for (double x : values) v(i++) = x;
  return v;
}

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.epoch = 17;
  c.seed = 0xfedcba9876543210ull;
  const double quiet_nan_with_payload = std::bit_cast<double>(0x7ff800000000beefull);
  c.layers.push_back({"oscillator", "SIM-OSC-0001",
                      vec({0.1, -0.0, 1e-310, std::numeric_limits<double>::max(),
                           -std::numeric_limits<double>::infinity(), quiet_nan_with_payload,
                           std::nextafter(1.0, 2.0)}),
                      vec({0.3, 0.7})});
  c.layers.push_back({"linear", "", vec({1.0 / 3.0, -2.5}), Vector()});
  c.layers.push_back({std::string("odd\0kind\xff", 9), "\xc3\xa9t\xc3\xa9", Vector(), Vector()});
  c.optimizer.kind = "adam";
  c.optimizer.step = -42;  // any int64, even though real steps are non-negative
  c.optimizer.slots = {vec({1e-8, 2e-8}), Vector(),
                       vec({std::numeric_limits<double>::denorm_min()})};
  c.metadata = {{"dataset", "digits"}, {"learning_rate", "0.01"}, {"", "empty key"}};
  return c;
}

bool same_bits(const Vector& a, const Vector& b) {
  if (a.size() != b.size()) return false;
  return a.size() == 0 ||
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(double)) == 0;
}

void check_equal(const Checkpoint& a, const Checkpoint& b) {
  CHECK(a.epoch == b.epoch);
  CHECK(a.seed == b.seed);
  REQUIRE(a.layers.size() == b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    CAPTURE(i);
    CHECK(a.layers[i].kind == b.layers[i].kind);
    CHECK(a.layers[i].device_serial == b.layers[i].device_serial);
    CHECK(same_bits(a.layers[i].theta, b.layers[i].theta));
    CHECK(same_bits(a.layers[i].twin_phi, b.layers[i].twin_phi));
  }
  CHECK(a.optimizer.kind == b.optimizer.kind);
  CHECK(a.optimizer.step == b.optimizer.step);
  REQUIRE(a.optimizer.slots.size() == b.optimizer.slots.size());
  for (std::size_t i = 0; i < a.optimizer.slots.size(); ++i) {
    CHECK(same_bits(a.optimizer.slots[i], b.optimizer.slots[i]));
  }
  CHECK(a.metadata == b.metadata);
}

}  // namespace

TEST_CASE("checkpoint: save and load round-trip bit-exactly") {
  const TempDir dir;
  const fs::path path = dir.path() / "run.ckpt";
  const Checkpoint c = sample_checkpoint();
  save_checkpoint(c, path);
  const Checkpoint back = load_checkpoint(path);
  check_equal(c, back);
  CHECK(std::bit_cast<std::uint64_t>(back.layers[0].theta(5)) == 0x7ff800000000beefull);
  CHECK(std::signbit(back.layers[0].theta(1)));
  CHECK(back.layers[2].kind.size() == 9);
  CHECK(dir.entries() == std::vector<std::string>{"run.ckpt"});

  // Overwriting replaces the content; a default checkpoint round-trips too.
  save_checkpoint(Checkpoint{}, path);
  check_equal(load_checkpoint(path), Checkpoint{});
  CHECK(dir.entries() == std::vector<std::string>{"run.ckpt"});
}

TEST_CASE("checkpoint: encoding follows the documented layout") {
  const Checkpoint c = sample_checkpoint();
  const std::string b = encode_checkpoint(c);
  CHECK(b == encode_checkpoint(c));  // deterministic
  REQUIRE(b.size() > 24);
  CHECK(b.substr(0, 8) == std::string("PNNCKPT\0", 8));
  CHECK(get_le(b, 8, 4) == kCheckpointFormatVersion);
  CHECK(get_le(b, 12, 8) == b.size() - 24);
  CHECK(get_le(b, b.size() - 4, 4) == crc32_ieee(std::string_view(b).substr(0, b.size() - 4)));
  // First record: run (type 1), 12-byte payload: epoch (u32) and seed (u64).
  CHECK(get_le(b, 20, 4) == 1);
  CHECK(get_le(b, 24, 8) == 12);
  CHECK(get_le(b, 32, 4) == 17);
  CHECK(get_le(b, 36, 8) == 0xfedcba9876543210ull);
  // Second record: the first layer (type 2), starting with its kind as u32 length + bytes.
  CHECK(get_le(b, 44, 4) == 2);
  CHECK(get_le(b, 56, 4) == 10);
  CHECK(b.substr(60, 10) == "oscillator");
  // A negative epoch survives the u32 field.
  Checkpoint negative;
  negative.epoch = -3;
  CHECK(decode_checkpoint(encode_checkpoint(negative), "mem").epoch == -3);
}

TEST_CASE("checkpoint: the example in docs/checkpoint-format.md encodes byte for byte") {
  Checkpoint c;
  c.epoch = 3;
  c.seed = 7;
  c.optimizer.kind = "sgd";
  const unsigned char expected[] = {
      0x50, 0x4E, 0x4E, 0x43, 0x4B, 0x50, 0x54, 0x00, 0x01, 0x00, 0x00, 0x00, 0x37, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0C, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x03, 0x00, 0x00, 0x00, 0x73, 0x67, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x86, 0x3F, 0x47, 0x64};
  const std::string b = encode_checkpoint(c);
  CHECK(b == std::string(reinterpret_cast<const char*>(expected), sizeof(expected)));
  CHECK(crc32_ieee("123456789") == 0xcbf43926u);  // the reference value quoted in the doc
}

TEST_CASE("checkpoint: a corrupt byte is detected") {
  const TempDir dir;
  const fs::path path = dir.path() / "run.ckpt";
  save_checkpoint(sample_checkpoint(), path);
  std::string bytes = read_file(path);
  bytes[bytes.size() / 2] ^= 0x01;
  write_file(path, bytes);
  const std::string msg = error_of([&] { load_checkpoint(path); });
  CHECK(contains(msg, path.string()));
  CHECK(contains(msg, "CRC"));

  // Every single-byte change anywhere in the file is rejected, never crashes.
  const std::string good = encode_checkpoint(sample_checkpoint());
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x80);
    CAPTURE(i);
    CHECK(!error_of([&] { decode_checkpoint(bad, "mem"); }).empty());
  }
}

TEST_CASE("checkpoint: truncated files are rejected") {
  const TempDir dir;
  const fs::path path = dir.path() / "run.ckpt";
  save_checkpoint(sample_checkpoint(), path);
  const auto size = fs::file_size(path);
  fs::resize_file(path, size - 7);
  const std::string msg = error_of([&] { load_checkpoint(path); });
  CHECK(contains(msg, path.string()));
  CHECK(contains(msg, "truncated"));

  fs::resize_file(path, 0);
  CHECK(contains(error_of([&] { load_checkpoint(path); }), "truncated"));

  // Every prefix of a valid file is rejected.
  const std::string good = encode_checkpoint(sample_checkpoint());
  for (std::size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    CHECK(
        !error_of([&] { decode_checkpoint(std::string_view(good).substr(0, n), "mem"); }).empty());
  }
  // So is a file with bytes appended.
  CHECK(contains(error_of([&] { decode_checkpoint(good + "x", "mem"); }), "unexpected bytes"));
}

TEST_CASE("checkpoint: a newer format version is rejected with the supported versions") {
  std::string b = encode_checkpoint(sample_checkpoint());
  set_le(b, 8, kCheckpointFormatVersion + 1, 4);
  reseal(b);  // valid CRC: the version alone must be the reason
  const std::string msg = error_of([&] { decode_checkpoint(b, "future.ckpt"); });
  CHECK(contains(msg, "future.ckpt"));
  CHECK(contains(msg, "version " + std::to_string(kCheckpointFormatVersion + 1)));
  CHECK(contains(msg, "versions 1.." + std::to_string(kCheckpointFormatVersion)));
  CHECK(contains(msg, "newer"));

  set_le(b, 8, 0, 4);
  reseal(b);
  CHECK(contains(error_of([&] { decode_checkpoint(b, "zero.ckpt"); }), "version 0"));
}

TEST_CASE("checkpoint: corrupt lengths behind a valid CRC are rejected without huge allocations") {
  const std::string good = encode_checkpoint(sample_checkpoint());
  // Layer 0's payload starts at 56: kind (4 + 10), serial (4 + 12), then theta's count.
  const std::size_t theta_count_at = 56 + 4 + 10 + 4 + 12;
  REQUIRE(get_le(good, theta_count_at, 4) == 7);
  {
    std::string b = good;
    set_le(b, theta_count_at, 0xffffffffu, 4);
    reseal(b);
    const std::string msg = error_of([&] { decode_checkpoint(b, "mem"); });
    CHECK(contains(msg, "theta"));
    CHECK(contains(msg, "corrupt length"));
  }
  {
    std::string b = good;
    set_le(b, 56, 0xfffffff0u, 4);  // kind length
    reseal(b);
    CHECK(contains(error_of([&] { decode_checkpoint(b, "mem"); }), "corrupt length"));
  }
  {
    std::string b = good;
    set_le(b, 48, std::uint64_t{1} << 62, 8);  // layer record length
    reseal(b);
    CHECK(contains(error_of([&] { decode_checkpoint(b, "mem"); }), "exceeds"));
  }
  {
    std::string b = good;
    set_le(b, 12, std::numeric_limits<std::uint64_t>::max() - 3, 8);  // body length, no reseal
    CHECK(contains(error_of([&] { decode_checkpoint(b, "mem"); }), "truncated"));
  }
  {
    // Record type 99 (unknown) is skipped: the documented forward-compatible extension.
    std::string b = good.substr(0, good.size() - 4);
    std::string record(4 + 8 + 3, '\0');
    set_le(record, 0, 99, 4);
    set_le(record, 4, 3, 8);
    record.replace(12, 3, "abc");
    b += record + "CRC!";
    reseal(b);
    check_equal(decode_checkpoint(b, "mem"), sample_checkpoint());
  }
  {
    // A checkpoint without its optimizer record is incomplete.
    Checkpoint c;
    std::string b = encode_checkpoint(c);
    const std::size_t optimizer_at = 20 + 12 + 12;  // after the run record
    REQUIRE(get_le(b, optimizer_at, 4) == 3);
    b.erase(optimizer_at, 12 + get_le(b, optimizer_at + 4, 8));
    reseal(b);
    CHECK(contains(error_of([&] { decode_checkpoint(b, "mem"); }), "optimizer record is missing"));
  }
}

TEST_CASE("checkpoint: an interrupted save keeps the previous checkpoint") {
  const TempDir dir;
  const fs::path path = dir.path() / "run.ckpt";
  Checkpoint previous = sample_checkpoint();
  previous.epoch = 1;
  save_checkpoint(previous, path);
  const std::string previous_bytes = read_file(path);

  Checkpoint next = sample_checkpoint();
  next.epoch = 2;
  const auto size = static_cast<std::int64_t>(encode_checkpoint(next).size());
  for (std::int64_t fail_after :
       {std::int64_t{0}, std::int64_t{1}, std::int64_t{20}, size / 2, size - 1}) {
    CAPTURE(fail_after);
    const std::string msg =
        error_of([&] { save_checkpoint(next, path, {.fail_after_bytes = fail_after}); });
    CHECK(contains(msg, path.string()));
    CHECK(contains(msg, "after " + std::to_string(fail_after) + " bytes"));
    CHECK(read_file(path) == previous_bytes);
    CHECK(load_checkpoint(path).epoch == 1);
    CHECK(dir.entries() == std::vector<std::string>{"run.ckpt"});  // no temporary file left
  }
  // A fault point beyond the end never triggers.
  save_checkpoint(next, path, {.fail_after_bytes = size});
  CHECK(load_checkpoint(path).epoch == 2);

  // Interrupted first save: no checkpoint appears at all.
  const fs::path fresh = dir.path() / "fresh.ckpt";
  CHECK(!error_of([&] { save_checkpoint(next, fresh, {.fail_after_bytes = 5}); }).empty());
  CHECK(!fs::exists(fresh));
  CHECK(dir.entries() == std::vector<std::string>{"run.ckpt"});
}

TEST_CASE("checkpoint: missing, foreign or unwritable paths are reported") {
  const TempDir dir;
  const fs::path missing = dir.path() / "missing.ckpt";
  const std::string msg = error_of([&] { load_checkpoint(missing); });
  CHECK(contains(msg, missing.string()));
  CHECK(contains(msg, "does not exist"));

  const fs::path foreign = dir.path() / "notes.txt";
  write_file(foreign, "these are not the parameters you are looking for");
  CHECK(contains(error_of([&] { load_checkpoint(foreign); }), "not a pnn checkpoint"));

  CHECK(contains(error_of([&] { load_checkpoint(dir.path()); }), "not a regular file"));

  const fs::path no_dir = dir.path() / "no" / "such" / "dir" / "run.ckpt";
  const std::string save_msg = error_of([&] { save_checkpoint(sample_checkpoint(), no_dir); });
  CHECK(contains(save_msg, no_dir.string()));
  CHECK(contains(save_msg, "cannot create temporary file"));

  // Renaming over a directory fails after the data was written: the temporary file goes away.
  fs::create_directories(dir.path() / "taken.ckpt");
  fs::create_directories(dir.path() / "taken.ckpt" / "child");
  CHECK(contains(error_of([&] { save_checkpoint(sample_checkpoint(), dir.path() / "taken.ckpt"); }),
                 "cannot rename"));
  CHECK(dir.entries().size() == 2);  // notes.txt and taken.ckpt only
}

}  // namespace pnn::training

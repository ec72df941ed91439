// The segment files of forward records (docs/run-store.md "Segment files"): round trips across
// reopening, one fdatasync per group, retention by whole segments, and recovery from files
// damaged by hand (torn tails, uncommitted segments, a failed CRC, a missing or short file).
#include <doctest/doctest.h>
#include <sys/resource.h>

#include <csignal>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

// Payload bytes of make_forward's records: float32 x (32×64) and y (32×10), float64 θ (96), and
// the bytes one takes in a segment file (a 24-byte frame header before them).
constexpr std::uint64_t kPayload = 32 * 64 * 4 + 32 * 10 * 4 + 96 * 8;
constexpr std::uint64_t kFrame = 24 + kPayload;
constexpr std::uint64_t kSegmentHeader = 16;

std::string segment_file(const std::string& db, std::uint64_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "%012llu.seg", static_cast<unsigned long long>(id));
  return db + ".segments/" + name;
}

std::vector<std::string> segment_files(const std::string& db) {
  std::vector<std::string> out;
  if (!fs::exists(db + ".segments")) return out;
  for (const auto& e : fs::directory_iterator(db + ".segments")) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

void check_record(const RunStore& store, std::uint64_t id, std::uint64_t seed) {
  CAPTURE(id);
  const auto got = store.get_forward(id);
  REQUIRE(got.has_value());
  const ForwardRecord want = make_forward(seed);
  CHECK(got->record_id == id);
  CHECK(got->client_id == want.client_id);
  CHECK(got->request_id == want.request_id);
  CHECK(got->t_start_ns == want.t_start_ns);
  CHECK(bit_equal(got->x, float32_rounded(want.x)));
  CHECK(bit_equal(got->theta, want.theta));
  CHECK(bit_equal(got->y, float32_rounded(want.y)));
}

bool contains(const std::vector<std::string>& notes, const std::string& text) {
  return std::any_of(notes.begin(), notes.end(),
                     [&](const std::string& n) { return n.find(text) != std::string::npos; });
}

TEST_CASE("run_store segments: records round-trip through segment files across reopening") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    CHECK(segment_files(path).empty());  // nothing written yet: no directory
    for (std::uint64_t k = 0; k < 3; ++k) ids.push_back(store.record_forward(make_forward(k)));
    std::vector<ForwardRecord> batch;
    for (std::uint64_t k = 3; k < 8; ++k) batch.push_back(make_forward(k));
    for (auto id : store.record_forwards(batch)) ids.push_back(id);
    for (std::uint64_t k = 0; k < 8; ++k) check_record(store, ids[k], k);
    CHECK(store.forward_stats().bytes == 8 * kPayload);
    CHECK(store.forward_stats().segments == 1);
  }
  REQUIRE(segment_files(path) == std::vector<std::string>{segment_file(path, 1)});
  CHECK(fs::file_size(segment_file(path, 1)) == kSegmentHeader + 8 * kFrame);
  RunStore store(path);
  CHECK(store.forward_recovery_notes().empty());  // a clean close leaves nothing to repair
  for (std::uint64_t k = 0; k < 8; ++k) check_record(store, ids[k], k);
  // A reopened store appends to a new segment; the old one is left as it was.
  const std::uint64_t next = store.record_forward(make_forward(8));
  CHECK(next == ids.back() + 1);
  check_record(store, next, 8);
  CHECK(segment_files(path).size() == 2);
  CHECK(fs::file_size(segment_file(path, 1)) == kSegmentHeader + 8 * kFrame);
  const auto newest = store.device_forwards("SIM-0001", 1000);
  REQUIRE(newest.size() == 9);
  CHECK(newest.front().record_id == next);
  CHECK(newest.back().record_id == ids.front());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store segments: a group of records costs one fdatasync per segment it wrote") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  std::vector<ForwardRecord> batch;
  for (std::uint64_t k = 0; k < 10; ++k) batch.push_back(make_forward(k));
  (void)store.record_forwards(batch);
  CHECK(store.forward_stats().segment_syncs == 1);
  for (std::uint64_t k = 0; k < 4; ++k) (void)store.record_forward(make_forward(k));
  CHECK(store.forward_stats().segment_syncs == 5);  // one per acknowledged single record
  // A retention limit of 8 × (3 frames + a little) cuts segments at 3 records: a group of 7
  // then spans three new segments (segment 1, full, is closed unsynced), each synced once.
  store.set_forward_retention(8 * (3 * kFrame + 100));
  batch.resize(7);
  const std::vector<std::uint64_t> ids = store.record_forwards(batch);
  const ForwardStats f = store.forward_stats();
  CHECK(f.segment_syncs == 5 + 3);
  CHECK(f.segments == 4);
  CHECK(f.pruned == 0);
  for (std::size_t k = 0; k < ids.size(); ++k) check_record(store, ids[k], k);
  CHECK(fs::file_size(segment_file(path, 2)) == kSegmentHeader + 3 * kFrame);
  CHECK(fs::file_size(segment_file(path, 3)) == kSegmentHeader + 3 * kFrame);
  CHECK(fs::file_size(segment_file(path, 4)) == kSegmentHeader + 1 * kFrame);
}

TEST_CASE("run_store segments: retention deletes whole segments with their index rows") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  const std::uint64_t limit = 8 * (3 * kFrame + 100);  // segments of 3 records, 24 fit
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    store.set_forward_retention(limit);
    for (std::uint64_t k = 0; k < 60; ++k) {
      CAPTURE(k);
      ids.push_back(store.record_forward(make_forward(k)));
      const ForwardStats f = store.forward_stats();
      CHECK(f.bytes <= limit);
      CHECK(f.bytes == f.records * kPayload);
      CHECK(f.newest_record_id == ids.back());
      // Whole segments go: the oldest record held opens a segment (ids 1, 4, 7, ...).
      CHECK(f.oldest_record_id % 3 == 1);
      CHECK(f.oldest_record_id == f.newest_record_id - f.records + 1);
      // The files on disk are exactly the segments the index still names.
      CHECK(segment_files(path).size() == f.segments);
      RawDb raw(path);
      CHECK(raw.scalar("SELECT count(DISTINCT segment_id) FROM forward_records") ==
            std::to_string(f.segments));
      CHECK(raw.scalar("SELECT count(*) FROM forward_records") == std::to_string(f.records));
    }
    const ForwardStats f = store.forward_stats();
    CHECK(f.pruned > 0);
    // Pruned to 90 % of the limit (21.6 records), whole segments of 3 at a time.
    CHECK(f.records >= 18);
    CHECK(f.records <= 24);
    CHECK_FALSE(store.get_forward(ids.front()).has_value());
    check_record(store, ids.back(), 59);
    CHECK_FALSE(fs::exists(segment_file(path, 1)));
  }
  RunStore again(path);
  CHECK(again.forward_recovery_notes().empty());
  const ForwardStats f = again.forward_stats();
  CHECK(f.bytes == f.records * kPayload);
  CHECK(f.newest_record_id == ids.back());
  check_record(again, ids.back(), 59);
}

TEST_CASE("run_store segments: reopening truncates a torn tail and keeps every committed record") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    RunStore store(path);
    for (std::uint64_t k = 0; k < 5; ++k) (void)store.record_forward(make_forward(k));
  }
  const std::string seg = segment_file(path, 1);
  const std::string committed = read_bytes(seg);
  REQUIRE(committed.size() == kSegmentHeader + 5 * kFrame);
  // A batch that was being written when the process died: a whole frame (a copy of the first
  // one, its CRC valid) and half of another, neither with a committed index row.
  const std::string frame = committed.substr(kSegmentHeader, kFrame);
  write_bytes(seg, committed + frame + frame.substr(0, kFrame / 2));
  // And a segment started by that batch, never committed.
  write_bytes(segment_file(path, 2), committed.substr(0, kSegmentHeader + 100));
  {
    RunStore store(path);
    const auto& notes = store.forward_recovery_notes();
    CAPTURE(notes.size());
    CHECK(contains(notes, "truncated forward segment " + seg));
    CHECK(contains(notes, "removed forward segment " + segment_file(path, 2)));
    CHECK(read_bytes(seg) == committed);
    CHECK_FALSE(fs::exists(segment_file(path, 2)));
    for (std::uint64_t k = 0; k < 5; ++k) check_record(store, k + 1, k);
    CHECK_FALSE(store.get_forward(6).has_value());
    CHECK(store.record_forward(make_forward(5)) == 6);
  }
  RunStore store(path);
  CHECK(store.forward_recovery_notes().empty());
  for (std::uint64_t k = 0; k < 6; ++k) check_record(store, k + 1, k);
}

TEST_CASE("run_store segments: a CRC failure inside committed data is a clear error, not a crash") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    RunStore store(path);
    for (std::uint64_t k = 0; k < 3; ++k) (void)store.record_forward(make_forward(k));
  }
  const std::string seg = segment_file(path, 1);
  std::string bytes = read_bytes(seg);
  bytes[kSegmentHeader + kFrame + 24 + 1000] ^= 0x10;  // one bit of record 2's payload
  write_bytes(seg, bytes);
  RunStore store(path);
  CHECK(store.forward_recovery_notes().empty());  // sizes are right: found when read
  const std::string message = error_message_of([&] { (void)store.get_forward(2); });
  CAPTURE(message);
  CHECK(message.find("forward record 2") != std::string::npos);
  CHECK(message.find(seg) != std::string::npos);
  CHECK(message.find("CRC-32C mismatch") != std::string::npos);
  CHECK(message.find("restore the file from a backup") != std::string::npos);
  check_record(store, 1, 0);
  check_record(store, 3, 2);
  // A fit from records meets the same error (pnnd's FitTwin turns it into an error reply).
  CHECK(error_message_of([&] {
          (void)store.device_forwards("SIM-0001", 1000);
        }).find("CRC-32C mismatch") != std::string::npos);
  // The store keeps recording.
  check_record(store, store.record_forward(make_forward(7)), 7);
}

TEST_CASE("run_store segments: a missing or shortened segment file is reported at open") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  {
    RunStore store(path);
    (void)store.record_forward(make_forward(0));
    store.set_forward_retention(8 * (kFrame + 100));  // one record per segment from here
    (void)store.record_forward(make_forward(1));
    (void)store.record_forward(make_forward(2));
  }
  REQUIRE(segment_files(path).size() == 3);
  fs::remove(segment_file(path, 2));
  const std::string third = read_bytes(segment_file(path, 3));
  write_bytes(segment_file(path, 3), third.substr(0, third.size() - 10));
  RunStore store(path);
  const auto& notes = store.forward_recovery_notes();
  CHECK(contains(notes, segment_file(path, 2) + " is missing"));
  CHECK(contains(notes, segment_file(path, 3) + " is " + std::to_string(third.size() - 10)));
  // Neither file was changed further (the shortened one is not "repaired" away).
  CHECK(fs::file_size(segment_file(path, 3)) == third.size() - 10);
  check_record(store, 1, 0);
  CHECK(error_message_of([&] { (void)store.get_forward(2); }).find("cannot be opened") !=
        std::string::npos);
  CHECK(error_message_of([&] { (void)store.get_forward(3); }).find("ends before the record") !=
        std::string::npos);
  check_record(store, store.record_forward(make_forward(9)), 9);
}

TEST_CASE("run_store segments: a write whose index cannot commit leaves no bytes behind") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  (void)store.record_forward(make_forward(0));
  const std::uint64_t size = fs::file_size(segment_file(path, 1));
  RawDb raw(path);
  const auto pages = std::stoull(raw.scalar("PRAGMA page_count"));
  store.set_max_page_count_for_testing(pages);
  bool full = false;
  for (std::uint64_t k = 1; k < 200 && !full; ++k) {
    try {
      (void)store.record_forward(make_forward(k));
    } catch (const StoreError& e) {
      full = e.disk_full();
    }
  }
  REQUIRE(full);
  // The failed batch's bytes were cut off again (it went to a new segment, now removed).
  const ForwardStats f = store.forward_stats();
  std::uint64_t on_disk = 0;
  for (const auto& file : segment_files(path)) on_disk += fs::file_size(file);
  CHECK(on_disk == f.segments * kSegmentHeader + f.records * kFrame);
  CHECK(fs::file_size(segment_file(path, 1)) >= size);
  store.set_max_page_count_for_testing(1u << 30);
  check_record(store, store.record_forward(make_forward(50)), 50);
}

// RLIMIT_FSIZE for this process while it lives (writes past it fail with EFBIG; SIGXFSZ is
// ignored meanwhile), restored after.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit r = old_;
    r.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &r) == 0);
  }
  ~FileSizeLimit() {
    (void)::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit old_{};
  void (*old_handler_)(int) = SIG_DFL;
};

TEST_CASE(
    "run_store segments: a segment write that fails is cut off and named, and can be retried") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  RunStore store(path);
  // Large records (x and y 256 × 64: 128 KiB each in the segment), so that the segment file is
  // the first to reach the limit, not the WAL.
  const auto big = [](std::uint64_t seed) {
    ForwardRecord r = make_forward(seed);
    r.x = tricky_matrix(256, 64, seed);
    r.y = tricky_matrix(256, 64, seed + 2);
    return r;
  };
  const std::uint64_t first = store.record_forward(big(1));
  (void)store.record_forward(big(2));
  const std::string seg = segment_file(path, 1);
  const auto size = fs::file_size(seg);
  std::string message;
  {
    FileSizeLimit limit(size + 64 * 1024);  // half of the next record fits
    message = error_message_of([&] { (void)store.record_forward(big(3)); });
  }
  CAPTURE(message);
  CHECK(message.find("forward segment " + seg) != std::string::npos);
  CHECK(message.find("writing a record") != std::string::npos);
  // The half-written frame was cut off; nothing of the failed write is counted or readable.
  CHECK(fs::file_size(seg) == size);
  CHECK(store.forward_stats().records == 2);
  CHECK_FALSE(store.get_forward(first + 2).has_value());
  // Retried without the limit: written (to a new segment), readable, and so after reopening.
  const std::uint64_t third = store.record_forward(big(3));
  CHECK(third == first + 2);
  const auto got = store.get_forward(third);
  REQUIRE(got.has_value());
  CHECK(bit_equal(got->x, float32_rounded(big(3).x)));
  CHECK(store.forward_recovery_notes().empty());
}

}  // namespace
}  // namespace pnn::daemon

#pragma once
// The bulk arrays of forward records in append-only segment files beside the run store (private
// to daemon/src; the format, durability order and recovery are in docs/run-store.md "Segment
// files"). SQLite holds the index (segment id, offset, length, CRC-32C); this class holds the
// files. Not thread-safe: the store serialises all use under its mutex.
//
// One write of a batch of records:
//   begin_batch(); for each record: reserve(...) -> insert the index row -> write(...);
//   sync_batch() (every segment written in the batch is fdatasync'd: one sync per group);
//   the index rows commit; commit_batch(). On any failure before the commit: rollback_batch().
// So the bytes of every record whose index row committed are on disk before the row is.
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace pnn::daemon::detail {

/// Where one record's payload is: the frame at `offset` of segment `segment_id`, `length`
/// payload bytes after the frame's header, their CRC-32C.
struct SegmentRef {
  std::uint64_t segment_id = 0, offset = 0, length = 0;
  std::uint32_t crc = 0;
};

class SegmentLog {
 public:
  static constexpr std::uint64_t kFileHeaderBytes = 16;   // "PNNSEG\0\1", u64 segment id
  static constexpr std::uint64_t kFrameHeaderBytes = 24;  // magic, length, record id, CRCs
  static constexpr std::uint64_t kDefaultSegmentBytes = std::uint64_t{64} << 20;

  /// What the committed index rows of one segment hold. Segment 0 stands for the records kept
  /// as BLOBs in SQLite (migrated from schema version 4): no file.
  struct Extent {
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;           // payload bytes (x, θ, y)
    std::uint64_t end = 0;             // file offset just past the last committed frame
    std::uint64_t last_record_id = 0;  // the highest record id in it
  };

  /// `db_path` names the store in errors; the files live in `dir` (created at the first write).
  SegmentLog(std::string db_path, std::string dir);
  ~SegmentLog();
  SegmentLog(const SegmentLog&) = delete;
  SegmentLog& operator=(const SegmentLog&) = delete;

  /// At open, before any write, with what the committed index rows say of each segment:
  /// truncates every file to its last committed frame (a torn or uncommitted tail), unlinks
  /// files no committed row refers to (a batch that never committed, or a segment whose rows
  /// retention deleted just before a crash), and reports files that are missing, shorter than
  /// their committed records or not segment files: one line each, naming the file and the fix.
  /// Such records stay in the index; reading one throws StoreError. Throws StoreError only when
  /// the directory cannot be read or a tail cannot be truncated.
  std::vector<std::string> recover(std::map<std::uint64_t, Extent> committed);

  void begin_batch();
  /// The place of the next frame (`length` payload bytes). Starts a new segment when none is
  /// open or the current one holds a record and would pass `max_segment_bytes`.
  SegmentRef reserve(std::uint64_t length, std::uint32_t crc, std::uint64_t max_segment_bytes);
  /// Writes the frame reserved as `ref` (the next reservation must come after this).
  void write(const SegmentRef& ref, std::uint64_t record_id, std::span<const std::uint8_t> payload);
  /// fdatasync of every segment written since begin_batch.
  void sync_batch();
  /// The batch's index rows committed: its frames count as committed.
  void commit_batch();
  /// The batch failed before its index rows committed: its bytes are cut off again and the
  /// segments it started are removed (best effort; recover() does the same at the next open).
  void rollback_batch() noexcept;

  /// Committed extents, plus (during a batch) the frames written in it. Ascending by id.
  std::map<std::uint64_t, Extent> extents_with_batch() const;
  /// After the index rows of segments ≤ `segment_id` were deleted and committed: unlinks their
  /// files (a failure is left to recover()). The segment being written is never named here.
  void drop_upto(std::uint64_t segment_id) noexcept;

  /// Reads and checks the frame of record `record_id` into `payload` (resized). Throws
  /// StoreError naming the file, the offset and the fix when the file is missing or short, the
  /// frame does not match the index, or the CRC fails.
  void read(std::uint64_t record_id, const SegmentRef& ref, std::vector<std::uint8_t>& payload);

  std::uint64_t num_segments() const;  // files held (segment 0 not counted)
  std::uint64_t num_syncs() const { return syncs_; }
  std::string segment_path(std::uint64_t segment_id) const;

 private:
  struct Pending {
    std::uint64_t segment_id, end, length, record_id;
  };
  [[noreturn]] void fail(const std::string& file, const std::string& what, int err) const;
  void open_new_segment();
  void close_fd(int& fd) noexcept;
  int read_fd(std::uint64_t segment_id);
  void ensure_dir();

  std::string db_path_, dir_;
  bool dir_ready_ = false;
  std::map<std::uint64_t, Extent> committed_;
  std::map<std::uint64_t, int> read_fds_;
  std::uint64_t next_id_ = 1;
  // The segment being appended to (-1: none yet; a new one is started at the first reserve).
  std::uint64_t current_id_ = 0, current_end_ = 0;
  int current_fd_ = -1;
  bool current_dirty_ = false;  // written since the last sync
  // The batch in progress.
  std::vector<Pending> pending_;
  std::vector<int> rotated_fds_;        // segments left in this batch, synced then closed
  std::vector<std::uint64_t> started_;  // segments started in this batch
  std::uint64_t batch_segment_ = 0, batch_end_ = 0;  // the current segment when it began
  std::uint64_t syncs_ = 0;
};

}  // namespace pnn::daemon::detail

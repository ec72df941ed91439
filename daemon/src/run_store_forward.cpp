// Forward-call records: the index rows in SQLite, the arrays in segment files (segment_log.hpp),
// and their retention by whole segments (the rest of the run store is in run_store.cpp).
#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "pnn/common/bytes.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/firmware_iface/crc32c.hpp"
#include "run_store_impl.hpp"

namespace pnn::daemon {

using detail::SegmentLog;
using detail::SegmentRef;
using sqlite::encode_matrix_f32;
using sqlite::encode_vector;

std::uint64_t RunStore::Impl::segment_bytes() const {
  const std::uint64_t max_bytes = forward_max_bytes.load();
  if (max_bytes == 0) return SegmentLog::kDefaultSegmentBytes;
  return std::min(SegmentLog::kDefaultSegmentBytes, std::max<std::uint64_t>(max_bytes / 8, 1));
}

void RunStore::Impl::open_segments() {
  // One scan of the index (the BLOB columns of segment rows are NULL; length() of a BLOB of a
  // migrated row reads its row header only), once per open. Segment 0: the migrated BLOB rows.
  const std::string frame = std::to_string(SegmentLog::kFrameHeaderBytes);
  Stmt extents(db,
               "SELECT coalesce(segment_id, 0), count(*), sum(coalesce(seg_length, length(x) + "
               "length(theta) + length(y))), coalesce(max(seg_offset + seg_length + " +
                   frame +
                   "), 0), max(record_id), min(record_id) FROM forward_records GROUP BY 1 "
                   "ORDER BY 1");
  std::map<std::uint64_t, SegmentLog::Extent> committed;
  {
    Query q(db, extents, "sizing the forward records");
    while (q.step()) {
      const auto id = static_cast<std::uint64_t>(q.int_at(0));
      SegmentLog::Extent e{
          static_cast<std::uint64_t>(q.int_at(1)), static_cast<std::uint64_t>(q.int_at(2)),
          static_cast<std::uint64_t>(q.int_at(3)), static_cast<std::uint64_t>(q.int_at(4))};
      const auto oldest = static_cast<std::uint64_t>(q.int_at(5));
      ForwardStats& f = forward_stats;
      f.records += e.records;
      f.bytes += e.bytes;
      if (f.oldest_record_id == 0 || oldest < f.oldest_record_id) f.oldest_record_id = oldest;
      f.newest_record_id = std::max(f.newest_record_id, e.last_record_id);
      committed[id] = e;
    }
  }
  segment_notes = segments.recover(std::move(committed));
}

RunStore::Impl::Pruned RunStore::Impl::prune_forwards(std::uint64_t total, std::uint64_t newest) {
  constexpr std::string_view kWhat = "deleting the oldest forward segments (retention)";
  const std::uint64_t max_bytes = forward_max_bytes.load();
  Pruned pruned;
  if (max_bytes == 0 || total <= max_bytes) return pruned;
  const std::uint64_t target = max_bytes - max_bytes / 10;
  std::uint64_t upto = 0;
  for (const auto& [id, e] : segments.extents_with_batch()) {
    if (total - pruned.bytes <= target) break;
    // The segment holding the record just written stays, even if it alone is too big.
    if (e.last_record_id >= newest) break;
    pruned.bytes += e.bytes;
    pruned.records += e.records;
    pruned.upto_segment = id;
    upto = e.last_record_id;
  }
  if (pruned.records == 0) return pruned;
  // Record ids grow with segment ids (and every migrated BLOB row is older than any segment).
  Query(db, delete_forwards_upto, kWhat).bind_uint(1, upto).run();
  Query q(db, select_oldest_forward_id, kWhat);
  pruned.oldest_left = q.step() ? static_cast<std::uint64_t>(q.int_at(0)) : 0;
  return pruned;
}

std::uint64_t RunStore::Impl::insert_forward_row(const ForwardRecord& record,
                                                 std::uint64_t& added) {
  payload.clear();
  encode_matrix_f32(record.x, f32_scratch, payload);
  encode_vector(record.theta, payload);
  encode_matrix_f32(record.y, f32_scratch, payload);
  const std::uint32_t crc = firmware_iface::crc32c(payload);
  const SegmentRef ref = segments.reserve(payload.size(), crc, segment_bytes());
  Query(db, insert_forward, "recording a forward call")
      .bind_text(1, record.client_id)
      .bind_uint(2, record.request_id)
      .bind_text(3, record.device_serial)
      .bind_int(4, record.t_start_ns)
      .bind_int(5, record.t_end_ns)
      .bind_int(6, record.x.rows())
      .bind_int(7, record.x.cols())
      .bind_int(8, record.theta.size())
      .bind_int(9, record.y.rows())
      .bind_int(10, record.y.cols())
      .bind_uint(11, ref.segment_id)
      .bind_uint(12, ref.offset)
      .bind_uint(13, ref.length)
      .bind_uint(14, ref.crc)
      .run();
  const auto id = static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db.get()));
  segments.write(ref, id, payload);
  added += payload.size();
  return id;
}

std::uint64_t RunStore::record_forward(const ForwardRecord& record) {
  std::lock_guard lock(impl_->mutex);
  return impl_->write_forwards(std::span<const ForwardRecord>(&record, 1)).front();
}

std::vector<std::uint64_t> RunStore::record_forwards(const std::vector<ForwardRecord>& records) {
  if (records.empty()) return {};
  std::lock_guard lock(impl_->mutex);
  return impl_->write_forwards(records);
}

std::vector<std::uint64_t> RunStore::Impl::write_forwards(std::span<const ForwardRecord> records) {
  constexpr std::string_view kWhat = "recording forward calls";
  std::vector<std::uint64_t> ids;
  ids.reserve(records.size());
  std::uint64_t added = 0;  // payload bytes: float32 x and y, float64 θ
  Pruned pruned;
  segments.begin_batch();
  try {
    Transaction transaction(db, tx, kWhat);
    for (const auto& record : records) ids.push_back(insert_forward_row(record, added));
    pruned = prune_forwards(forward_stats.bytes + added, ids.back());
    // The durability order: the batch's bytes are on disk (one fdatasync per segment written)
    // before the index rows that point at them commit.
    segments.sync_batch();
    transaction.commit(kWhat);
  } catch (...) {
    segments.rollback_batch();  // nothing committed: the bytes are cut off again
    throw;
  }
  segments.commit_batch();
  if (pruned.records > 0) segments.drop_upto(pruned.upto_segment);  // rows gone: unlink the files
  // Committed (a throw above rolled back and left the counters as they were).
  ForwardStats& f = forward_stats;
  f.bytes = f.bytes + added - pruned.bytes;
  f.records = f.records + ids.size() - pruned.records;
  f.pruned += pruned.records;
  f.newest_record_id = ids.back();
  if (f.oldest_record_id == 0) f.oldest_record_id = ids.front();
  if (pruned.records > 0) f.oldest_record_id = pruned.oldest_left;
  return ids;
}

namespace {
// A row of select_forward / select_device_forwards (same columns): the index row, and its arrays
// from its segment (or, for a row migrated from version 4, from its BLOB columns).
ForwardRecord forward_row(const Db& db, const Query& q, SegmentLog& segments,
                          std::vector<std::uint8_t>& payload) {
  ForwardRecord r;
  r.record_id = static_cast<std::uint64_t>(q.int_at(0));
  r.client_id = q.text_at(1);
  r.request_id = static_cast<std::uint64_t>(q.int_at(2));
  r.device_serial = q.text_at(3);
  r.t_start_ns = q.int_at(4);
  r.t_end_ns = q.int_at(5);
  const std::int64_t x_rows = q.int_at(6), x_cols = q.int_at(7), theta_size = q.int_at(9);
  const std::int64_t y_rows = q.int_at(11), y_cols = q.int_at(12);
  if (q.null_at(15)) {
    const std::int64_t elem_bytes = q.int_at(14);
    r.x = q.doubles_at(8, x_rows, x_cols, elem_bytes);
    r.theta = q.doubles_at(10, theta_size, 1);
    r.y = q.doubles_at(13, y_rows, y_cols, elem_bytes);
    return r;
  }
  const SegmentRef ref{
      static_cast<std::uint64_t>(q.int_at(15)), static_cast<std::uint64_t>(q.int_at(16)),
      static_cast<std::uint64_t>(q.int_at(17)), static_cast<std::uint32_t>(q.int_at(18))};
  // The schema's CHECK ties seg_length to the shapes; checked again so that a damaged index row
  // cannot make the decoder read past the payload.
  constexpr std::int64_t kMaxDim = std::int64_t{1} << 31;
  const bool dims_ok = x_rows >= 0 && x_cols >= 0 && y_rows >= 0 && y_cols >= 0 &&
                       theta_size >= 0 && x_rows <= kMaxDim && x_cols <= kMaxDim &&
                       y_rows <= kMaxDim && y_cols <= kMaxDim && theta_size <= kMaxDim;
  if (!dims_ok || 4 * static_cast<std::uint64_t>(x_rows * x_cols + y_rows * y_cols) +
                          8 * static_cast<std::uint64_t>(theta_size) !=
                      ref.length) {
    throw StoreError("run store " + db.path + ": forward record " + std::to_string(r.record_id) +
                     ": its index row's shapes do not match its length of " +
                     std::to_string(ref.length) + " bytes (the database is corrupt)");
  }
  segments.read(r.record_id, ref, payload);
  common::ByteReader in(std::span<const std::uint8_t>(payload.data(), payload.size()));
  sqlite::RowMajorMatrixF x(x_rows, x_cols), y(y_rows, y_cols);
  r.theta.resize(theta_size);
  in.array(std::span<float>(x.data(), static_cast<std::size_t>(x.size())));
  in.array(std::span<double>(r.theta.data(), static_cast<std::size_t>(theta_size)));
  in.array(std::span<float>(y.data(), static_cast<std::size_t>(y.size())));
  r.x = x.cast<double>();
  r.y = y.cast<double>();
  return r;
}
}  // namespace

std::optional<ForwardRecord> RunStore::get_forward(std::uint64_t record_id) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_forward, "reading a forward record");
  q.bind_uint(1, record_id);
  if (!q.step()) return std::nullopt;
  return forward_row(impl_->db, q, impl_->segments, impl_->payload);
}

std::vector<ForwardRecord> RunStore::device_forwards(const std::string& device_serial,
                                                     std::uint64_t max_rows) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_device_forwards, "reading a device's forward records");
  q.bind_text(1, device_serial);
  std::vector<ForwardRecord> out;
  std::uint64_t rows = 0;
  while (rows < max_rows && q.step()) {
    out.push_back(forward_row(impl_->db, q, impl_->segments, impl_->payload));
    rows += static_cast<std::uint64_t>(out.back().x.rows());
  }
  return out;
}

void RunStore::set_forward_retention(std::uint64_t max_bytes) {
  impl_->forward_max_bytes.store(max_bytes);  // the next write applies it
}

ForwardStats RunStore::forward_stats() const {
  std::lock_guard lock(impl_->mutex);
  ForwardStats f = impl_->forward_stats;
  f.max_bytes = impl_->forward_max_bytes.load();
  f.segments = impl_->segments.num_segments();
  f.segment_syncs = impl_->segments.num_syncs();
  return f;
}

const std::vector<std::string>& RunStore::forward_recovery_notes() const {
  return impl_->segment_notes;
}

}  // namespace pnn::daemon

// Forward-call records and their retention (the rest of the run store is in run_store.cpp).
#include <sqlite3.h>

#include <mutex>
#include <span>
#include <string_view>
#include <vector>

#include "pnn/daemon/run_store.hpp"
#include "run_store_impl.hpp"

namespace pnn::daemon {

using sqlite::encode_matrix_f32;
using sqlite::encode_vector;

RunStore::Impl::Pruned RunStore::Impl::prune_forwards(std::uint64_t total, std::uint64_t newest) {
  constexpr std::string_view kWhat = "deleting the oldest forward records (retention)";
  const std::uint64_t max_bytes = forward_max_bytes.load();
  Pruned pruned;
  if (max_bytes == 0 || total <= max_bytes) return pruned;
  const std::uint64_t target = max_bytes - max_bytes / 10;
  std::uint64_t upto = 0;
  {
    Query q(db, select_oldest_forwards, kWhat);
    while (total - pruned.bytes > target && q.step()) {
      const auto id = static_cast<std::uint64_t>(q.int_at(0));
      if (id >= newest) break;  // the record just written stays, even if it alone is too big
      pruned.bytes += static_cast<std::uint64_t>(q.int_at(1));
      upto = id;
      ++pruned.records;
    }
  }
  if (pruned.records == 0) return pruned;
  Query(db, delete_forwards_upto, kWhat).bind_uint(1, upto).run();
  Query q(db, select_oldest_forward_id, kWhat);
  pruned.oldest_left = q.step() ? static_cast<std::uint64_t>(q.int_at(0)) : 0;
  return pruned;
}

std::uint64_t RunStore::Impl::insert_forward_row(const ForwardRecord& record) {
  encode_matrix_f32(record.x, f32_scratch, x_bytes);
  encode_vector(record.theta, theta_bytes);
  encode_matrix_f32(record.y, f32_scratch, y_bytes);
  Query(db, insert_forward, "recording a forward call")
      .bind_text(1, record.client_id)
      .bind_uint(2, record.request_id)
      .bind_text(3, record.device_serial)
      .bind_int(4, record.t_start_ns)
      .bind_int(5, record.t_end_ns)
      .bind_int(6, record.x.rows())
      .bind_int(7, record.x.cols())
      .bind_blob(8, x_bytes)
      .bind_int(9, record.theta.size())
      .bind_blob(10, theta_bytes)
      .bind_int(11, record.y.rows())
      .bind_int(12, record.y.cols())
      .bind_blob(13, y_bytes)
      .run();
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db.get()));
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
  std::uint64_t added = 0;  // BLOB bytes: float32 x and y, float64 θ
  Pruned pruned;
  {
    Transaction transaction(db, tx, kWhat);
    for (const auto& record : records) {
      ids.push_back(insert_forward_row(record));
      added += static_cast<std::uint64_t>(record.x.size() + record.y.size()) * sizeof(float) +
               static_cast<std::uint64_t>(record.theta.size()) * sizeof(double);
    }
    pruned = prune_forwards(forward_stats.bytes + added, ids.back());
    transaction.commit(kWhat);
  }
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
// A row of select_forward / select_device_forwards (same columns).
ForwardRecord forward_row(const Query& q) {
  ForwardRecord r;
  r.record_id = static_cast<std::uint64_t>(q.int_at(0));
  r.client_id = q.text_at(1);
  r.request_id = static_cast<std::uint64_t>(q.int_at(2));
  r.device_serial = q.text_at(3);
  r.t_start_ns = q.int_at(4);
  r.t_end_ns = q.int_at(5);
  const std::int64_t elem_bytes = q.int_at(14);
  r.x = q.doubles_at(8, q.int_at(6), q.int_at(7), elem_bytes);
  r.theta = q.doubles_at(10, q.int_at(9), 1);
  r.y = q.doubles_at(13, q.int_at(11), q.int_at(12), elem_bytes);
  return r;
}
}  // namespace

std::optional<ForwardRecord> RunStore::get_forward(std::uint64_t record_id) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_forward, "reading a forward record");
  q.bind_uint(1, record_id);
  if (!q.step()) return std::nullopt;
  return forward_row(q);
}

std::vector<ForwardRecord> RunStore::device_forwards(const std::string& device_serial,
                                                     std::uint64_t max_rows) const {
  std::lock_guard lock(impl_->mutex);
  Query q(impl_->db, impl_->select_device_forwards, "reading a device's forward records");
  q.bind_text(1, device_serial);
  std::vector<ForwardRecord> out;
  std::uint64_t rows = 0;
  while (rows < max_rows && q.step()) {
    out.push_back(forward_row(q));
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
  return f;
}

}  // namespace pnn::daemon

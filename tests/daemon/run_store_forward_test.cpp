// Run-store tests of forward records: float32 x and y, bit-exact θ, batches in one transaction,
// the layout in the segment file, and retention.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

TEST_CASE("run_store: forward records keep x and y as float32 and theta bit-exactly") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const ForwardRecord first = make_forward(1);
  ForwardRecord second = make_forward(2);
  second.request_id = std::numeric_limits<std::uint64_t>::max();
  second.client_id = "";
  second.theta.resize(0);
  second.y.resize(0, 10);

  const std::uint64_t id1 = store.record_forward(first);
  const std::uint64_t id2 = store.record_forward(second);
  CHECK(id2 > id1);

  for (const auto& [id, want] : {std::pair{id1, first}, std::pair{id2, second}}) {
    CAPTURE(id);
    const auto got = store.get_forward(id);
    REQUIRE(got.has_value());
    CHECK(got->record_id == id);
    CHECK(got->client_id == want.client_id);
    CHECK(got->request_id == want.request_id);
    CHECK(got->device_serial == want.device_serial);
    CHECK(got->t_start_ns == want.t_start_ns);
    CHECK(got->t_end_ns == want.t_end_ns);
    CHECK(bit_equal(got->x, float32_rounded(want.x)));
    CHECK(bit_equal(got->theta, want.theta));  // float64, NaN payloads included
    CHECK(bit_equal(got->y, float32_rounded(want.y)));
  }
  const auto got2 = store.get_forward(id2);
  REQUIRE(got2.has_value());
  CHECK(got2->y.rows() == 0);
  CHECK(got2->y.cols() == 10);

  // The float32 conversion, entry by entry (tricky_matrix puts the specials at k * 7).
  const auto got1 = store.get_forward(id1);
  REQUIRE(got1.has_value());
  const double* x = got1->x.data();
  CHECK(bits(x[0]) == bits(-0.0));
  CHECK(bits(x[7]) == bits(0.0));  // denorm_min of double is below float32's: rounds to +0
  CHECK(x[14] == std::numeric_limits<double>::infinity());
  CHECK(x[21] == -std::numeric_limits<double>::infinity());
  CHECK(std::isnan(x[28]));
  CHECK(x[35] == static_cast<double>(0.1f));
  CHECK(x[35] != 0.1);
  CHECK(x[42] == std::numeric_limits<double>::infinity());  // 1e300 overflows float32
  const double* theta = got1->theta.data();
  CHECK(bits(theta[7]) == bits(std::numeric_limits<double>::denorm_min()));
  CHECK(bits(theta[28]) == std::uint64_t{0x7ff8000000001234});
  CHECK_FALSE(store.get_forward(id2 + 1).has_value());
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store: record_forwards writes a batch in one transaction, ids in order") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  const std::uint64_t before = store.record_forward(make_forward(0));
  std::vector<ForwardRecord> batch;
  for (int k = 1; k <= 5; ++k) batch.push_back(make_forward(static_cast<std::uint64_t>(k)));
  const std::vector<std::uint64_t> ids = store.record_forwards(batch);
  REQUIRE(ids.size() == batch.size());
  for (std::size_t k = 0; k < ids.size(); ++k) {
    CAPTURE(k);
    CHECK(ids[k] == before + 1 + k);
    const auto got = store.get_forward(ids[k]);
    REQUIRE(got.has_value());
    CHECK(got->request_id == batch[k].request_id);
    CHECK(bit_equal(got->x, float32_rounded(batch[k].x)));
    CHECK(bit_equal(got->theta, batch[k].theta));
    CHECK(bit_equal(got->y, float32_rounded(batch[k].y)));
  }
  CHECK(store.record_forwards({}).empty());
  CHECK(store.integrity_ok());
}


TEST_CASE("run_store: forward arrays are row-major little-endian float32 x and y in a segment") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  ForwardRecord r;
  r.device_serial = "SIM-LAYOUT";
  r.x.resize(2, 3);
  r.x << 1.5, 2.5, 3.5,  //
      4.5, 5.5, 6.5;
  r.theta = Vector::Constant(2, 0.25);
  r.theta[1] = 0.1;
  r.y.resize(1, 2);
  r.y << -2.0, 0.1;
  {
    RunStore store(path);
    store.record_forward(r);
  }
  // One frame after the 16-byte segment header: a 24-byte frame header, then x, θ, y.
  const std::string segment = read_bytes(path + ".segments/000000000001.seg");
  REQUIRE(segment.size() == 16 + 24 + 24 + 16 + 8);
  CHECK(segment.substr(0, 6) == "PNNSEG");
  CHECK(segment.substr(40) == le_bytes_f32({1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f}) +
                                  le_bytes_f64({0.25, 0.1}) + le_bytes_f32({-2.0f, 0.1f}));
  // The database holds the index only.
  CHECK(read_bytes(path).find(le_bytes_f32({1.5f, 2.5f, 3.5f})) == std::string::npos);
  RawDb raw(path);
  CHECK(raw.scalar("SELECT elem_bytes FROM forward_records") == "4");
  CHECK(raw.scalar("SELECT x IS NULL AND theta IS NULL AND y IS NULL FROM forward_records") == "1");
  CHECK(raw.scalar("SELECT segment_id FROM forward_records") == "1");
  CHECK(raw.scalar("SELECT seg_offset FROM forward_records") == "16");
  CHECK(raw.scalar("SELECT seg_length FROM forward_records") == "48");
  CHECK(raw.scalar("PRAGMA user_version") == "5");
}

// ---- retention ----------------------------------------------------------------------------------

// The array bytes of make_forward's records: float32 x (32×64) and y (32×10), float64 θ (96).
constexpr std::uint64_t kForwardBytes = 32 * 64 * 4 + 32 * 10 * 4 + 96 * 8;

std::uint64_t count_forward_rows(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM forward_records", -1, &stmt, nullptr) ==
          SQLITE_OK);
  REQUIRE(sqlite3_step(stmt) == SQLITE_ROW);
  const auto n = static_cast<std::uint64_t>(sqlite3_column_int64(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return n;
}

TEST_CASE("run_store: without a retention limit every forward record is kept") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  for (std::uint64_t k = 0; k < 12; ++k) (void)store.record_forward(make_forward(k));
  const ForwardStats f = store.forward_stats();
  CHECK(f.records == 12);
  CHECK(f.bytes == 12 * kForwardBytes);
  CHECK(f.pruned == 0);
  CHECK(f.max_bytes == 0);
  CHECK(f.oldest_record_id == 1);
  CHECK(f.newest_record_id == 12);
}

TEST_CASE("run_store: the retention limit deletes the oldest forward records and keeps the rest") {
  TempDir dir;
  const std::string path = dir.file("runs.db");
  const std::uint64_t limit = 5 * kForwardBytes + kForwardBytes / 2;  // room for 5 records
  std::vector<std::uint64_t> ids;
  {
    RunStore store(path);
    const std::uint64_t run = store.create_run("r", "yaml", {"SIM-0001"});
    store.set_forward_retention(limit);
    for (std::uint64_t k = 0; k < 20; ++k) {
      ids.push_back(store.record_forward(make_forward(k)));
      const ForwardStats f = store.forward_stats();
      CAPTURE(k);
      CHECK(f.bytes <= limit);
      CHECK(f.bytes == f.records * kForwardBytes);
      CHECK(f.newest_record_id == ids.back());
      CHECK(f.oldest_record_id == f.newest_record_id - f.records + 1);
      CHECK(count_forward_rows(path) == f.records);
    }
    const ForwardStats f = store.forward_stats();
    CHECK(f.max_bytes == limit);
    // Pruning goes down to 90 % of the limit: 4 records are left after each prune, 5 fit.
    CHECK(f.records >= 4);
    CHECK(f.records <= 5);
    CHECK(f.pruned == 20 - f.records);
    // The oldest are gone, the newest are intact; ids are never reused.
    CHECK_FALSE(store.get_forward(ids.front()).has_value());
    const auto last = store.get_forward(ids.back());
    REQUIRE(last.has_value());
    CHECK(last->request_id == make_forward(19).request_id);
    const std::uint64_t next = store.record_forward(make_forward(99));
    CHECK(next == ids.back() + 1);
    // Runs and metrics are never touched by forward retention.
    store.add_metric(run, metric_for_epoch(1));
    CHECK(store.get_run(run).has_value());
    CHECK(store.integrity_ok());
  }
  // Reopened: the counters are measured from the file.
  RunStore again(path);
  const ForwardStats f = again.forward_stats();
  CHECK(f.records == count_forward_rows(path));
  CHECK(f.bytes == f.records * kForwardBytes);
  CHECK(f.newest_record_id == ids.back() + 1);
  CHECK(f.pruned == 0);
}

TEST_CASE("run_store: a record larger than the whole limit is still kept as the newest") {
  TempDir dir;
  RunStore store(dir.file("runs.db"));
  store.set_forward_retention(kForwardBytes / 4);
  const std::uint64_t a = store.record_forward(make_forward(1));
  const std::uint64_t b = store.record_forward(make_forward(2));
  CHECK_FALSE(store.get_forward(a).has_value());
  CHECK(store.get_forward(b).has_value());
  CHECK(store.forward_stats().records == 1);
  // A batch over the limit keeps its newest record; older ones of the same batch may go.
  std::vector<ForwardRecord> batch;
  for (std::uint64_t k = 3; k < 7; ++k) batch.push_back(make_forward(k));
  const std::vector<std::uint64_t> batch_ids = store.record_forwards(batch);
  CHECK(store.get_forward(batch_ids.back()).has_value());
  CHECK_FALSE(store.get_forward(b).has_value());
  CHECK(store.forward_stats().records == 1);
  // Lifting the limit keeps everything from then on.
  store.set_forward_retention(0);
  for (std::uint64_t k = 7; k < 10; ++k) (void)store.record_forward(make_forward(k));
  CHECK(store.forward_stats().records == 4);
  CHECK(store.integrity_ok());
}

}  // namespace
}  // namespace pnn::daemon

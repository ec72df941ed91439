#pragma once
// Shared pieces of the run-store tests (run_store_test.cpp, run_store_forward_test.cpp,
// run_store_migration_test.cpp, run_store_durability_test.cpp): temporary directories, records
// with values that only a bit-exact store keeps, and a raw SQLite connection for reading or
// building files behind the store's back.
#include "pnn/daemon/run_store.hpp"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include "test_util.hpp"

namespace pnn::daemon::store_test {

namespace fs = std::filesystem;

// Under the system temp directory (a real disk): the store's durability is what these test.
struct TempDir : ::pnn::test::TempDir {
  TempDir() : ::pnn::test::TempDir("pnn-run-store-test") {}
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::uint64_t bits(double value) { return std::bit_cast<std::uint64_t>(value); }

inline bool bit_equal(const Matrix& a, const Matrix& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Index i = 0; i < a.rows(); ++i) {
    for (Index j = 0; j < a.cols(); ++j) {
      if (bits(a(i, j)) != bits(b(i, j))) return false;
    }
  }
  return true;
}

// What the store keeps of a forward record's x or y: each entry rounded to float32.
inline Matrix float32_rounded(const Matrix& m) { return m.cast<float>().cast<double>(); }

// Entries N(0, 1) with a few values that text or REAL storage would not keep exactly.
inline Matrix tricky_matrix(Index rows, Index cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  const double specials[] = {-0.0,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             std::bit_cast<double>(std::uint64_t{0x7ff8000000001234}),  // NaN
                             0.1,
                             1e300};
  for (Index k = 0; k < static_cast<Index>(std::size(specials)) && k < m.size(); ++k) {
    m.data()[k * 7 % m.size()] = specials[k];
  }
  return m;
}

inline ForwardRecord make_forward(std::uint64_t seed) {
  ForwardRecord r;
  r.client_id = "client-" + std::to_string(seed);
  r.request_id = seed * 1000 + 7;
  r.device_serial = "SIM-0001";
  r.t_start_ns = 1'700'000'000'000'000'000 + static_cast<std::int64_t>(seed);
  r.t_end_ns = r.t_start_ns + 12345;
  r.x = tricky_matrix(32, 64, seed);
  r.theta = tricky_matrix(96, 1, seed + 1);
  r.y = tricky_matrix(32, 10, seed + 2);
  return r;
}

inline MetricRecord metric_for_epoch(int epoch) {
  MetricRecord m;
  m.phase = epoch % 2 == 0 ? "train" : "pat";
  m.epoch = epoch;
  m.train_loss = 1.0 / (epoch + 3.0);
  m.train_accuracy = std::sqrt(epoch + 0.5) / 100.0;
  m.test_accuracy = epoch % 3 == 0 ? -1.0 : 0.1 * epoch;
  m.seconds = 0.001 * epoch + 1e-17;
  return m;
}

inline void check_metric_equal(const MetricRecord& got, const MetricRecord& want) {
  CHECK(got.phase == want.phase);
  CHECK(got.epoch == want.epoch);
  CHECK(bits(got.train_loss) == bits(want.train_loss));
  CHECK(bits(got.train_accuracy) == bits(want.train_accuracy));
  CHECK(bits(got.test_accuracy) == bits(want.test_accuracy));
  CHECK(bits(got.seconds) == bits(want.seconds));
}

inline std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename F>
inline std::string error_message_of(F&& f) {
  try {
    f();
  } catch (const StoreError& e) {
    return e.what();
  }
  FAIL("expected a StoreError");
  return "";
}

// Little-endian bytes of float32 or float64 values.
inline std::string le_bytes_f32(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) {
    const auto u = std::bit_cast<std::uint32_t>(v);
    for (int byte = 0; byte < 4; ++byte) out.push_back(static_cast<char>(u >> (8 * byte)));
  }
  return out;
}
inline std::string le_bytes_f64(std::initializer_list<double> values) {
  std::string out;
  for (double v : values) {
    const std::uint64_t u = bits(v);
    for (int byte = 0; byte < 8; ++byte) out.push_back(static_cast<char>(u >> (8 * byte)));
  }
  return out;
}

// A raw sqlite3 connection for tests that read or build a file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                   nullptr);
    REQUIRE_MESSAGE(rc == SQLITE_OK, sqlite3_errstr(rc));
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
    const std::string message = error != nullptr ? error : "";
    sqlite3_free(error);
    REQUIRE_MESSAGE(rc == SQLITE_OK, (message + " [" + sql + "]"));
  }
  // The first column of each row of `sql`, as text (BLOBs as their bytes).
  std::vector<std::string> column(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
    REQUIRE_MESSAGE(rc == SQLITE_OK, (std::string(sqlite3_errmsg(db_)) + " [" + sql + "]"));
    std::vector<std::string> out;
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, 0));
      out.emplace_back(data == nullptr ? "" : std::string(data, static_cast<std::size_t>(
                                                                    sqlite3_column_bytes(stmt, 0))));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  std::string scalar(const std::string& sql) {
    const auto rows = column(sql);
    REQUIRE_MESSAGE(rows.size() == 1, sql);
    return rows[0];
  }
  sqlite3* get() const { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace pnn::daemon::store_test

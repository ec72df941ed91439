// The run store's learned twins (schema version 4): versioned records with their bytes and
// report card, listing per device, the twin each device uses kept across reopening, disk full,
// and the migration from version 3.
#include <doctest/doctest.h>

#include "daemon/run_store_test_util.hpp"
#include "pnn/daemon/run_store.hpp"

namespace pnn::daemon {
namespace {

using namespace store_test;

TwinRecord twin_for(const std::string& serial, const std::string& family, std::string bytes) {
  TwinRecord t;
  t.device_serial = serial;
  t.device_kind = "mechanical-oscillators";
  t.family = family;
  t.data_hash = std::string(64, 'a');
  t.report_json = R"({"twin_nmse":0.01})";
  t.model = std::move(bytes);
  return t;
}

TEST_CASE("run_store twins: stored with their bytes, listed newest first without them") {
  TempDir dir;
  const std::string path = dir.file("twins.db");
  // Bytes a text column would mangle: NUL, high bytes.
  const std::string bytes = std::string("PNNCKPT\0\x01\xff\x80", 11) + std::string(5000, '\x7f');
  std::uint64_t a = 0, b = 0, c = 0;
  {
    RunStore store(path);
    CHECK(store.list_twins().empty());
    CHECK_FALSE(store.get_twin(1).has_value());
    CHECK(store.active_twin("SIM-OSC-1") == 0);
    a = store.add_twin(twin_for("SIM-OSC-1", "grey-box", bytes));
    b = store.add_twin(twin_for("SIM-OSC-2", "mlp", "x"));
    c = store.add_twin(twin_for("SIM-OSC-1", "residual", "y"));
    CHECK(a < b);
    CHECK(b < c);
    store.set_active_twin("SIM-OSC-1", c);
    store.set_active_twin("SIM-OSC-1", a);  // the last set wins
  }
  RunStore store(path);
  const auto t = store.get_twin(a);
  REQUIRE(t.has_value());
  CHECK(t->model == bytes);
  CHECK(t->device_serial == "SIM-OSC-1");
  CHECK(t->family == "grey-box");
  CHECK(t->data_hash == std::string(64, 'a'));
  CHECK(t->report_json == R"({"twin_nmse":0.01})");
  CHECK(t->created_ns > 0);
  const auto all = store.list_twins();
  REQUIRE(all.size() == 3);
  CHECK(all[0].twin_id == c);
  CHECK(all[2].twin_id == a);
  CHECK(all[0].model.empty());  // lists carry no bytes
  const auto one = store.list_twins("SIM-OSC-1");
  REQUIRE(one.size() == 2);
  CHECK(one[0].twin_id == c);
  CHECK(one[1].twin_id == a);
  CHECK(store.list_twins("SIM-OSC-1", 1).size() == 1);
  CHECK(store.active_twin("SIM-OSC-1") == a);
  CHECK(store.active_twin("SIM-OSC-2") == 0);
  store.set_active_twin("SIM-OSC-1", 0);
  CHECK(store.active_twin("SIM-OSC-1") == 0);
  CHECK(store.integrity_ok());
}

TEST_CASE("run_store twins: a full disk stores nothing, and the same write succeeds later") {
  TempDir dir;
  RunStore store(dir.file("full.db"));
  (void)store.add_twin(twin_for("SIM-OSC-1", "mlp", "small"));
  RawDb raw(dir.file("full.db"));
  const auto pages = std::stoull(raw.scalar("PRAGMA page_count"));
  store.set_max_page_count_for_testing(pages);
  const std::string big(1 << 20, 'z');  // needs new pages
  bool full = false;
  try {
    (void)store.add_twin(twin_for("SIM-OSC-1", "mlp", big));
  } catch (const StoreError& e) {
    full = e.disk_full();
  }
  CHECK(full);
  CHECK(store.list_twins().size() == 1);
  store.set_max_page_count_for_testing(1u << 30);
  const std::uint64_t id = store.add_twin(twin_for("SIM-OSC-1", "mlp", big));
  CHECK(store.get_twin(id)->model == big);
}

TEST_CASE("run_store: a version-3 file is migrated to versions 4 (twins) and 5 keeping its runs") {
  TempDir dir;
  const std::string path = dir.file("v3.db");
  {
    RunStore store(path);
    (void)store.create_run("v3-run", "name: x", {"SIM-OSC-1"}, "alice");
  }
  {
    // Version 3 is version 4 without the twin tables.
    RawDb raw(path);
    raw.exec("DROP TABLE twins; DROP TABLE active_twins; PRAGMA user_version = 3");
  }
  {
    RunStore store(path);
    CHECK(store.integrity_ok());
    const auto run = store.get_run(1);
    REQUIRE(run.has_value());
    CHECK(run->name == "v3-run");
    CHECK(run->owner == "alice");
    CHECK(store.list_twins().empty());
    const std::uint64_t id = store.add_twin(twin_for("SIM-OSC-1", "grey-box", "b"));
    store.set_active_twin("SIM-OSC-1", id);
  }
  RawDb raw(path);
  CHECK(raw.scalar("PRAGMA user_version") == "5");
  CHECK(raw.scalar("SELECT count(*) FROM twins") == "1");
  CHECK(raw.scalar("SELECT twin_id FROM active_twins WHERE device_serial = 'SIM-OSC-1'") == "1");
}

}  // namespace
}  // namespace pnn::daemon

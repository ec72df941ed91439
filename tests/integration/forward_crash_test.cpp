// The real pnnd binary recording Forward calls in sync mode (each reply only after its record is
// durable: segment bytes fdatasync'd, then the index row committed), killed with SIGKILL while
// calls are in flight, three times on the same store: every acknowledged forward is present and
// readable, bit for bit, and reopening reports no damage.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <map>

#include "daemon/daemon_test_util.hpp"
#include "pnn/bench/daemon_process.hpp"
#include "pnn/daemon/run_store.hpp"

#ifdef PNN_PNND_PATH

namespace pnn::daemon::test {

using bench::DaemonProcess;
using bench::DaemonProcessOptions;
namespace {

constexpr int kRows = 256;
constexpr int kWindow = 4;  // calls in flight when the kill lands

std::string write_lab(const TempDir& dir) {
  const std::string path = dir.file("lab.yaml");
  std::ofstream out(path);
  out << "version: 1\n"
      << "rpc: {bind: 'tcp://127.0.0.1:*'}\n"
      << "telemetry: {bind: 'tcp://127.0.0.1:*', heartbeat_ms: 100}\n"
      << "store: {path: '" << dir.file("store/pnnd.sqlite") << "', runs_dir: '" << dir.file("runs")
      << "', forward_records: sync}\n"
      << "devices:\n"
      << "  power: {address: 'sim://power-law?prefactor=2', autostart: true}\n";
  return path;
}

struct Acked {
  std::uint64_t request_id = 0;
  float x = 0.0f;
  float y0 = 0.0f;
};

// One daemon life: Forward calls pipelined `kWindow` deep until `kill_after` replies came back,
// then SIGKILL with calls still in flight. Adds every OK reply to `acked` (by record id).
void run_until_killed(const TempDir& dir, const std::string& config, int kill_after,
                      std::uint64_t& next_x, std::map<std::uint64_t, Acked>& acked) {
  DaemonProcess pnnd(
      {.executable = PNN_PNND_PATH, .config_path = config, .log_path = dir.file("pnnd.log")});
  ClientOptions o;
  o.endpoint = pnnd.rpc_endpoint();
  o.client_id = "crash-recorder";
  o.timeout = 8s;
  Client client(std::move(o));
  const std::string token = acquire_token(client, "power");
  std::map<std::uint64_t, float> in_flight;  // request id -> x
  int replies = 0;
  const auto take = [&](const v1::Reply& reply) {
    const auto it = in_flight.find(reply.request_id());
    REQUIRE(it != in_flight.end());
    REQUIRE_MESSAGE(reply.status().code() == v1::OK, reply.status().message());
    REQUIRE(reply.forward().recorded());
    REQUIRE(reply.forward().y().data_size() == kRows);
    acked[reply.forward().record_id()] = {reply.request_id(), it->second,
                                          reply.forward().y().data(0)};
    in_flight.erase(it);
    ++replies;
  };
  while (replies < kill_after) {
    while (in_flight.size() < kWindow) {
      const float x = 1.0f + static_cast<float>(next_x++) / 4096.0f;
      in_flight[client.send(forward("power", token, kRows, 1, x, {2.0}))] = x;
    }
    const auto reply = client.receive(8s);
    REQUIRE(reply.has_value());
    take(*reply);
  }
  pnnd.signal(SIGKILL);
  const auto status = pnnd.wait(10000ms);
  REQUIRE(status);
  REQUIRE(WIFSIGNALED(*status));
  // Replies the daemon sent before it died were acknowledged too.
  while (auto reply = client.receive(300ms)) take(*reply);
}

}  // namespace

TEST_CASE("daemon: kill -9 while recording forwards in sync mode loses no acknowledged record") {
  TempDir dir("forward-crash");
  const std::string config = write_lab(dir);
  const std::string store_path = dir.file("store/pnnd.sqlite");
  std::map<std::uint64_t, Acked> acked;
  std::uint64_t next_x = 0;
  for (int kill_after : {40, 150, 90}) {
    CAPTURE(kill_after);
    run_until_killed(dir, config, kill_after, next_x, acked);
  }
  REQUIRE(acked.size() >= 280);

  RunStore store(store_path);
  CHECK(store.integrity_ok());
  for (const auto& note : store.forward_recovery_notes()) {
    CAPTURE(note);
    // Only repairs of what was never acknowledged: no committed segment lost or shortened.
    CHECK(
        (note.find("truncated forward segment") == 0 || note.find("removed forward segment") == 0));
  }
  for (const auto& [record_id, a] : acked) {
    CAPTURE(record_id);
    const auto rec = store.get_forward(record_id);
    REQUIRE(rec.has_value());
    CHECK(rec->request_id == a.request_id);
    CHECK(rec->client_id == "crash-recorder");
    REQUIRE(rec->x.rows() == kRows);
    REQUIRE(rec->y.rows() == kRows);
    CHECK(rec->x(0, 0) == static_cast<double>(a.x));
    CHECK(rec->x(kRows - 1, 0) == static_cast<double>(a.x));
    CHECK(rec->theta.size() == 1);
    CHECK(rec->theta[0] == 2.0);
    CHECK(rec->y(0, 0) == static_cast<double>(a.y0));  // the y the client got, bit for bit
  }
  // The store keeps working after the crashes.
  ForwardRecord r = *store.get_forward(acked.begin()->first);
  const std::uint64_t id = store.record_forward(r);
  CHECK(id > acked.rbegin()->first);
  CHECK(store.get_forward(id).has_value());
}

}  // namespace pnn::daemon::test

#endif  // PNN_PNND_PATH

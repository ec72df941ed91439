#pragma once
// Helpers for the daemon tests: a server running in-process on 127.0.0.1 with ephemeral ports,
// temp directories, and request builders for the raw DEALER client.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pnn/client/client.hpp"
#include "pnn/daemon/config.hpp"
#include "pnn/daemon/protocol.hpp"
#include "pnn/daemon/server.hpp"
#include "test_util.hpp"

namespace pnn::daemon::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
// The client side of these tests is the client library (pnn::client), as for any user.
using client::Client;
using client::ClientError;
using client::ClientOptions;
using client::CurveClientKeys;
using client::CurveKeyPair;
using client::make_curve_keypair;
using client::NoReplyError;
using client::Subscriber;

/// On tmpfs (/dev/shm) when there is one: the store's fsyncs are then free, and these tests are
/// about the daemon, not the disk.
struct TempDir : ::pnn::test::TempDir {
  explicit TempDir(const std::string& tag) : ::pnn::test::TempDir("pnnd-test-" + tag, in_memory()) {}
};

/// A config on ephemeral loopback ports with its store in `dir`.
inline DaemonConfig test_config(const TempDir& dir) {
  DaemonConfig c;
  c.source = "test-lab.yaml";
  c.rpc_bind = "tcp://127.0.0.1:*";
  c.telemetry_bind = "tcp://127.0.0.1:*";
  c.store_path = dir.file("store/pnnd.sqlite");
  c.runs_dir = dir.file("runs");
  c.heartbeat_ms = 100;
  return c;
}

inline DeviceConfig device(const std::string& name, const std::string& address,
                           bool autostart = true) {
  DeviceConfig d;
  d.name = name;
  d.address = address;
  d.autostart = autostart;
  return d;
}

/// The server running on its own thread; stopped gracefully and joined on destruction.
class RunningServer {
 public:
  explicit RunningServer(DaemonConfig config, ServerOptions options = {}) {
    options.handle_signals = false;
    if (!options.on_log) {
      options.on_log = [](const std::string& level, const std::string& text) {
        if (level != "info") MESSAGE("pnnd " << level << ": " << text);
      };
    }
    server_ = std::make_unique<Server>(std::move(config), std::move(options));
    thread_ = std::thread([this] { server_->run(); });
  }
  ~RunningServer() { stop(); }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  void stop() {
    if (!thread_.joinable()) return;
    server_->request_stop();
    thread_.join();
  }
  Server& server() { return *server_; }
  const std::string& rpc() const { return server_->rpc_endpoint(); }
  const std::string& telemetry() const { return server_->telemetry_endpoint(); }

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

inline std::unique_ptr<Client> make_client(const std::string& endpoint,
                                           const std::string& client_id = "",
                                           const CurveClientKeys& curve = {}) {
  ClientOptions o;
  o.endpoint = endpoint;
  o.client_id = client_id;
  o.timeout = 8s;
  o.curve = curve;
  return std::make_unique<Client>(std::move(o));
}

// ---- request builders ----------------------------------------------------------------------

inline v1::Request with_token(v1::Request r, const std::string& token) {
  r.set_lease_token(token);
  return r;
}

inline v1::Request hello() {
  v1::Request r;
  r.mutable_hello();
  return r;
}

inline v1::Request describe(const std::string& device) {
  v1::Request r;
  r.mutable_describe()->set_device(device);
  return r;
}

inline v1::Request acquire(const std::string& device, std::uint32_t ttl_ms = 0) {
  v1::Request r;
  r.mutable_acquire()->set_device(device);
  r.mutable_acquire()->set_ttl_ms(ttl_ms);
  return r;
}

inline v1::Request release(const std::string& device, const std::string& token) {
  v1::Request r;
  r.mutable_release()->set_device(device);
  return with_token(r, token);
}

inline v1::Request lifecycle(const std::string& device, v1::LifecycleRequest::Transition t,
                             const std::string& token) {
  v1::Request r;
  r.mutable_lifecycle()->set_device(device);
  r.mutable_lifecycle()->set_transition(t);
  return with_token(r, token);
}

/// Forward of `rows` samples with every input = x and θ = theta (one entry per parameter).
inline v1::Request forward(const std::string& device, const std::string& token, int rows,
                           int cols, float x, const std::vector<double>& theta) {
  v1::Request r;
  auto* f = r.mutable_forward();
  f->set_device(device);
  f->mutable_x()->add_shape(static_cast<std::uint32_t>(rows));
  f->mutable_x()->add_shape(static_cast<std::uint32_t>(cols));
  for (int i = 0; i < rows * cols; ++i) f->mutable_x()->add_data(x);
  for (double t : theta) f->mutable_theta()->add_data(t);
  return with_token(r, token);
}

/// Acquires `device` for `client` and returns the token (REQUIREs success).
inline std::string acquire_token(Client& client, const std::string& device,
                                 std::uint32_t ttl_ms = 0) {
  const v1::Reply reply = client.call(acquire(device, ttl_ms));
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, reply.status().message());
  return reply.acquire().lease_token();
}

inline v1::DeviceInfo describe_device(Client& client, const std::string& device) {
  const v1::Reply reply = client.call(describe(device));
  REQUIRE_MESSAGE(reply.status().code() == v1::OK, reply.status().message());
  return reply.describe().device();
}

/// Polls `done` every 20 ms until it holds or `limit` passes; returns whether it held.
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = 8000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

inline std::string status_text(const v1::Reply& r) {
  return v1::StatusCode_Name(r.status().code()) + ": " + r.status().message();
}

}  // namespace pnn::daemon::test

// The controller of pnnd: start-up (store, devices, sockets), signals, reload, the graceful stop
// (jobs stopped, devices safe, store flushed) and the event loop. The parts it wires together are
// listed in server_impl.hpp.
#include "pnn/daemon/server.hpp"

#include <csignal>
#include <cstring>
#include <filesystem>
#include <pthread.h>

#include <google/protobuf/stubs/logging.h>

#include "pnn/client/client.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

namespace fs = std::filesystem;

Server::Impl::Impl(DaemonConfig c, ServerOptions o)
    : config(std::move(c)),
      options(std::move(o)),
      telemetry(io, pub, detail::make_instance_id(), options.on_log),
      gate(config.reply_cache_entries, config.reply_cache_bytes) {
  outbox.set_limits(config.max_queued_reply_bytes_per_peer, config.max_queued_reply_bytes);
  connections.set_limits(config.max_connections, config.max_connections_per_peer);
  compute.set_limits(config.max_pending_request_bytes_per_peer, config.max_pending_request_bytes);
}

void Server::Impl::setup_sockets() {
  const bool curve = config.security.curve_enabled();
  if (curve) {
    public_key = client::curve_public_key(config.security.server_secret_key);
    zap = std::make_unique<detail::ZapAuthenticator>(
        zmq_context, config.security.clients, [this](const std::string& m) { log("warning", m); });
  }
  auto secure = [&](zmq::socket_t& s) {
    if (!curve) return;
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, config.security.server_secret_key);
    s.set(zmq::sockopt::zap_domain, "pnnd");
  };
  // Requests up to the configured limit get a TOO_LARGE reply; far larger ones would be held
  // in memory before that check, so libzmq drops those connections outright.
  const auto hard_cap = static_cast<std::int64_t>(
      std::max<std::uint64_t>(4 * config.max_message_bytes, config.max_message_bytes + (1u << 20)));
  router.set(zmq::sockopt::maxmsgsize, hard_cap);
  router.set(zmq::sockopt::linger, 1000);
  // Replies: a few whole messages per peer inside libzmq; past that send() says EAGAIN
  // (ROUTER_MANDATORY) and the reply waits in the byte-bounded Outbox. Requests: bounded too.
  router.set(zmq::sockopt::router_mandatory, 1);
  // A client reconnecting with its routing id takes it over at once (the shipped clients keep
  // a random 128-bit one across lazy-pirate reconnects; it is their identity without CURVE).
  router.set(zmq::sockopt::router_handover, 1);
  router.set(zmq::sockopt::sndhwm, 8);
  router.set(zmq::sockopt::rcvhwm, 1000);
  // No ZMTP heartbeats: with libzmq 4.3.4 they make the engine assert (!_io_error,
  // stream_engine_base.cpp) when a peer disconnects under back-pressure, aborting pnnd (libzmq
  // issues 3937, 4364, 4767). Dead peers are found by TCP keepalive instead, and clients see
  // pnnd's liveness in the telemetry heartbeat ("hb" events).
  for (zmq::socket_t* sock : {&router, &pub}) {
    sock->set(zmq::sockopt::tcp_keepalive, 1);
    sock->set(zmq::sockopt::tcp_keepalive_idle, 30);
    sock->set(zmq::sockopt::tcp_keepalive_intvl, 5);
    sock->set(zmq::sockopt::tcp_keepalive_cnt, 3);
    sock->set(zmq::sockopt::handshake_ivl, 10000);  // a connection that never greets is closed
  }
  secure(router);
  pub.set(zmq::sockopt::sndhwm, 10000);
  pub.set(zmq::sockopt::linger, 500);
  secure(pub);
  monitor_connections();
  auto bind = [&](zmq::socket_t& s, const std::string& endpoint, const char* key) {
    try {
      s.bind(endpoint);
    } catch (const zmq::error_t& e) {
      throw ConfigError(config.source + ": '" + key + "': cannot bind " + endpoint + ": " +
                        e.what() + " (is another pnnd running? choose a free port)");
    }
    return s.get(zmq::sockopt::last_endpoint);
  };
  rpc_endpoint = bind(router, config.rpc_bind, "rpc.bind");
  telemetry_endpoint = bind(pub, config.telemetry_bind, "telemetry.bind");
}


void Server::Impl::monitor_connections() {
  auto attach = [&](zmq::socket_t& sock, const char* endpoint) {
    if (zmq_socket_monitor(sock.handle(), endpoint,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0) {
      throw std::runtime_error(std::string("cannot monitor a socket: ") + zmq_strerror(zmq_errno()));
    }
    auto pair = std::make_unique<zmq::socket_t>(zmq_context, zmq::socket_type::pair);
    pair->set(zmq::sockopt::linger, 0);
    pair->connect(endpoint);
    return pair;
  };
  router_monitor = attach(router, "inproc://pnnd-monitor-rpc");
  pub_monitor = attach(pub, "inproc://pnnd-monitor-telemetry");
}

void Server::Impl::on_monitor_event(std::vector<zmq::message_t>& f) {
  if (f.empty() || f[0].size() < 6) return;
  std::uint16_t event = 0;
  std::int32_t fd = 0;
  std::memcpy(&event, f[0].data(), 2);
  std::memcpy(&fd, static_cast<const char*>(f[0].data()) + 2, 4);
  if (event == ZMQ_EVENT_ACCEPTED) connections.on_accepted(fd);
  if (event == ZMQ_EVENT_DISCONNECTED) connections.on_closed(fd);
}


void Server::Impl::install_signals() {
  if (!options.handle_signals) return;
  signals.add(SIGINT);
  signals.add(SIGTERM);
  signals.add(SIGHUP);
  wait_signals();
}


void Server::Impl::start() {
  descriptor_limit = detail::raise_descriptor_limit();
  // Keep descriptors for the store, the job files and the devices whatever the clients do.
  constexpr std::uint64_t kReservedDescriptors = 256;
  if (descriptor_limit < config.max_connections + kReservedDescriptors) {
    const auto cap = static_cast<std::uint32_t>(
        descriptor_limit > 2 * kReservedDescriptors ? descriptor_limit - kReservedDescriptors
                                                    : descriptor_limit / 2);
    log("warning", "the descriptor limit is " + std::to_string(descriptor_limit) +
                       " (ulimit -n, hard): rpc.max_connections lowered from " +
                       std::to_string(config.max_connections) + " to " + std::to_string(cap));
    config.max_connections = cap;
    config.max_connections_per_peer = std::min(config.max_connections_per_peer, cap);
    connections.set_limits(config.max_connections, config.max_connections_per_peer);
  }
  fs::path store_path(config.store_path);
  std::error_code ec;
  if (store_path.has_parent_path()) fs::create_directories(store_path.parent_path(), ec);
  fs::create_directories(config.runs_dir, ec);
  if (ec) {
    throw ConfigError(config.source + ": 'store.runs_dir': cannot create " + config.runs_dir +
                      ": " + ec.message());
  }
  store = std::make_unique<RunStore>(config.store_path);
  store->set_forward_retention(config.forward_records_max_bytes);
  for (const auto& note : store->forward_recovery_notes()) log("warning", "run store: " + note);
  for (auto id : store->aborted_on_open()) {
    log("warning", "run " + std::to_string(id) + " was left running by a crash: marked ABORTED "
                   "(resume it with SubmitJob resume_run_id=" + std::to_string(id) + ")");
  }
  if (config.forward_recording == ForwardRecording::kAsync) {
    recorder = std::make_unique<detail::ForwardRecorder>(
        *store, config.forward_queue_bytes,
        [this](const std::string& m) { log_async("error", m); },
        [this] { note_forward_retention(); });
  }
  for (const auto& d : config.devices) devices[d.name] = make_slot(d);
  // Autostart before serving, in parallel on the device workers.
  start_devices(devices, [this](const std::string& level, const std::string& text) { log(level, text); });
  setup_sockets();
  if (config.http.enabled()) setup_dashboard();
}

void Server::Impl::setup_dashboard() {
  detail::DashboardOptions o;
  o.http = config.http;
  o.runs_dir = config.runs_dir;
  o.store = store.get();
  // The snapshot the Snapshot RPC gives, built on the event loop when the dashboard asks.
  o.fetch_snapshot = [this](std::function<void(std::string)> done) {
    asio::post(io, [this, done = std::move(done)] {
      v1::SnapshotReply out;
      out.set_instance_id(telemetry.instance_id());
      out.set_seq(telemetry.seq());
      for (const auto& [name, s] : devices) fill_device(*s, out.add_devices());
      for (const auto& [id, j] : jobs) *out.add_jobs() = j->info;
      done(out.SerializeAsString());
    });
  };
  try {
    dashboard = std::make_unique<detail::Dashboard>(std::move(o));
  } catch (const std::exception& e) {
    throw ConfigError(config.source + ": 'http.bind': " + e.what() +
                      " (is another pnnd or web server using the port? choose a free one)");
  }
  http_url = dashboard->url();
  telemetry.set_tap([d = dashboard.get()](const std::string& topic, const std::string& body) {
    d->on_event(topic, body);
  });
}


void Server::Impl::reload() {
  if (phase != Phase::kServing) return;
  if (options.config_path.empty()) {
    log("warning", "reload requested but pnnd was started without a config file");
    return;
  }
  DaemonConfig fresh;
  try {
    fresh = load_daemon_config(options.config_path);
  } catch (const std::exception& e) {
    log("error", std::string("reload failed; the running config stays: ") + e.what());
    return;
  }
  std::vector<std::string> applied, not_applied;
  for (const auto& d : fresh.devices) {
    DeviceSlot* s = find_device(d.name);
    if (!s) {
      try {
        add_device_at_runtime(d);
        config.devices.push_back(d);
        applied.push_back("added device " + d.name + " (" + d.address + ")");
      } catch (const std::exception& e) {
        not_applied.push_back("device " + d.name + " not added: " + e.what());
      }
    } else if (s->config.address != d.address) {
      not_applied.push_back("device " + d.name + ": address change needs a restart");
    } else if (!(s->config.drift == d.drift)) {
      not_applied.push_back("device " + d.name + ": a drift settings change needs a restart");
    }
  }
  for (const auto& [name, s] : devices) {
    const bool kept = std::any_of(fresh.devices.begin(), fresh.devices.end(),
                                  [&](const DeviceConfig& d) { return d.name == name; });
    if (!kept) not_applied.push_back("device " + name + " removed from the file: still served until a restart");
  }
  auto setting = [&](const char* key, auto& current, const auto& wanted) {
    if (current == wanted) return;
    current = wanted;
    applied.push_back(std::string(key) + " changed");
  };
  setting("rpc.default_deadline_ms", config.default_deadline_ms, fresh.default_deadline_ms);
  setting("rpc.reply_cache_entries", config.reply_cache_entries, fresh.reply_cache_entries);
  setting("rpc.reply_cache_bytes", config.reply_cache_bytes, fresh.reply_cache_bytes);
  gate.set_limits(config.reply_cache_entries, config.reply_cache_bytes);
  setting("telemetry.heartbeat_ms", config.heartbeat_ms, fresh.heartbeat_ms);
  setting("leases.default_ttl_ms", config.lease_default_ttl_ms, fresh.lease_default_ttl_ms);
  setting("leases.max_ttl_ms", config.lease_max_ttl_ms, fresh.lease_max_ttl_ms);
  setting("jobs.stop_timeout_ms", config.job_stop_timeout_ms, fresh.job_stop_timeout_ms);
  setting("supervision.reconnect_initial_ms", config.reconnect_initial_ms,
          fresh.reconnect_initial_ms);
  setting("supervision.reconnect_max_ms", config.reconnect_max_ms, fresh.reconnect_max_ms);
  auto restart_only = [&](const char* key, bool differs) {
    if (differs) not_applied.push_back(std::string(key) + " changed: needs a restart");
  };
  restart_only("rpc.bind", fresh.rpc_bind != config.rpc_bind);
  restart_only("telemetry.bind", fresh.telemetry_bind != config.telemetry_bind);
  restart_only("rpc.max_message_bytes", fresh.max_message_bytes != config.max_message_bytes);
  restart_only("store.path", fresh.store_path != config.store_path);
  restart_only("store.runs_dir", fresh.runs_dir != config.runs_dir);
  restart_only("store.forward_records", fresh.forward_recording != config.forward_recording);
  restart_only("store.forward_queue_bytes", fresh.forward_queue_bytes != config.forward_queue_bytes);
  setting("store.forward_records_max_bytes", config.forward_records_max_bytes,
          fresh.forward_records_max_bytes);
  store->set_forward_retention(config.forward_records_max_bytes);
  bool security_changed = fresh.security.server_secret_key != config.security.server_secret_key ||
                          fresh.security.clients.size() != config.security.clients.size();
  for (std::size_t i = 0; !security_changed && i < fresh.security.clients.size(); ++i) {
    security_changed = fresh.security.clients[i].public_key != config.security.clients[i].public_key ||
                       fresh.security.clients[i].role != config.security.clients[i].role;
  }
  restart_only("security", security_changed);
  std::string text = "reloaded " + options.config_path + ":";
  if (applied.empty() && not_applied.empty()) text += " no changes";
  for (const auto& a : applied) text += " [applied] " + a + ";";
  for (const auto& n : not_applied) text += " [not applied] " + n + ";";
  log("info", text);
}


void Server::Impl::begin_shutdown(const std::string& why) {
  if (phase != Phase::kServing) {
    log("info", "already stopping (" + why + ")");
    return;
  }
  phase = Phase::kStoppingJobs;
  log("info", "stopping (" + why + "): no new work; running jobs stop after their current batch");
  for (auto& [id, j] : jobs) {
    if (j->finished) continue;
    j->stop_for_shutdown = true;
    j->stop = true;
  }
  if (running_jobs() == 0) {
    drive_devices_safe();
    return;
  }
  stop_timer.expires_after(std::chrono::milliseconds(config.job_stop_timeout_ms));
  stop_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || phase != Phase::kStoppingJobs) return;
    log("warning", std::to_string(running_jobs()) + " job(s) did not stop within " +
                       std::to_string(config.job_stop_timeout_ms) +
                       " ms (jobs.stop_timeout_ms); driving their devices safe anyway");
    drive_devices_safe();
  });
}

void Server::Impl::drive_devices_safe() {
  if (phase == Phase::kSafeState || phase == Phase::kStopped) return;
  phase = Phase::kSafeState;
  stop_timer.cancel();
  for (auto& [name, s] : devices) clear_lease(*s);
  devices_pending_safe = devices.size();
  if (devices_pending_safe == 0) return finish_shutdown();
  for (auto& [name, s] : devices) {
    DeviceSlot* slot = s.get();
    // Behind every call already queued for the device.
    on_device(*slot, [this, slot] {
      std::string error;
      if (slot->device->state() == Lifecycle::kActive) {
        if (auto r = slot->device->deactivate(); !r) {
          error = r.error().message;
          slot->device->shutdown();  // last resort: safe state whatever the lifecycle says
        }
      }
      return std::function<void()>([this, slot, error] {
        if (!error.empty()) log("error", "device " + slot->config.name + ": " + error);
        if (--devices_pending_safe == 0) finish_shutdown();
      });
    });
  }
}

void Server::Impl::finish_shutdown() {
  if (recorder) recorder->close();  // every queued forward record reaches the store
  log("info", "devices in their safe state, store flushed; bye");
  phase = Phase::kStopped;
  telemetry.stop();
  stop_timer.cancel();
  for (auto& [name, s] : devices) {
    s->lease_timer->cancel();
    s->recovery_timer->cancel();
  }
  boost::system::error_code ignored;
  signals.cancel(ignored);
  if (router_reader) router_reader->stop();
  if (zap_reader) zap_reader->stop();
  if (router_monitor_reader) router_monitor_reader->stop();
  if (pub_monitor_reader) pub_monitor_reader->stop();
  outbox_timer.cancel();
  finish_retry_timer.cancel();
  retry_pending_finishes();
}


void Server::Impl::wait_signals() {
  signals.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      reload();
    } else {
      begin_shutdown(signo == SIGINT ? "SIGINT" : "SIGTERM");
    }
    if (phase != Phase::kStopped) wait_signals();
  });
}


void Server::Impl::run() {
  router_reader = std::make_unique<detail::ZmqReader>(
      io, router, [this](std::vector<zmq::message_t>& f) { on_rpc(f); });
  router_monitor_reader = std::make_unique<detail::ZmqReader>(
      io, *router_monitor, [this](std::vector<zmq::message_t>& f) { on_monitor_event(f); });
  pub_monitor_reader = std::make_unique<detail::ZmqReader>(
      io, *pub_monitor, [this](std::vector<zmq::message_t>& f) { on_monitor_event(f); });
  router_monitor_reader->start();
  pub_monitor_reader->start();
  if (zap) {
    zap_reader = std::make_unique<detail::ZmqReader>(io, zap->socket(),
                                                     [this](std::vector<zmq::message_t>& f) {
                                                       zap->on_request(f);
                                                       zap_reader->after_send();
                                                     });
    zap_reader->start();
  }
  router_reader->start();
  if (dashboard) dashboard->start();
  telemetry.start_heartbeat([this] { return config.heartbeat_ms; }, [this] { return devices_digest(); });
  for (auto& [name, s] : devices) {
    if (s->device->status().health == Health::kFault) schedule_recovery(*s);  // e.g. absent at autostart
  }
  log("info", "serving " + std::to_string(devices.size()) + " device(s) on " + rpc_endpoint +
                  ", telemetry on " + telemetry_endpoint + ", instance " + telemetry.instance_id());
  if (options.handle_signals) unblock_signals();  // pending ones now reach the signal_set
  io.run();
  cleanup();
}


// After the event loop: join jobs and workers, close the store. Idempotent.
void Server::Impl::cleanup() {
  if (cleaned_up) return;
  cleaned_up = true;
  for (auto& [id, j] : jobs) {
    if (!j->finished) j->stop_for_shutdown = true;
    j->stop = true;
    if (j->thread.joinable()) j->thread.join();
  }
  for (auto& [name, s] : devices) {
    s->worker->stop();
    s->device->shutdown();
  }
  compute.join();
  if (recorder) recorder->close();
  // The dashboard reads the store: it stops first.
  telemetry.set_tap({});
  if (dashboard) dashboard->stop();
  dashboard.reset();
  store.reset();
}

std::string Server::Impl::devices_digest() const {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  };
  for (const auto& [name, s] : devices) {
    mix(name);
    const drivers::DeviceStatus st = s->device->status();
    mix(st.spec->serial);
    mix(drivers::to_string(st.state));
    mix(drivers::to_string(st.health));
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}


Server::Server(DaemonConfig config, ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {
  impl_->install_signals();
  impl_->start();
}

namespace {
sigset_t daemon_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

// libprotobuf writes a line to stderr for every string field that is not UTF-8 (a hostile
// client can send thousands a second); pnnd answers MALFORMED instead, so they are counted
// and dropped here.
std::atomic<std::uint64_t> protobuf_log_lines{0};
void quiet_protobuf_log(google::protobuf::LogLevel level, const char* file, int line,
                        const std::string& message) {
  if (level >= google::protobuf::LOGLEVEL_FATAL) {
    std::fprintf(stderr, "pnnd: libprotobuf fatal: %s:%d: %s\n", file, line, message.c_str());
  }
  protobuf_log_lines.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

void block_signals() {
  const sigset_t set = daemon_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  google::protobuf::SetLogHandler(&quiet_protobuf_log);
}

void unblock_signals() {
  const sigset_t set = daemon_signals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

// Without a graceful stop (run() never called, or the owner unwinding), cleanup() still stops
// the jobs and finalizes every device, which drives it to its safe state.
Server::~Server() = default;

void Server::run() { impl_->run(); }

void Server::request_stop() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->begin_shutdown("stop requested"); });
}

void Server::request_reload() {
  asio::post(impl_->io, [impl = impl_.get()] { impl->reload(); });
}

const std::string& Server::rpc_endpoint() const { return impl_->rpc_endpoint; }
const std::string& Server::telemetry_endpoint() const { return impl_->telemetry_endpoint; }
const std::string& Server::http_url() const { return impl_->http_url; }
const std::string& Server::instance_id() const { return impl_->telemetry.instance_id(); }
const std::string& Server::public_key() const { return impl_->public_key; }

}  // namespace pnn::daemon

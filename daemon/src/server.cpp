#include "pnn/daemon/server.hpp"

#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <csignal>
#include <pthread.h>
#include <sys/statvfs.h>

#include <google/protobuf/stubs/logging.h>

#include "pnn/training/job_summary.hpp"
#include "pnn/client/client.hpp"
#include "pnn/daemon/protocol.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/digital_twin/calibration.hpp"
#include "pnn/drivers/format.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/job.hpp"
#include "recorder.hpp"
#include "connection_guard.hpp"
#include "fair_queue.hpp"
#include "pnn/common/hex.hpp"
#include "outbox.hpp"
#include "reply_cache.hpp"
#include "wire_text.hpp"
#include "worker.hpp"
#include "zmq_reader.hpp"

namespace pnn::daemon {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using drivers::Health;
using drivers::Lifecycle;

namespace {

constexpr const char* kServerVersion = "pnnd 0.1.0";
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string random_bytes(std::size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

using common::to_hex;

std::string make_instance_id() {
  const std::string h = to_hex(random_bytes(16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

v1::Lifecycle to_proto(Lifecycle s) {
  switch (s) {
    case Lifecycle::kUnconfigured: return v1::UNCONFIGURED;
    case Lifecycle::kInactive: return v1::INACTIVE;
    case Lifecycle::kActive: return v1::ACTIVE;
    case Lifecycle::kFinalized: return v1::FINALIZED;
  }
  return v1::LIFECYCLE_UNSPECIFIED;
}

v1::Health to_proto(Health h) {
  switch (h) {
    case Health::kOk: return v1::HEALTH_OK;
    case Health::kWarning: return v1::HEALTH_WARNING;
    case Health::kFault: return v1::HEALTH_FAULT;
  }
  return v1::HEALTH_UNSPECIFIED;
}

v1::JobState to_proto(RunState s) { return static_cast<v1::JobState>(static_cast<int>(s)); }

// The float32 values nearest to a limit on its inside, so that a float32 client that clamps to
// them is never refused for rounding (the double limits stay exact beside them).
float f32_at_least(double v) {
  auto f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}
float f32_at_most(double v) {
  auto f = static_cast<float>(v);
  if (static_cast<double>(f) > v) f = std::nextafter(f, -std::numeric_limits<float>::infinity());
  return f;
}

void fill_spec(const drivers::DeviceSpec& s, v1::DeviceSpec* out) {
  out->set_kind(s.kind);
  out->set_model(s.model);
  out->set_serial(s.serial);
  out->set_firmware(s.firmware);
  out->set_num_inputs(static_cast<std::uint32_t>(s.num_inputs));
  out->set_num_outputs(static_cast<std::uint32_t>(s.num_outputs));
  out->set_input_unit(s.input_unit);
  out->set_output_unit(s.output_unit);
  out->set_input_min(s.input_min);
  out->set_input_max(s.input_max);
  out->set_input_min_f32(f32_at_least(s.input_min));
  out->set_input_max_f32(f32_at_most(s.input_max));
  for (const auto& p : s.params) {
    auto* b = out->add_params();
    b->set_name(p.name);
    b->set_count(static_cast<std::uint32_t>(p.count));
    b->set_unit(p.unit);
    b->set_hard_min(p.hard_min);
    b->set_hard_max(p.hard_max);
    b->set_hard_min_f32(f32_at_least(p.hard_min));
    b->set_hard_max_f32(f32_at_most(p.hard_max));
    b->set_description(p.description);
  }
  out->set_output_noise_std(s.output_noise_std);
  out->set_max_batch(static_cast<std::uint32_t>(s.max_batch));
  out->set_num_params(static_cast<std::uint32_t>(s.num_params()));
}

void fill_run(const RunRecord& r, v1::RunInfo* out) {
  out->set_run_id(r.run_id);
  out->set_name(r.name);
  out->set_state(to_proto(r.state));
  out->set_started_ns(r.started_ns);
  out->set_finished_ns(r.finished_ns);
  out->set_epochs_done(static_cast<std::uint32_t>(r.epochs_done));
  out->set_checkpoint_path(r.checkpoint_path);
  out->set_summary_json(r.summary_json);
  for (const auto& s : r.device_serials) out->add_device_serials(s);
  out->set_message(r.message);
}

void fill_metric(const MetricRecord& m, v1::EpochMetrics* out) {
  out->set_phase(m.phase);
  out->set_epoch(static_cast<std::uint32_t>(m.epoch));
  out->set_train_loss(m.train_loss);
  out->set_train_accuracy(m.train_accuracy);
  out->set_test_accuracy(m.test_accuracy);
  out->set_seconds(m.seconds);
}

// Where an error that is not a device's or a job's was raised.
constexpr const char* kIntake = "pnnd request intake";
constexpr const char* kDaemon = "pnnd";

void set_status(v1::Reply& reply, v1::StatusCode code, const std::string& message,
                const std::string& origin = kDaemon) {
  auto* s = reply.mutable_status();
  s->set_code(code);
  s->set_message(message);
  s->set_origin(origin);
}

// A failed call, carried to the reply.
struct Failure {
  v1::StatusCode code;
  std::string message;
};

bool is_write(v1::Request::BodyCase body) {
  switch (body) {
    case v1::Request::kLifecycle:
    case v1::Request::kAcquire:
    case v1::Request::kRenew:
    case v1::Request::kRelease:
    case v1::Request::kForward:
    case v1::Request::kCalibrate:
    case v1::Request::kSubmitJob:
    case v1::Request::kCancelJob:
      return true;
    default:
      return false;
  }
}

const char* rpc_name(v1::Request::BodyCase body) {
  switch (body) {
    case v1::Request::kHello: return "Hello";
    case v1::Request::kListDevices: return "ListDevices";
    case v1::Request::kDescribe: return "Describe";
    case v1::Request::kLifecycle: return "Lifecycle";
    case v1::Request::kAcquire: return "Acquire";
    case v1::Request::kRenew: return "Renew";
    case v1::Request::kRelease: return "Release";
    case v1::Request::kForward: return "Forward";
    case v1::Request::kTwinForward: return "TwinForward";
    case v1::Request::kTwinVjp: return "TwinVjp";
    case v1::Request::kCalibrate: return "Calibrate";
    case v1::Request::kSubmitJob: return "SubmitJob";
    case v1::Request::kJobStatus: return "JobStatus";
    case v1::Request::kCancelJob: return "CancelJob";
    case v1::Request::kListRuns: return "ListRuns";
    case v1::Request::kGetRun: return "GetRun";
    case v1::Request::kSnapshot: return "Snapshot";
    case v1::Request::BODY_NOT_SET: return "(none)";
  }
  return "?";
}

// Where a call came from and when it must be done.
struct Call {
  std::string routing_id;
  Role role = Role::kOperator;
  // Who is calling, as far as pnnd can tell: the CURVE public key when CURVE is on, else the
  // connection (its routing id). Leases, cached replies and jobs belong to an identity, never
  // to a client_id alone (client_ids are public: ListDevices shows lease holders).
  std::string identity;
  std::uint64_t request_id = 0;
  std::string client_id;
  std::uint32_t deadline_ms = 0;
  Clock::time_point deadline;
  // Set for writes with a request id: the reply is recorded under this key, so a retry of the
  // same request gets it instead of a second run.
  std::string idempotency_key;
  std::uint64_t digest = 0;
  // A Forward's reply is recorded only if the hardware ran; its refusals (no lease, past the
  // deadline, bad settle_ms, store full) are not, so a retry is checked again.
  bool is_forward = false;
  std::size_t request_bytes = 0;  // the frames' size, for the bound on queued compute work
};

}  // namespace

// ---- devices and jobs ----------------------------------------------------------------------

struct DeviceSlot {
  DeviceConfig config;
  drivers::PhysicalSystemPtr device;
  std::unique_ptr<detail::Worker> worker;

  // The io thread's view, refreshed by whoever touched the device (never read from the driver
  // on the io thread: its mutex is held for the whole of a forward).
  drivers::DeviceSpec spec;
  Lifecycle state = Lifecycle::kUnconfigured;
  Health health = Health::kOk;
  std::uint64_t forward_calls = 0;
  digital_twin::ModelPtr nominal_twin;
  digital_twin::ModelPtr twin;  // nominal or calibrated; immutable, shared with compute threads
  std::uint64_t calibration_id = 0;

  // Lease: a client (holder + token, with TTL) or a job (job_id). Never both.
  std::string holder;           // the holder's client_id (shown to everyone)
  std::string holder_identity;  // who acquired it (never shown)
  std::string token;
  std::string expired_token;   // the last token that expired, to tell LEASE_EXPIRED apart
  std::string released_token;  // the last token its holder released (LEASE_RELEASED)
  std::uint32_t ttl_ms = 0;
  Clock::time_point expires;
  std::uint64_t job_id = 0;
  std::unique_ptr<asio::steady_timer> lease_timer;
  std::uint64_t lease_generation = 0;

  // Supervision: background recovery of a FAULTed device (io thread).
  std::unique_ptr<asio::steady_timer> recovery_timer;
  bool recovering = false;
  int recovery_attempts = 0;
  std::string health_message;
  bool duplicate = false;  // same instrument (serial) as another name: finalized, never served
};

// What a device thread reads off a device for the io thread's view.
struct DeviceStatus {
  Lifecycle state;
  Health health;
  std::string message;
  std::optional<drivers::DeviceSpec> spec;
};

DeviceStatus read_status(const DeviceSlot& s, bool with_spec) {
  DeviceStatus st{s.device->state(), s.device->health(), s.device->health_message(), {}};
  if (with_spec) st.spec = s.device->spec();
  return st;
}

struct JobSlot {
  std::uint64_t id = 0;
  std::uint64_t run_id = 0;
  std::string owner;  // the submitting identity
  training::JobConfig config;
  std::string main_phase;
  std::optional<std::string> resume_checkpoint;
  std::vector<DeviceSlot*> devices;  // unique
  std::map<std::string, drivers::PhysicalSystem*> external;
  v1::JobInfo info;  // io thread
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_for_shutdown{false};
  bool finished = false;  // io thread
  std::thread thread;
};

// ---- the server ----------------------------------------------------------------------------

struct Server::Impl {
  DaemonConfig config;
  ServerOptions options;
  std::string instance_id = make_instance_id();
  std::string public_key;

  asio::io_context io;
  asio::signal_set signals{io};
  asio::steady_timer heartbeat{io};
  std::atomic<bool> retention_noted{false};  // note_forward_retention said it
  asio::steady_timer stop_timer{io};
  asio::thread_pool compute{2};

  zmq::context_t zmq_context{1};
  zmq::socket_t router{zmq_context, zmq::socket_type::router};
  zmq::socket_t pub{zmq_context, zmq::socket_type::pub};
  std::unique_ptr<zmq::socket_t> zap;
  // Socket monitors of router and pub (accepted / closed connections), for the guard.
  std::unique_ptr<zmq::socket_t> router_monitor, pub_monitor;
  std::unique_ptr<detail::ZmqReader> router_reader, zap_reader, router_monitor_reader,
      pub_monitor_reader;
  std::string rpc_endpoint, telemetry_endpoint;
  std::string protocol_frame = encode_protocol_frame();
  std::map<std::string, Role> allowlist;  // Z85 public key → role

  std::unique_ptr<RunStore> store;
  std::unique_ptr<detail::ForwardRecorder> recorder;
  std::map<std::string, std::unique_ptr<DeviceSlot>> devices;
  detail::ReplyCache reply_cache;
  struct InFlight {
    std::uint64_t digest;
    std::vector<std::string> waiting;  // routing ids of the caller and of its retries
  };
  std::map<std::string, InFlight> in_flight;  // idempotency key → the call in progress
  std::map<std::uint64_t, std::unique_ptr<JobSlot>> jobs;
  std::uint64_t seq = 0;

  // Replies bounded per peer; connections bounded per peer and in all (docs/daemon.md).
  detail::Outbox outbox{router, encode_protocol_frame(),
                        [this](const std::string& routing, std::size_t bytes, const char* why) {
                          note_dropped_reply(routing, bytes, why);
                        }};
  asio::steady_timer outbox_timer{io};
  bool outbox_timer_armed = false;
  detail::ConnectionGuard connections{
      [this](const std::string& level, const std::string& text) { log(level, text); }};
  std::uint64_t descriptor_limit = 0;

  // Compute requests (twin, run store reads), fair across identities, at most kComputeThreads
  // at a time on the pool.
  static constexpr int kComputeThreads = 2;
  detail::FairQueue<std::function<void()>> compute_queue;
  int compute_running = 0;
  // Request bytes waiting in compute_queue, per identity and in all (rpc.max_pending_request_*).
  std::unordered_map<std::string, std::uint64_t> pending_bytes_of;
  std::uint64_t pending_bytes = 0;

  // Sync forward records: set when a commit failed for lack of space; Forwards are then refused
  // before the device runs until the store's file system has room again.
  std::atomic<bool> store_full{false};
  // Runs whose final state could not be written (disk full): retried until it is.
  struct PendingFinish {
    std::uint64_t run_id;
    RunState state;
    std::string summary, message;
  };
  std::vector<PendingFinish> pending_finishes;
  asio::steady_timer finish_retry_timer{io};

  enum class Phase { kServing, kStoppingJobs, kSafeState, kStopped } phase = Phase::kServing;
  std::size_t devices_pending_safe = 0;
  bool cleaned_up = false;

  Impl(DaemonConfig c, ServerOptions o)
      : config(std::move(c)),
        options(std::move(o)),
        reply_cache(config.reply_cache_entries, config.reply_cache_bytes) {
    outbox.set_limits(config.max_queued_reply_bytes_per_peer, config.max_queued_reply_bytes);
    connections.set_limits(config.max_connections, config.max_connections_per_peer);
  }
  ~Impl() { cleanup(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // ---- logging and telemetry (io thread) -------------------------------------------------

  void log(const std::string& level, const std::string& text) {
    if (options.on_log) {
      options.on_log(level, text);
    } else {
      std::fprintf(stderr, "pnnd: %s: %s\n", level.c_str(), text.c_str());
    }
    if (phase == Phase::kStopped) return;
    v1::Event e;
    e.mutable_log()->set_level(level);
    e.mutable_log()->set_text(text);
    publish("log/" + level, e);
  }

  // After a forward record was written (recorder thread or a device worker, never the event
  // loop: the store's mutex may be held by a long write). Says once per start that the
  // retention limit is deleting old records.
  void note_forward_retention() {
    if (retention_noted.load(std::memory_order_relaxed)) return;
    const ForwardStats f = store->forward_stats();
    if (f.pruned == 0 || retention_noted.exchange(true)) return;
    log_async("warning", "forward records reached store.forward_records_max_bytes (" +
                             std::to_string(f.max_bytes) +
                             " bytes): the oldest are now deleted as new ones arrive (records " +
                             std::to_string(f.oldest_record_id) + ".." +
                             std::to_string(f.newest_record_id) +
                             " kept); raise the limit, or set it to 0 to keep every record");
  }

  // From any thread.
  void log_async(std::string level, std::string text) {
    asio::post(io, [this, level = std::move(level), text = std::move(text)] { log(level, text); });
  }

  void publish(const std::string& topic, v1::Event& event) {
    detail::make_strings_valid_utf8(event);
    event.set_instance_id(instance_id);
    event.set_seq(++seq);
    event.set_wall_ns(wall_ns());
    event.set_mono_ns(mono_ns());
    const std::string body = event.SerializeAsString();
    // PUB never blocks: at the high-water mark it drops, which the seq gap reveals.
    (void)pub.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    (void)pub.send(zmq::buffer(body), zmq::send_flags::dontwait);
  }

  void fill_device(const DeviceSlot& s, v1::DeviceInfo* out) const {
    out->set_name(s.config.name);
    out->set_address(s.config.address);
    fill_spec(s.spec, out->mutable_spec());
    out->set_state(to_proto(s.state));
    out->set_health(to_proto(s.health));
    if (s.job_id != 0) {
      out->set_lease_holder("job/" + std::to_string(s.job_id));
    } else if (!s.holder.empty()) {
      out->set_lease_holder(s.holder);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.expires -
                                                                              Clock::now());
      out->set_lease_expires_in_ms(static_cast<std::uint64_t>(std::max<long long>(0, left.count())));
    }
    out->set_forward_calls(s.forward_calls);
    out->set_twin_calibrated(s.calibration_id != 0);
    out->set_calibration_id(s.calibration_id);
    out->set_health_message(s.health_message);
  }

  void publish_device(const DeviceSlot& s) {
    v1::Event e;
    fill_device(s, e.mutable_device_state());
    publish("state/" + s.config.name, e);
  }

  void publish_job(const JobSlot& j) {
    v1::Event e;
    *e.mutable_job() = j.info;
    publish("job/" + std::to_string(j.id), e);
  }

  std::string devices_digest() const {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const std::string& s) {
      for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
      h = (h ^ 0xff) * 1099511628211ull;
    };
    for (const auto& [name, s] : devices) {
      mix(name);
      mix(s->spec.serial);
      mix(drivers::to_string(s->state));
      mix(drivers::to_string(s->health));
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }

  void arm_heartbeat() {
    heartbeat.expires_after(std::chrono::milliseconds(config.heartbeat_ms));
    heartbeat.async_wait([this](const boost::system::error_code& ec) {
      if (ec || phase == Phase::kStopped) return;
      v1::Event e;
      e.mutable_heartbeat()->set_protocol_major(kProtocolMajor);
      e.mutable_heartbeat()->set_devices_digest(devices_digest());
      publish("hb", e);
      arm_heartbeat();
    });
  }

  // ---- devices ---------------------------------------------------------------------------

  // Refreshes the io thread's view of a device; publishes a state event if it changed.
  void update_device(DeviceSlot& s, Lifecycle state, Health health,
                     const drivers::DeviceSpec* spec = nullptr,
                     const std::string* health_message = nullptr) {
    const bool changed = s.state != state || s.health != health ||
                         (spec && spec->serial != s.spec.serial);
    s.state = state;
    s.health = health;
    if (spec) s.spec = *spec;
    if (health_message) s.health_message = *health_message;
    if (changed) publish_device(s);
    if (health == Health::kFault) schedule_recovery(s);
  }

  void update_device(DeviceSlot& s, const DeviceStatus& st) {
    update_device(s, st.state, st.health, st.spec ? &*st.spec : nullptr, &st.message);
    if (st.spec) refuse_duplicate_instrument(s);
  }

  // From a thread that may touch the device: post its current status to the io thread.
  void post_device_status(DeviceSlot& s) {
    asio::post(io, [this, &s, st = read_status(s, true)] { update_device(s, st); });
  }

  // Two names for one instrument would let one name bypass the other's limits and leases: once
  // a device has identified itself with the serial of another, it is finalized (never served).
  void refuse_duplicate_instrument(DeviceSlot& s) {
    if (s.duplicate || s.spec.serial.empty()) return;
    for (auto& [name, other] : devices) {
      if (other.get() == &s || other->duplicate || other->spec.serial != s.spec.serial) continue;
      if (other->state == Lifecycle::kUnconfigured) continue;  // serial not read from it yet
      s.duplicate = true;
      s.config.reconnect = false;
      const std::string why = "same instrument as device " + name + " (serial " + s.spec.serial +
                              "): two names for one instrument are refused; remove one of them "
                              "from the config";
      s.health_message = why;
      log("error", "device " + s.config.name + ": " + why + "; it is finalized");
      s.worker->post([this, &s] {
        s.device->shutdown();
        post_device_status(s);
      });
      return;
    }
  }

  // ---- supervision -----------------------------------------------------------------------

  // A FAULTed device is recovered in the background: cleanup, reconnect, re-identify by serial
  // (PhysicalSystem::recover), with exponential back-off. It lands INACTIVE: outputs stay
  // undriven until a client (or job) activates it again. Not while a job owns it: the job ends
  // on the fault first and hands the device back.
  void schedule_recovery(DeviceSlot& s) {
    if (s.recovering || !s.config.reconnect || s.job_id != 0 || phase != Phase::kServing) return;
    s.recovering = true;
    const std::uint64_t factor = std::uint64_t{1} << std::min(s.recovery_attempts, 16);
    const auto delay_ms = std::min<std::uint64_t>(config.reconnect_initial_ms * factor,
                                                  config.reconnect_max_ms);
    s.recovery_timer->expires_after(std::chrono::milliseconds(delay_ms));
    s.recovery_timer->async_wait([this, &s](const boost::system::error_code& ec) {
      if (ec || phase != Phase::kServing || s.job_id != 0) {
        s.recovering = false;
        return;
      }
      s.worker->post([this, &s] {
        // Queued behind other calls: if one of them (a job taking the device, a client's
        // cleanup + configure) already brought it back, there is nothing to recover, and
        // recovering would clean up a device that is in use.
        if (s.device->health() != Health::kFault) {
          asio::post(io, [&s] { s.recovering = false; });
          return;
        }
        const std::string before = s.device->health_message();
        auto r = s.device->recover();
        const std::string error = r ? "" : r.error().message;
        asio::post(io, [this, &s, error, before, st = read_status(s, true)] {
          s.recovering = false;
          if (error.empty()) {
            log("info", "device " + s.config.name + " recovered after '" + before +
                            "': reconnected and re-identified as " + st.spec->serial +
                            "; it is INACTIVE: activate it to drive outputs again");
            s.recovery_attempts = 0;
          } else {
            ++s.recovery_attempts;
            if (s.recovery_attempts == 1 || (s.recovery_attempts & (s.recovery_attempts - 1)) == 0) {
              log("warning", "device " + s.config.name + ": reconnect attempt " +
                                 std::to_string(s.recovery_attempts) + " failed: " + error);
            }
          }
          update_device(s, st);
        });
      });
    });
  }

  std::unique_ptr<DeviceSlot> make_slot(const DeviceConfig& d) {
    auto s = std::make_unique<DeviceSlot>();
    s->config = d;
    try {
      s->device = drivers::make_physical_system(d.address);
    } catch (const std::invalid_argument& e) {
      throw ConfigError(config.source + ":" + std::to_string(d.line) + ": 'devices." + d.name +
                        "': " + e.what());
    }
    s->spec = s->device->spec();
    s->state = s->device->state();
    s->health = s->device->health();
    s->nominal_twin = s->device->nominal_twin();
    s->twin = s->nominal_twin;
    s->lease_timer = std::make_unique<asio::steady_timer>(io);
    s->recovery_timer = std::make_unique<asio::steady_timer>(io);
    if (store) {
      try {
        if (auto cal = store->latest_calibration(s->spec.serial);
            cal && s->nominal_twin->num_physical_params() == cal->phi.size()) {
          s->twin = s->nominal_twin->with_physical_params(cal->phi);
          s->calibration_id = cal->calibration_id;
        }
      } catch (const std::exception& e) {
        log("warning", "device " + d.name + ": stored calibration not used: " + e.what());
      }
    }
    s->worker = std::make_unique<detail::Worker>();
    return s;
  }

  // Runs on the device's worker: configure + activate.
  static std::string autostart(DeviceSlot& s) {
    if (s.device->state() == Lifecycle::kUnconfigured) {
      if (auto r = s.device->configure(); !r) return r.error().message;
    }
    if (s.device->state() == Lifecycle::kInactive) {
      if (auto r = s.device->activate(); !r) return r.error().message;
    }
    return "";
  }

  DeviceSlot* find_device(const std::string& name) {
    auto it = devices.find(name);
    return it == devices.end() ? nullptr : it->second.get();
  }

  std::string device_names() const {
    std::string out;
    for (const auto& [name, s] : devices) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
  }

  std::string origin(const DeviceSlot& s) const {
    return "device " + s.config.name + " (" + s.spec.serial + ")";
  }

  // ---- leases ----------------------------------------------------------------------------

  std::optional<Failure> check_lease(const DeviceSlot& s, const std::string& token,
                                     const Call* call = nullptr) const {
    if (s.job_id != 0) {
      return Failure{v1::LEASE_HELD, "device " + s.config.name + " is in use by job " +
                                         std::to_string(s.job_id) + " (cancel it or wait)"};
    }
    if (!token.empty() && token == s.released_token && token != s.token) {
      return Failure{v1::LEASE_RELEASED,
                     "the lease on " + s.config.name + " with this token was released by its "
                     "holder (the device was left in its state, not driven safe); acquire it again"};
    }
    if (!s.holder.empty()) {
      if (!token.empty() && token == s.token) return std::nullopt;
      if (token.empty() && call && call->client_id == s.holder &&
          call->identity == s.holder_identity) {
        return Failure{v1::LEASE_REQUIRED, "you hold the lease on " + s.config.name +
                                               " but sent no lease token: send the token "
                                               "Acquire returned with this request"};
      }
      if (!token.empty() && token == s.expired_token) {
        return Failure{v1::LEASE_EXPIRED, "your lease on " + s.config.name +
                                              " expired and the device was driven to its safe "
                                              "state; acquire it again"};
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.expires -
                                                                              Clock::now());
      return Failure{v1::LEASE_HELD, "device " + s.config.name + " is leased by '" + s.holder +
                                         "' for another " + std::to_string(left.count()) +
                                         " ms"};
    }
    if (!token.empty() && token == s.expired_token) {
      return Failure{v1::LEASE_EXPIRED, "your lease on " + s.config.name +
                                            " expired and the device was driven to its safe "
                                            "state; acquire it again (and renew before the TTL)"};
    }
    return Failure{v1::LEASE_REQUIRED,
                   "device " + s.config.name + " needs a lease for this call: Acquire it first "
                   "and send the lease token with the request"};
  }

  void arm_lease(DeviceSlot& s) {
    const auto generation = ++s.lease_generation;
    s.expires = Clock::now() + std::chrono::milliseconds(s.ttl_ms);
    s.lease_timer->expires_at(s.expires);
    s.lease_timer->async_wait([this, &s, generation](const boost::system::error_code& ec) {
      if (ec || generation != s.lease_generation) return;
      expire_lease(s);
    });
  }

  void clear_lease(DeviceSlot& s) {
    ++s.lease_generation;
    s.lease_timer->cancel();
    s.holder.clear();
    s.holder_identity.clear();
    s.token.clear();
  }

  void expire_lease(DeviceSlot& s) {
    const std::string holder = s.holder;
    s.expired_token = s.token;
    clear_lease(s);
    publish_device(s);
    // Queued behind any call already accepted under the lease, so that call completes first.
    s.worker->post([this, &s, holder] {
      if (s.job_id != 0) return;  // a job took the device since: it is the job's now
      std::string what = "device was not ACTIVE";
      if (s.device->state() == Lifecycle::kActive) {
        auto r = s.device->deactivate();
        what = r ? "device driven to its safe state (INACTIVE)"
                 : "driving it to its safe state failed: " + r.error().message;
      }
      post_device_status(s);
      log_async("warning", "lease of " + s.config.name + " held by '" + holder +
                               "' expired; " + what);
    });
  }

  // ---- replies ---------------------------------------------------------------------------

  // Never blocks: a reply to a peer whose pipe is full waits in the bounded outbox.
  void send_body(const std::string& routing_id, std::string body) {
    if (phase == Phase::kStopped) return;
    outbox.send(routing_id, std::move(body));
    if (outbox.has_queued()) arm_outbox_flush();
    if (router_reader) router_reader->after_send();
  }

  void arm_outbox_flush() {
    if (outbox_timer_armed) return;
    outbox_timer_armed = true;
    outbox_timer.expires_after(std::chrono::milliseconds(1));
    outbox_timer.async_wait([this](const boost::system::error_code& ec) {
      outbox_timer_armed = false;
      if (ec || phase == Phase::kStopped) return;
      outbox.flush();
      if (router_reader) router_reader->after_send();
      if (outbox.has_queued()) arm_outbox_flush();
    });
  }

  std::map<std::string, std::uint64_t> drops_by_reason;  // io thread; for rate-limited logs
  std::uint64_t requests_dropped_unread = 0;
  // Counted per reason and logged at powers of two: a thousand clients that vanish, or one that
  // never reads, show in the log without flooding it.
  void note_dropped_reply(const std::string& routing, std::size_t bytes, const char* why) {
    const std::uint64_t n = ++drops_by_reason[why];
    if ((n & (n - 1)) == 0) {
      log("warning", "dropped a reply of " + std::to_string(bytes) + " bytes to client connection " +
                         to_hex(routing) + ": " + why + " (" + std::to_string(n) +
                         " replies dropped for this reason since start)");
    }
  }

  // Requests from a peer whose reply queue is at its bound are dropped unread: their replies
  // could not be delivered, and working on them is what a flood that never reads wants.
  void note_dropped_request(const std::string& routing) {
    const std::uint64_t n = ++requests_dropped_unread;
    if ((n & (n - 1)) == 0) {
      log("warning", "dropped a request from client connection " + to_hex(routing) +
                         " unread: it is not reading its replies and its reply queue is full "
                         "(rpc.max_queued_reply_bytes_per_peer); " + std::to_string(n) +
                         " requests dropped since start");
    }
  }

  // `record`: keep the reply for retries of this request (a Forward that never reached the
  // hardware is not recorded: its retry may run).
  void send_reply(const Call& call, v1::Reply& reply, bool record = true) {
    reply.set_request_id(call.request_id);
    if (!reply.has_status()) reply.mutable_status()->set_code(v1::OK);
    if (reply.status().code() != v1::OK && reply.status().origin().empty()) {
      reply.mutable_status()->set_origin(kDaemon);
    }
    detail::make_strings_valid_utf8(reply);
    std::string body = reply.SerializeAsString();
    if (call.idempotency_key.empty()) {
      send_body(call.routing_id, std::move(body));
      return;
    }
    // Everyone waiting on this key (the caller and any retries that arrived meanwhile).
    auto it = in_flight.find(call.idempotency_key);
    if (it == in_flight.end()) {
      send_body(call.routing_id, body);
    } else {
      for (const auto& routing : it->second.waiting) send_body(routing, body);
      in_flight.erase(it);
    }
    if (record) reply_cache.put(call.idempotency_key, call.digest, std::move(body));
  }

  void send_error(const Call& call, v1::StatusCode code, const std::string& message,
                  const std::string& origin = kDaemon) {
    v1::Reply reply;
    set_status(reply, code, message, origin);
    send_reply(call, reply, /*record=*/!call.is_forward);
  }

  // ---- request intake --------------------------------------------------------------------

  // Role and identity from the connection. With CURVE, ZAP set User-Id to "ROLE KEY" (the
  // client's Z85 public key); without it every client is an admin and its identity is its
  // connection (routing id; the shipped clients pick a random one, kept across reconnects).
  void identify(Call& call, zmq::message_t& frame) const {
    if (!config.security.curve_enabled()) {
      call.role = Role::kOperator;  // and may control every job: may_control()
      call.identity = "conn:" + to_hex(call.routing_id);
      return;
    }
    call.role = Role::kReadOnly;
    call.identity = "conn:" + to_hex(call.routing_id);  // unreachable with a working ZAP
    try {
      const char* user = frame.gets("User-Id");
      if (!user) return;
      const std::string_view u(user);
      const auto space = u.find(' ');
      const std::string_view role = u.substr(0, space);
      if (role == "operator") call.role = Role::kOperator;
      if (role == "admin") call.role = Role::kAdmin;
      if (space != std::string_view::npos) call.identity = "key:" + std::string(u.substr(space + 1));
    } catch (const zmq::error_t&) {
    }
  }

  void on_rpc(std::vector<zmq::message_t>& frames) {
    Call call;
    call.routing_id = frames[0].to_string();
    if (frames.size() < 2) return;
    if (outbox.saturated(call.routing_id)) return note_dropped_request(call.routing_id);
    identify(call, frames[1]);
    std::size_t total = 0;
    for (std::size_t i = 1; i < frames.size(); ++i) total += frames[i].size();
    call.request_bytes = total;
    if (total > config.max_message_bytes) {
      send_error(call, v1::TOO_LARGE,
                 "request of " + std::to_string(total) + " bytes exceeds the limit of " +
                     std::to_string(config.max_message_bytes) +
                     " bytes (rpc.max_message_bytes); split the batch",
                 kIntake);
      return;
    }
    if (frames.size() != 3) {
      send_error(call, v1::MALFORMED,
                 "expected 2 frames [protocol \"PNND\"+u16 major][Request], got " +
                     std::to_string(frames.size() - 1),
                 kIntake);
      return;
    }
    const auto major = decode_protocol_frame(frames[1].to_string_view());
    if (!major) {
      send_error(call, v1::MALFORMED,
                 "the first frame is not a protocol frame (\"PNND\" + u16 major, 6 bytes)",
                 kIntake);
      return;
    }
    if (*major != kProtocolMajor) {
      send_error(call, v1::UNSUPPORTED_PROTOCOL,
                 "protocol major " + std::to_string(*major) + " is not served; this daemon "
                 "speaks major " + std::to_string(kProtocolMajor) + " (upgrade the client)",
                 kIntake);
      return;
    }
    v1::Request request;
    const std::string_view bytes = frames[2].to_string_view();
    const auto digest = detail::request_digest(bytes);
    if (!digest || !request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      send_error(call, v1::MALFORMED,
                 "the request frame is not a valid pnn.v1.Request (every string field must be "
                 "UTF-8; send bytes fields for binary data)",
                 kIntake);
      return;
    }
    call.request_id = request.request_id();
    call.digest = *digest;
    if (auto problem = detail::client_id_problem(request.client_id())) {
      send_error(call, v1::INVALID_ARGUMENT, *problem, kIntake);
      return;
    }
    call.client_id = request.client_id();
    call.deadline_ms =
        request.deadline_ms() != 0 ? request.deadline_ms() : config.default_deadline_ms;
    call.deadline = Clock::now() + std::chrono::milliseconds(call.deadline_ms);
    try {
      dispatch(call, request);
    } catch (const std::exception& e) {
      send_error(call, v1::INTERNAL,
                 std::string(rpc_name(request.body_case())) + " failed: " + e.what());
    }
  }

  void dispatch(const Call& call, v1::Request& request) {
    const auto body = request.body_case();
    if (body == v1::Request::BODY_NOT_SET) {
      send_error(call, v1::MALFORMED, "the request has no body (set one RPC field)");
      return;
    }
    if (is_write(body) && call.role == Role::kReadOnly) {
      send_error(call, v1::PERMISSION_DENIED,
                 std::string(rpc_name(body)) + " needs the operator role; this client's key is "
                 "read-only (ask the lab admin to list it as operator in security.clients)",
                 kIntake);
      return;
    }
    if (is_write(body) && !call.client_id.empty() && call.request_id != 0) {
      // The one idempotency gate of every write: a retried write (lost reply, lazy pirate) gets
      // the recorded answer, never a second run (a batch measured twice, two jobs for one
      // SubmitJob, a lifecycle step applied twice). The key is the caller's identity, client_id
      // and request id; the request body must be the same, or the id was reused by mistake.
      // Request id 0 is never cached: each such call runs.
      const std::string key =
          detail::ReplyCache::key(call.identity, call.client_id, call.request_id);
      auto reused = [&] {
        send_error(call, v1::INVALID_ARGUMENT,
                   "request_id " + std::to_string(call.request_id) + " of client '" +
                       call.client_id + "' was already used for a different request; use a new "
                       "request id for every new call (retries resend the same request)",
                   kIntake);
      };
      if (const auto* cached = reply_cache.find(key)) {
        if (cached->digest != call.digest) return reused();
        send_body(call.routing_id, cached->body);
        return;
      }
      if (auto it = in_flight.find(key); it != in_flight.end()) {
        if (it->second.digest != call.digest) return reused();
        it->second.waiting.push_back(call.routing_id);
        return;
      }
      in_flight[key] = {call.digest, {call.routing_id}};
      Call keyed = call;
      keyed.idempotency_key = key;
      keyed.is_forward = body == v1::Request::kForward;
      try {
        dispatch_body(keyed, request);
      } catch (const std::exception& e) {  // answered (and recorded) here, so no waiter hangs
        send_error(keyed, v1::INTERNAL, std::string(rpc_name(body)) + " failed: " + e.what());
      }
      return;
    }
    dispatch_body(call, request);
  }

  void dispatch_body(const Call& call, v1::Request& request) {
    const auto body = request.body_case();
    const bool starts_work = body == v1::Request::kLifecycle || body == v1::Request::kAcquire ||
                             body == v1::Request::kForward || body == v1::Request::kCalibrate ||
                             body == v1::Request::kSubmitJob;
    if (starts_work && phase != Phase::kServing) {
      send_error(call, v1::SHUTTING_DOWN, "pnnd is shutting down and accepts no new work");
      return;
    }
    switch (body) {
      case v1::Request::kHello: return hello(call);
      case v1::Request::kListDevices: return list_devices(call);
      case v1::Request::kDescribe: return describe(call, request.describe());
      case v1::Request::kLifecycle: return lifecycle(call, request);
      case v1::Request::kAcquire: return acquire(call, request.acquire());
      case v1::Request::kRenew: return renew(call, request);
      case v1::Request::kRelease: return release(call, request);
      case v1::Request::kForward: return forward(call, request);
      case v1::Request::kTwinForward:
      case v1::Request::kTwinVjp: return twin(call, request);
      case v1::Request::kCalibrate: return calibrate(call, request);
      case v1::Request::kSubmitJob: return submit_job(call, request.submit_job());
      case v1::Request::kJobStatus: return job_status(call, request.job_status());
      case v1::Request::kCancelJob: return cancel_job(call, request.cancel_job());
      case v1::Request::kListRuns:
      case v1::Request::kGetRun: return runs(call, request);
      case v1::Request::kSnapshot: return snapshot(call);
      case v1::Request::BODY_NOT_SET: break;
    }
  }

  // Runs `fn` on the compute pool (off the event loop) and sends the reply it fills. Fair
  // across identities (FairQueue), at most kComputeThreads at a time.
  template <class Fn>
  void on_compute(const Call& call, Fn fn, std::string origin = kDaemon) {
    std::uint64_t& mine = pending_bytes_of[call.identity];
    const std::uint64_t bytes = call.request_bytes;
    const bool over_mine = mine + bytes > config.max_pending_request_bytes_per_peer;
    if (mine > 0 && (over_mine || pending_bytes + bytes > config.max_pending_request_bytes)) {
      send_error(call, v1::BUSY,
                 over_mine
                     ? std::to_string(mine) + " bytes of this client's requests are already "
                       "waiting for a compute thread (rpc.max_pending_request_bytes_per_peer = " +
                           std::to_string(config.max_pending_request_bytes_per_peer) +
                           "); wait for their replies before sending more"
                     : std::to_string(pending_bytes) + " bytes of requests are waiting for a "
                       "compute thread (rpc.max_pending_request_bytes = " +
                           std::to_string(config.max_pending_request_bytes) +
                           "); retry after this client's earlier replies arrive",
                 kIntake);
      return;
    }
    mine += bytes;
    pending_bytes += bytes;
    compute_queue.push(call.identity, [this, call, origin = std::move(origin),
                                       fn = std::move(fn)]() mutable {
      v1::Reply reply;
      if (Clock::now() > call.deadline) {
        set_status(reply, v1::DEADLINE_EXCEEDED,
                   "the request waited past its deadline (" + std::to_string(call.deadline_ms) +
                       " ms) for a compute thread; it was not run",
                   origin);
      } else {
        try {
          fn(reply);
        } catch (const std::invalid_argument& e) {
          set_status(reply, v1::SHAPE_MISMATCH, e.what(), origin);
        } catch (const std::exception& e) {
          set_status(reply, v1::INTERNAL, e.what(), origin);
        }
      }
      if (reply.status().code() != v1::OK && reply.status().origin().empty()) {
        reply.mutable_status()->set_origin(origin);
      }
      asio::post(io, [this, call, reply = std::move(reply)]() mutable {
        --compute_running;
        release_pending(call);
        send_reply(call, reply);
        pump_compute();
      });
    });
    pump_compute();
  }

  void release_pending(const Call& call) {
    auto it = pending_bytes_of.find(call.identity);
    if (it == pending_bytes_of.end()) return;
    const std::uint64_t n = std::min<std::uint64_t>(it->second, call.request_bytes);
    it->second -= n;
    pending_bytes -= std::min(pending_bytes, n);
    if (it->second == 0) pending_bytes_of.erase(it);
  }

  void pump_compute() {
    while (compute_running < kComputeThreads) {
      auto task = compute_queue.pop();
      if (!task) return;
      ++compute_running;
      asio::post(compute, std::move(*task));
    }
  }

  // Runs `work` on the device's worker, behind the calls already queued for it; `work` returns
  // what to do on the io thread with its result. If the call's deadline passes while it waits,
  // it is answered DEADLINE_EXCEEDED at that moment and never runs. The one way RPC handlers
  // reach a device.
  template <class Work>
  void run_on_device(DeviceSlot& s, const Call& call, Work work) {
    enum : int { kQueued, kStarted, kExpired };
    auto state = std::make_shared<std::atomic<int>>(kQueued);
    auto timer = std::make_shared<asio::steady_timer>(io, call.deadline);
    timer->async_wait([this, state, call, &s](const boost::system::error_code& ec) {
      int expected = kQueued;
      if (ec || !state->compare_exchange_strong(expected, kExpired)) return;
      send_error(call, v1::DEADLINE_EXCEEDED,
                 "device " + s.config.name + " was busy with earlier calls past this request's "
                 "deadline (" + std::to_string(call.deadline_ms) + " ms); it was not run",
                 origin(s));
    });
    s.worker->post([this, state, timer = std::move(timer), work = std::move(work)]() mutable {
      int expected = kQueued;
      if (!state->compare_exchange_strong(expected, kStarted)) return;
      auto then = work();
      asio::post(io, [timer = std::move(timer), then = std::move(then)]() mutable {
        timer->cancel();
        then();
      });
    });
  }

  // ---- RPC handlers ----------------------------------------------------------------------

  void hello(const Call& call) {
    v1::Reply reply;
    auto* h = reply.mutable_hello();
    h->set_server_version(kServerVersion);
    h->add_protocol_majors(kProtocolMajor);
    h->set_protocol_minor(kProtocolMinor);
    for (const char* c : {"leases", "forward", "twin", "calibrate", "jobs", "runs", "telemetry",
                          "snapshot"}) {
      h->add_capabilities(c);
    }
    h->add_capabilities(std::string("forward-records:") + to_string(config.forward_recording));
    if (config.security.curve_enabled()) h->add_capabilities("curve");
    // Where to subscribe: the bound endpoint (a "*" port resolved), so clients need not be told.
    h->add_capabilities("telemetry=" + telemetry_endpoint);
    h->set_instance_id(instance_id);
    h->set_role(to_string(call.role));
    h->set_max_message_bytes(config.max_message_bytes);
    send_reply(call, reply);
  }

  void list_devices(const Call& call) {
    v1::Reply reply;
    for (const auto& [name, s] : devices) fill_device(*s, reply.mutable_list_devices()->add_devices());
    send_reply(call, reply);
  }

  void describe(const Call& call, const v1::DescribeRequest& r) {
    DeviceSlot* s = find_device(r.device());
    if (!s) return unknown_device(call, r.device());
    v1::Reply reply;
    fill_device(*s, reply.mutable_describe()->mutable_device());
    send_reply(call, reply);
  }

  void unknown_device(const Call& call, const std::string& name) {
    send_error(call, v1::UNKNOWN_DEVICE,
               "no device '" + name + "' (devices: " + device_names() + ")", kDaemon);
  }

  // Device, lease and deadline checks shared by the device writes. Null if an error was sent.
  DeviceSlot* writable_device(const Call& call, const std::string& name,
                              const std::string& token) {
    DeviceSlot* s = find_device(name);
    if (!s) {
      unknown_device(call, name);
      return nullptr;
    }
    if (auto f = check_lease(*s, token, &call)) {
      send_error(call, f->code, f->message, origin(*s));
      return nullptr;
    }
    return s;
  }

  void lifecycle(const Call& call, const v1::Request& request) {
    const auto& r = request.lifecycle();
    DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
    if (!s) return;
    using T = v1::LifecycleRequest;
    const auto transition = r.transition();
    if (transition != T::CONFIGURE && transition != T::ACTIVATE && transition != T::DEACTIVATE &&
        transition != T::CLEANUP && transition != T::RECOVER) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "transition must be CONFIGURE, ACTIVATE, DEACTIVATE, CLEANUP or RECOVER",
                 origin(*s));
      return;
    }
    run_on_device(*s, call, [this, s, call, transition] {
      std::optional<Failure> failure;
      {
        drivers::Result<void> r;
        switch (transition) {
          case T::CONFIGURE: r = s->device->configure(); break;
          case T::ACTIVATE: r = s->device->activate(); break;
          case T::DEACTIVATE: r = s->device->deactivate(); break;
          case T::RECOVER: r = s->device->recover(); break;
          default: r = s->device->cleanup(); break;
        }
        if (!r) failure = Failure{status_code(r.error().code), r.error().message};
      }
      return [this, s, call, failure, st = read_status(*s, true)] {
        update_device(*s, st);
        v1::Reply reply;
        if (failure) {
          set_status(reply, failure->code, failure->message, origin(*s));
        } else {
          fill_device(*s, reply.mutable_lifecycle()->mutable_device());
        }
        send_reply(call, reply);
      };
    });
  }

  void acquire(const Call& call, const v1::AcquireRequest& r) {
    DeviceSlot* s = find_device(r.device());
    if (!s) return unknown_device(call, r.device());
    if (call.client_id.empty()) {
      send_error(call, v1::INVALID_ARGUMENT, "Acquire needs a client_id (the lease holder)",
                 origin(*s));
      return;
    }
    if (r.ttl_ms() != 0 && r.ttl_ms() < config.lease_min_ttl_ms) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "ttl_ms " + std::to_string(r.ttl_ms()) + " is below the minimum of " +
                     std::to_string(config.lease_min_ttl_ms) +
                     " ms (leases.min_ttl_ms); ask for a longer lease and renew it",
                 origin(*s));
      return;
    }
    // Held by a job, or by another identity (naming the holder's client_id is not enough).
    if (s->job_id != 0 || (!s->holder.empty() && (s->holder != call.client_id ||
                                                  s->holder_identity != call.identity))) {
      auto f = check_lease(*s, "");
      send_error(call, f->code, f->message, origin(*s));
      return;
    }
    const std::uint32_t ttl = std::min(r.ttl_ms() == 0 ? config.lease_default_ttl_ms : r.ttl_ms(),
                                       config.lease_max_ttl_ms);
    // The same client on the same identity acquiring again keeps its token.
    if (s->holder.empty()) s->token = random_bytes(16);
    s->holder = call.client_id;
    s->holder_identity = call.identity;
    s->ttl_ms = ttl;
    arm_lease(*s);
    publish_device(*s);
    v1::Reply reply;
    reply.mutable_acquire()->set_lease_token(s->token);
    reply.mutable_acquire()->set_ttl_ms(ttl);
    send_reply(call, reply);
  }

  void renew(const Call& call, const v1::Request& request) {
    DeviceSlot* s = writable_device(call, request.renew().device(), request.lease_token());
    if (!s) return;
    arm_lease(*s);
    v1::Reply reply;
    reply.mutable_renew()->set_ttl_ms(s->ttl_ms);
    send_reply(call, reply);
  }

  void release(const Call& call, const v1::Request& request) {
    DeviceSlot* s = writable_device(call, request.release().device(), request.lease_token());
    if (!s) return;
    // Releasing leaves the lifecycle as it is: only an expired lease (a vanished client) forces
    // the safe state.
    s->released_token = s->token;
    clear_lease(*s);
    publish_device(*s);
    v1::Reply reply;
    reply.mutable_release();
    send_reply(call, reply);
  }

  void forward(const Call& call, v1::Request& request) {
    if (call.client_id.empty()) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "Forward needs a client_id: (client_id, request_id) is the idempotency key",
                 kIntake);
      return;
    }
    DeviceSlot* s = writable_device(call, request.forward().device(), request.lease_token());
    if (!s) return;
    if (request.forward().settle_ms() > config.max_settle_ms) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "settle_ms " + std::to_string(request.forward().settle_ms()) +
                     " exceeds the maximum of " + std::to_string(config.max_settle_ms) +
                     " ms (forward.max_settle_ms); nothing was sent",
                 origin(*s));
      return;
    }
    if (config.forward_recording == ForwardRecording::kSync && store_full && !store_has_room()) {
      send_error(call, v1::STORE_FULL,
                 "the run store's disk is full, so this Forward could not be recorded "
                 "(store.forward_records: sync); the device was not run. Free space on the "
                 "store's file system (" + config.store_path + ") or lower "
                 "store.forward_records_max_bytes",
                 origin(*s));
      return;
    }
    auto job = std::make_shared<v1::ForwardRequest>(std::move(*request.mutable_forward()));
    run_on_device(*s, call, [this, s, call, job] {
      v1::Reply reply;
      bool ran = false;
      try {
        ran = run_forward(*s, call, *job, reply);
      } catch (const std::exception& e) {
        set_status(reply, v1::INTERNAL, e.what(), origin(*s));
      }
      return [this, s, call, ran, reply = std::move(reply), st = read_status(*s, false)]() mutable {
        if (ran) ++s->forward_calls;
        send_reply(call, reply, /*record=*/ran);
        update_device(*s, st);
      };
    });
  }

  // Whether the store's file system has room again after a commit failed for lack of it.
  bool store_has_room() {
    struct statvfs fs_info{};
    const fs::path dir = fs::path(config.store_path).has_parent_path()
                             ? fs::path(config.store_path).parent_path()
                             : fs::path(".");
    if (::statvfs(dir.c_str(), &fs_info) != 0) return false;
    const auto free_bytes = static_cast<std::uint64_t>(fs_info.f_bavail) * fs_info.f_frsize;
    if (free_bytes < (std::uint64_t{4} << 20)) return false;
    store_full = false;
    return true;
  }

  // On the device's worker. Returns whether the hardware was driven.
  bool run_forward(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f,
                   v1::Reply& reply) {
    const std::string where = origin(s);
    auto x = from_tensor(f.x(), "forward x");
    if (!x) {
      set_status(reply, v1::SHAPE_MISMATCH, x.error().message, where);
      return false;
    }
    const Vector theta = from_vec(f.theta());
    // Checked here as well as in the driver so that a non-finite error from the driver can only
    // mean non-finite readings (the hardware ran).
    // allFinite first: one vectorised pass on the hot path; the loops only name the entry.
    if (!x.value().allFinite()) {
      for (Index i = 0; i < x.value().size(); ++i) {
        if (std::isfinite(x.value().data()[i])) continue;
        const Index rows = x.value().rows();
        set_status(reply, v1::NON_FINITE,
                   "forward x[" + std::to_string(i % rows) + ", " + std::to_string(i / rows) +
                       "] is not finite; nothing was sent",
                   where);
        return false;
      }
    }
    if (!theta.allFinite()) {
      for (Index i = 0; i < theta.size(); ++i) {
        if (std::isfinite(theta[i])) continue;
        set_status(reply, v1::NON_FINITE,
                   "forward θ[" + std::to_string(i) + "] (" + s.device->spec().param_name(i) +
                       ") is not finite; nothing was sent",
                   where);
        return false;
      }
    }
    if (f.settle_ms() > 0) {  // at most forward.max_settle_ms, checked on arrival
      std::this_thread::sleep_for(std::chrono::milliseconds(f.settle_ms()));
    }
    const std::int64_t t_start = wall_ns();
    auto y = s.device->forward(x.value(), theta);
    const std::int64_t t_end = wall_ns();
    if (!y) {
      const auto code = status_code(y.error().code);
      set_status(reply, code, y.error().message, where);
      return code == v1::DEVICE_TIMEOUT || code == v1::DEVICE_IO || code == v1::DEVICE_FAULT ||
             code == v1::NON_FINITE;
    }
    auto* out = reply.mutable_forward();
    to_tensor(y.value(), out->mutable_y());
    out->set_t_start_ns(t_start);
    out->set_t_end_ns(t_end);
    if (config.forward_recording != ForwardRecording::kOff) {
      ForwardRecord record{0,      call.client_id,           call.request_id, s.device->spec().serial,
                           t_start, t_end, std::move(x).value(), theta,          std::move(y).value()};
      if (config.forward_recording == ForwardRecording::kSync) {
        // Sync means acknowledged only once durable: a record that cannot be committed fails
        // the call (the device ran; its output is not returned as a success).
        try {
          out->set_record_id(store->record_forward(record));
          out->set_recorded(true);
          note_forward_retention();
        } catch (const StoreError& e) {
          if (e.disk_full()) store_full = true;
          reply.clear_forward();
          set_status(reply, v1::RECORD_FAILED,
                     std::string("the device ran, but its forward record could not be "
                                 "committed (store.forward_records: sync), so the call is not "
                                 "acknowledged: ") +
                         e.what() +
                         (e.disk_full() ? "; free space on the store's file system" : ""),
                     where);
          log_async("error", "forward record not written: " + std::string(e.what()));
        }
      } else {
        recorder->push(std::move(record));
      }
    }
    return true;
  }

  void twin(const Call& call, v1::Request& request) {
    const bool is_vjp = request.body_case() == v1::Request::kTwinVjp;
    const std::string name = is_vjp ? request.twin_vjp().device() : request.twin_forward().device();
    DeviceSlot* s = find_device(name);
    if (!s) return unknown_device(call, name);
    const v1::Tensor& xt0 = is_vjp ? request.twin_vjp().x() : request.twin_forward().x();
    const std::uint32_t rows = xt0.shape_size() > 0 ? xt0.shape(0) : 0;
    if (rows > config.twin_max_batch_rows) {
      send_error(call, v1::BATCH_TOO_LARGE,
                 std::to_string(rows) + " rows exceed the twin's batch limit of " +
                     std::to_string(config.twin_max_batch_rows) +
                     " (twin.max_batch_rows); split the batch",
                 "twin of " + origin(*s));
      return;
    }
    auto model = s->twin;
    auto req = std::make_shared<v1::Request>(std::move(request));
    on_compute(call, [model, req, is_vjp, spec = s->spec](v1::Reply& reply) {
      const v1::Tensor& xt = is_vjp ? req->twin_vjp().x() : req->twin_forward().x();
      const v1::Vec& tv = is_vjp ? req->twin_vjp().theta() : req->twin_forward().theta();
      auto x = from_tensor(xt, "twin x");
      if (!x) return set_status(reply, v1::SHAPE_MISMATCH, x.error().message);
      const Vector theta = from_vec(tv);
      if (!x.value().allFinite() || !theta.allFinite()) {
        return set_status(reply, v1::NON_FINITE, "x or θ contains NaN or Inf");
      }
      // The twin's domain is the device's: θ within the hard limits, x within the input range
      // (outside it a twin may answer NaN, e.g. a power law of a negative input).
      if (auto problem = twin_domain_problem(spec, x.value(), theta)) {
        return set_status(reply, v1::INVALID_ARGUMENT, *problem);
      }
      if (!is_vjp) {
        to_tensor(model->forward(x.value(), theta), reply.mutable_twin_forward()->mutable_y());
        return;
      }
      auto y_bar = from_tensor(req->twin_vjp().y_bar(), "twin y_bar");
      if (!y_bar) return set_status(reply, v1::SHAPE_MISMATCH, y_bar.error().message);
      if (!y_bar.value().allFinite()) {
        return set_status(reply, v1::NON_FINITE, "y_bar contains NaN or Inf");
      }
      const auto cot = model->vjp(x.value(), theta, y_bar.value());
      to_tensor(cot.x_bar, reply.mutable_twin_vjp()->mutable_x_bar());
      to_vec(cot.theta_bar, reply.mutable_twin_vjp()->mutable_theta_bar());
    }, "twin of " + origin(*s));
  }

  // Why (x, θ) is outside the twin's domain, or nothing. Shapes are the twin's to check.
  static std::optional<std::string> twin_domain_problem(const drivers::DeviceSpec& spec,
                                                        const Matrix& x, const Vector& theta) {
    if (theta.size() == static_cast<Index>(spec.num_params())) {
      const Vector lo = spec.param_min(), hi = spec.param_max();
      for (Index i = 0; i < theta.size(); ++i) {
        if (theta[i] < lo[i] || theta[i] > hi[i]) {
          return "θ[" + std::to_string(i) + "] (" + spec.param_name(i) + ") = " +
                 drivers::format_shortest(theta[i]) + " is outside the hard limits [" + drivers::format_shortest(lo[i]) +
                 ", " + drivers::format_shortest(hi[i]) + "], the twin's domain; clamp θ to the limits";
        }
      }
    }
    if (x.size() > 0 && (x.minCoeff() < spec.input_min || x.maxCoeff() > spec.input_max)) {
      const bool low = x.minCoeff() < spec.input_min;
      return std::string("x has ") + (low ? "a value " + drivers::format_shortest(x.minCoeff()) + " below"
                                          : "a value " + drivers::format_shortest(x.maxCoeff()) + " above") +
             " the device's input range [" + drivers::format_shortest(spec.input_min) + ", " +
             drivers::format_shortest(spec.input_max) + "], the twin's domain";
    }
    return std::nullopt;
  }


  void calibrate(const Call& call, const v1::Request& request) {
    const auto& r = request.calibrate();
    DeviceSlot* s = writable_device(call, r.device(), request.lease_token());
    if (!s) return;
    if (s->nominal_twin->num_physical_params() == 0) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "the twin of " + s->config.name + " (" + s->nominal_twin->name() +
                     ") has no physical parameters to calibrate",
                 origin(*s));
      return;
    }
    auto req = std::make_shared<v1::CalibrateRequest>(r);
    auto start_model = s->twin;
    run_on_device(*s, call, [this, s, call, req, start_model] {
      v1::Reply reply;
      digital_twin::ModelPtr fitted;
      std::uint64_t forward_calls = 0;
      try {
        fitted = run_calibration(*s, *req, *start_model, reply, forward_calls);
      } catch (const std::invalid_argument& e) {
        set_status(reply, v1::INVALID_ARGUMENT, e.what(), origin(*s));
      } catch (const std::exception& e) {
        set_status(reply, v1::INTERNAL, e.what(), origin(*s));
      }
      return [this, s, call, reply, fitted, forward_calls,
              st = read_status(*s, false)]() mutable {
        s->forward_calls += forward_calls;
        if (fitted) {
          s->twin = fitted;
          s->calibration_id = reply.calibrate().calibration_id();
          log("info", "calibrated the twin of " + s->config.name + ": MSE " +
                          std::to_string(reply.calibrate().mse_before()) + " -> " +
                          std::to_string(reply.calibrate().mse_after()));
        }
        update_device(*s, st);
        send_reply(call, reply);
      };
    });
  }

  // On the device's worker: measure at θ and two perturbed θ, fit φ, store the calibration.
  digital_twin::ModelPtr run_calibration(DeviceSlot& s,
                                         const v1::CalibrateRequest& r,
                                         const digital_twin::DifferentiableModel& model,
                                         v1::Reply& reply, std::uint64_t& forward_calls) {
    const std::string where = origin(s);
    const drivers::DeviceSpec& spec = s.device->spec();
    std::mt19937_64 rng(0xCA11B4A7Eull);
    Matrix probe;
    if (r.probe().data_size() > 0) {
      auto p = from_tensor(r.probe(), "calibration probe");
      if (!p) {
        set_status(reply, v1::SHAPE_MISMATCH, p.error().message, where);
        return nullptr;
      }
      probe = std::move(p).value();
    } else {
      // Default probe: 64 samples uniform over the actuator range (within ±1 for wide ranges).
      const double lo = std::max(spec.input_min, -1.0), hi = std::min(spec.input_max, 1.0);
      std::uniform_real_distribution<double> u(lo < hi ? lo : spec.input_min,
                                               lo < hi ? hi : spec.input_max);
      probe.resize(64, spec.num_inputs);
      for (Index i = 0; i < probe.size(); ++i) probe.data()[i] = u(rng);
    }
    const Vector theta_min = spec.param_min(), theta_max = spec.param_max();
    Vector theta = r.theta().data_size() > 0 ? from_vec(r.theta()) : model.initial_params(0);
    if (r.theta().data_size() == 0) theta = theta.cwiseMax(theta_min).cwiseMin(theta_max);
    std::vector<digital_twin::Measurement> data;
    for (int k = 0; k < 3; ++k) {
      Vector t = theta;
      if (k > 0) {
        // Perturbed settings make the physical parameters identifiable beyond one θ.
        std::normal_distribution<double> normal(0.0, 0.05);
        const Vector span = theta_max - theta_min;
        for (Index j = 0; j < t.size(); ++j) t[j] += normal(rng) * span[j];
        t = t.cwiseMax(theta_min).cwiseMin(theta_max);
      }
      auto y = s.device->forward(probe, t);
      if (!y) {
        set_status(reply, status_code(y.error().code), "calibration: " + y.error().message,
                   where);
        return nullptr;
      }
      ++forward_calls;
      data.push_back({probe, t, std::move(y).value()});
    }
    const auto fit = digital_twin::calibrate(model, data);
    CalibrationRecord record{0, spec.serial, fit.phi, fit.mse_before, fit.mse_after, wall_ns()};
    const std::uint64_t id = store->add_calibration(record);
    auto* out = reply.mutable_calibrate();
    out->set_mse_before(fit.mse_before);
    out->set_mse_after(fit.mse_after);
    to_vec(fit.phi, out->mutable_phi());
    out->set_calibration_id(id);
    return fit.model;
  }

  // ---- jobs ------------------------------------------------------------------------------

  void submit_job(const Call& call, const v1::SubmitJobRequest& r) {
    std::string yaml = r.config_yaml();
    std::optional<RunRecord> resumed;
    if (r.resume_run_id() != 0) {
      resumed = store->get_run(r.resume_run_id());
      if (!resumed) {
        send_error(call, v1::UNKNOWN_RUN, "no run " + std::to_string(r.resume_run_id()));
        return;
      }
      if (!may_control(call, resumed->owner)) {
        send_error(call, v1::PERMISSION_DENIED,
                   "run " + std::to_string(resumed->run_id) + " belongs to another client; "
                   "only its owner or an admin (security.clients role: admin) may resume it",
                   "run " + std::to_string(resumed->run_id));
        return;
      }
      for (const auto& [id, j] : jobs) {
        if (!j->finished && j->run_id == resumed->run_id) {
          send_error(call, v1::INVALID_ARGUMENT, "run " + std::to_string(resumed->run_id) +
                                                     " is running as job " + std::to_string(id));
          return;
        }
      }
      if (resumed->state == RunState::kSucceeded) {
        send_error(call, v1::INVALID_ARGUMENT,
                   "run " + std::to_string(resumed->run_id) + " already succeeded; nothing to resume");
        return;
      }
      if (yaml.empty()) yaml = resumed->config_yaml;
    }
    const std::string source = r.config_name().empty() ? "job.yaml" : r.config_name();
    training::JobConfig job_config;
    try {
      job_config = training::parse_job_config(yaml, source);
    } catch (const training::ConfigError& e) {
      send_error(call, v1::INVALID_ARGUMENT, e.what(), source);
      return;
    } catch (const std::exception& e) {  // e.g. a YAML conversion the reader did not name
      send_error(call, v1::INVALID_ARGUMENT, source + ": " + e.what(), source);
      return;
    }
    auto job = std::make_unique<JobSlot>();
    job->owner = call.identity;
    std::set<DeviceSlot*> unique;
    for (const auto& entry : job_config.devices) {
      DeviceSlot* s = find_device(entry.address);
      if (!s) {
        for (auto& [name, slot] : devices) {
          if (slot->config.address == entry.address) s = slot.get();
        }
      }
      if (!s) {
        send_error(call, v1::UNKNOWN_DEVICE,
                   source + ": devices." + entry.name + ": '" + entry.address +
                       "' is neither the name nor the address of a device of this daemon "
                       "(devices: " + device_names() + ")");
        return;
      }
      if (auto f = check_lease(*s, ""); f && f->code != v1::LEASE_REQUIRED) {
        send_error(call, f->code, f->message + "; release it before submitting the job",
                   origin(*s));
        return;
      }
      job->external[entry.name] = s->device.get();
      if (unique.insert(s).second) job->devices.push_back(s);
    }
    std::vector<std::string> serials;
    for (auto* s : job->devices) serials.push_back(s->spec.serial);
    std::uint64_t run_id = 0;
    if (resumed) {
      run_id = resumed->run_id;
      store->reopen_run(run_id);
      if (!resumed->checkpoint_path.empty() && fs::exists(resumed->checkpoint_path)) {
        job->resume_checkpoint = resumed->checkpoint_path;
      }
    } else {
      run_id = store->create_run(job_config.name, yaml, serials, call.identity);
    }
    job->id = store->allocate_job_id();  // unique across restarts of this store
    job->run_id = run_id;
    job_config.output_dir = (fs::path(config.runs_dir) / ("run-" + std::to_string(run_id))).string();
    job->main_phase = training::to_string(job_config.training.method);
    job->config = std::move(job_config);
    job->info.set_job_id(job->id);
    job->info.set_run_id(run_id);
    job->info.set_name(job->config.name);
    job->info.set_state(v1::RUNNING);
    job->info.set_phase(job->main_phase);  // every event names its phase, the first one too
    job->info.set_epochs_total(static_cast<std::uint32_t>(job->config.training.epochs));
    if (resumed) {
      job->info.set_epochs_done(static_cast<std::uint32_t>(job->resume_checkpoint ? resumed->epochs_done : 0));
      job->info.set_message(job->resume_checkpoint ? "resuming from " + *job->resume_checkpoint
                                                   : "resuming from the start (no checkpoint)");
    }
    for (auto* s : job->devices) {
      s->job_id = job->id;
      publish_device(*s);
    }
    JobSlot& j = *job;
    jobs[j.id] = std::move(job);
    log("info", "job " + std::to_string(j.id) + " (" + j.config.name + ", run " +
                    std::to_string(run_id) + ") started" +
                    (resumed ? " as a resume" : "") + " for client '" + call.client_id + "'");
    publish_job(j);
    j.thread = std::thread([this, &j] { job_main(j); });
    v1::Reply reply;
    reply.mutable_submit_job()->set_job_id(j.id);
    reply.mutable_submit_job()->set_run_id(run_id);
    send_reply(call, reply);
  }

  // The job thread. Owns its devices by lease for the whole run.
  void job_main(JobSlot& job) {
    RunState state = RunState::kFailed;
    std::string summary, message;
    std::vector<std::pair<DeviceSlot*, Lifecycle>> found;
    auto post_info = [this, &job](auto update) {
      asio::post(io, [this, &job, update] {
        update(job.info);
        publish_job(job);
      });
    };
    try {
      // Bring the devices up as far as the job needs; they are put back as found at the end.
      for (auto* s : job.devices) {
        found.emplace_back(s, s->device->state());
        if (s->device->state() == Lifecycle::kUnconfigured) {
          if (auto r = s->device->configure(); !r) throw std::runtime_error(r.error().message);
        }
        if (s->device->state() == Lifecycle::kInactive) {
          if (auto r = s->device->activate(); !r) throw std::runtime_error(r.error().message);
        }
        post_device_status(*s);
      }
      training::JobCallbacks cb;
      cb.stop_requested = [&job] { return job.stop.load(); };
      cb.on_log = [this, &job](const std::string& m) {
        log_async("info", "job " + std::to_string(job.id) + ": " + m);
      };
      auto last_progress = Clock::now() - std::chrono::seconds(1);
      // `batch` is 1-based (1..num_batches), as the trainer reports it.
      cb.on_batch = [&, post_info](const std::string& phase, int epoch, int, Index batch, Index nb,
                                   double loss) {
        const auto now = Clock::now();
        if (now - last_progress < std::chrono::milliseconds(200) && batch < nb) return;
        last_progress = now;
        post_info([phase, epoch, batch, nb, loss](v1::JobInfo& info) {
          info.set_phase(phase);
          info.set_epoch(static_cast<std::uint32_t>(epoch));
          info.set_batch(static_cast<std::uint32_t>(batch));
          info.set_num_batches(static_cast<std::uint32_t>(nb));
          info.set_running_loss(loss);
        });
      };
      const std::string checkpoint =
          (fs::path(job.config.output_dir) / "checkpoint.pnnckpt").string();
      cb.on_epoch = [&, post_info, checkpoint](const std::string& phase,
                                               const training::EpochStats& e, int) {
        // Durable before it is announced: an event or JobStatus never shows a metric the store
        // could lose.
        MetricRecord m{phase, e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy, e.seconds};
        store->add_metric(job.run_id, m);
        const bool main = phase == job.main_phase;
        if (main) store->set_checkpoint(job.run_id, checkpoint, e.epoch);
        post_info([m, main](v1::JobInfo& info) {
          fill_metric(m, info.add_metrics());
          info.set_phase(m.phase);
          info.set_epoch(static_cast<std::uint32_t>(m.epoch));
          if (main) info.set_epochs_done(static_cast<std::uint32_t>(m.epoch));
        });
      };
      training::JobOptions opts;
      opts.external_devices = job.external;
      opts.resume_checkpoint = job.resume_checkpoint;
      auto result = training::run_job(job.config, cb, opts);
      if (result) summary = training::job_summary_json(job.config, result.value());
      if (job.stop_for_shutdown) {
        state = RunState::kAborted;
        message = "stopped by a daemon shutdown; resume with SubmitJob resume_run_id=" +
                  std::to_string(job.run_id);
      } else if (!result) {
        message = result.error().message;
      } else if (job.stop) {
        state = RunState::kCancelled;
        message = "cancelled by a client after the current batch";
      } else {
        state = RunState::kSucceeded;
      }
    } catch (const std::exception& e) {
      message = e.what();
      if (job.stop_for_shutdown) state = RunState::kAborted;
    }
    for (auto& [s, before] : found) {
      if (before != Lifecycle::kActive && s->device->state() == Lifecycle::kActive) {
        (void)s->device->deactivate();
      }
      post_device_status(*s);
    }
    bool finished_in_store = true;
    try {
      store->finish_run(job.run_id, state, summary, message);
    } catch (const std::exception& e) {
      finished_in_store = false;
      log_async("error", "job " + std::to_string(job.id) + ": run " + std::to_string(job.run_id) +
                             " not finished in the store (" + e.what() +
                             "); retrying every 2 s until it is written");
    }
    asio::post(io, [this, &job, state, summary, message, finished_in_store] {
      if (!finished_in_store) {
        pending_finishes.push_back({job.run_id, state, summary, message});
        arm_finish_retry();
      }
      job_finished(job, state, summary, message);
    });
  }

  void job_finished(JobSlot& job, RunState state, const std::string& summary,
                    const std::string& message) {
    job.finished = true;
    if (job.thread.joinable()) job.thread.join();
    job.info.set_state(to_proto(state));
    job.info.set_summary_json(summary);
    job.info.set_message(message);
    for (auto* s : job.devices) {
      if (s->job_id == job.id) s->job_id = 0;
      publish_device(*s);
      if (s->health == Health::kFault) schedule_recovery(*s);
    }
    publish_job(job);
    log(state == RunState::kFailed ? "error" : "info",
        "job " + std::to_string(job.id) + " " + v1::JobState_Name(to_proto(state)) +
            (message.empty() ? "" : ": " + message));
    if (phase == Phase::kStoppingJobs && running_jobs() == 0) drive_devices_safe();
  }

  // A run whose final state could not be written (disk full) is written once there is room,
  // so it never stays RUNNING in the store (at the latest, the next start marks it ABORTED).
  void arm_finish_retry() {
    finish_retry_timer.expires_after(std::chrono::seconds(2));
    finish_retry_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      retry_pending_finishes();
      if (!pending_finishes.empty() && phase != Phase::kStopped) arm_finish_retry();
    });
  }

  void retry_pending_finishes() {
    for (auto it = pending_finishes.begin(); it != pending_finishes.end();) {
      try {
        store->finish_run(it->run_id, it->state, it->summary, it->message);
        log("info", "run " + std::to_string(it->run_id) + " finished in the store as " +
                        v1::JobState_Name(to_proto(it->state)) + " now that it could be written");
        it = pending_finishes.erase(it);
      } catch (const std::exception&) {
        ++it;
      }
    }
  }

  // Who may cancel or resume a job or run: its owner, or an admin. Without CURVE every
  // client is an admin (nothing authenticates one loopback client against another).
  bool may_control(const Call& call, const std::string& owner) const {
    const bool curve_on = config.security.curve_enabled();
    return call.role == Role::kAdmin || !curve_on || owner.empty() || owner == call.identity;
  }

  std::size_t running_jobs() const {
    std::size_t n = 0;
    for (const auto& [id, j] : jobs) n += j->finished ? 0 : 1;
    return n;
  }

  void job_status(const Call& call, const v1::JobStatusRequest& r) {
    v1::Reply reply;
    auto* out = reply.mutable_job_status();
    if (r.job_id() == 0) {
      for (const auto& [id, j] : jobs) *out->add_jobs() = j->info;
    } else {
      auto it = jobs.find(r.job_id());
      if (it == jobs.end()) {
        send_error(call, v1::UNKNOWN_JOB,
                   "no job " + std::to_string(r.job_id()) +
                       " in this daemon instance (runs: ListRuns)",
                   kDaemon);
        return;
      }
      *out->add_jobs() = it->second->info;
    }
    send_reply(call, reply);
  }

  void cancel_job(const Call& call, const v1::CancelJobRequest& r) {
    auto it = jobs.find(r.job_id());
    if (it == jobs.end()) {
      send_error(call, v1::UNKNOWN_JOB,
                 "no job " + std::to_string(r.job_id()) + " in this daemon instance (JobStatus "
                 "lists its jobs; earlier ones are runs: ListRuns)",
                 kDaemon);
      return;
    }
    JobSlot& j = *it->second;
    const std::string where = "job " + std::to_string(j.id);
    if (!may_control(call, j.owner)) {
      send_error(call, v1::PERMISSION_DENIED,
                 "job " + std::to_string(j.id) + " belongs to another client; only its owner "
                 "or an admin (security.clients role: admin) may cancel it",
                 where);
      return;
    }
    if (j.finished) {
      v1::Reply reply;
      set_status(reply, v1::JOB_FINISHED,
                 "job " + std::to_string(j.id) + " had already ended (" +
                     v1::JobState_Name(j.info.state()) + "); nothing was cancelled",
                 where);
      *reply.mutable_cancel_job()->mutable_job() = j.info;
      send_reply(call, reply);
      return;
    }
    if (!j.stop.exchange(true)) {
      log("info", "job " + std::to_string(j.id) + ": cancel requested by '" + call.client_id +
                      "'; it stops after the current batch");
    }
    v1::Reply reply;
    *reply.mutable_cancel_job()->mutable_job() = j.info;
    send_reply(call, reply);
  }

  void runs(const Call& call, v1::Request& request) {
    auto req = std::make_shared<v1::Request>(std::move(request));
    on_compute(call, [this, req](v1::Reply& reply) {
      if (req->body_case() == v1::Request::kListRuns) {
        const std::size_t limit = req->list_runs().limit() == 0 ? 50 : req->list_runs().limit();
        for (const auto& run : store->list_runs(limit)) {
          fill_run(run, reply.mutable_list_runs()->add_runs());
        }
        return;
      }
      const auto run = store->get_run(req->get_run().run_id());
      if (!run) {
        return set_status(reply, v1::UNKNOWN_RUN,
                          "no run " + std::to_string(req->get_run().run_id()) +
                              " in the run store (ListRuns lists them)",
                          "pnnd run store");
      }
      fill_run(*run, reply.mutable_get_run()->mutable_run());
      for (const auto& m : store->metrics(run->run_id)) {
        fill_metric(m, reply.mutable_get_run()->add_metrics());
      }
    });
  }

  void snapshot(const Call& call) {
    v1::Reply reply;
    auto* out = reply.mutable_snapshot();
    out->set_instance_id(instance_id);
    out->set_seq(seq);
    for (const auto& [name, s] : devices) fill_device(*s, out->add_devices());
    for (const auto& [id, j] : jobs) *out->add_jobs() = j->info;
    send_reply(call, reply);
  }

  // ---- security --------------------------------------------------------------------------

  void on_zap(std::vector<zmq::message_t>& f) {
    // ZAP request (RFC 27): version, request id, domain, address, identity, mechanism,
    // credentials. The REP socket has stripped the envelope.
    auto frame = [&](std::size_t i) { return i < f.size() ? f[i].to_string() : std::string(); };
    std::string status = "400", text = "client key not allowed", user;
    if (frame(5) == "CURVE" && f.size() >= 7 && f[6].size() == 32) {
      std::array<char, 41> z85{};
      zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(f[6].data()), 32);
      auto it = allowlist.find(z85.data());
      if (it != allowlist.end()) {
        status = "200";
        text = "OK";
        user = std::string(to_string(it->second)) + " " + z85.data();  // "ROLE KEY": identify()
      } else {
        log("warning", "refused a CURVE client from " + frame(3) + ": public key " + z85.data() +
                           " is not in security.clients");
      }
    } else {
      text = "only CURVE clients are accepted";
    }
    const std::vector<std::string> reply = {"1.0", frame(1), status, text, user, ""};
    for (std::size_t i = 0; i < reply.size(); ++i) {
      (void)zap->send(zmq::buffer(reply[i]),
                      i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
    zap_reader->after_send();
  }

  // ---- lifecycle of the daemon -----------------------------------------------------------

  void setup_sockets() {
    const bool curve = config.security.curve_enabled();
    if (curve) {
      public_key = client::curve_public_key(config.security.server_secret_key);
      for (const auto& k : config.security.clients) allowlist[k.public_key] = k.role;
      zap = std::make_unique<zmq::socket_t>(zmq_context, zmq::socket_type::rep);
      zap->set(zmq::sockopt::linger, 0);
      zap->bind(kZapEndpoint);
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

  // Accepted and closed connections of both sockets reach the ConnectionGuard.
  void monitor_connections() {
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

  void on_monitor_event(std::vector<zmq::message_t>& f) {
    if (f.empty() || f[0].size() < 6) return;
    std::uint16_t event = 0;
    std::int32_t fd = 0;
    std::memcpy(&event, f[0].data(), 2);
    std::memcpy(&fd, static_cast<const char*>(f[0].data()) + 2, 4);
    if (event == ZMQ_EVENT_ACCEPTED) connections.on_accepted(fd);
    if (event == ZMQ_EVENT_DISCONNECTED) connections.on_closed(fd);
  }

  // Signals are blocked in every thread from pnnd's first line (block_signals) and caught
  // here before anything slow starts, so a SIGTERM or SIGHUP during start-up waits for the
  // event loop instead of killing pnnd: SIGTERM then still ends in safe states and exit 0.
  void install_signals() {
    if (!options.handle_signals) return;
    signals.add(SIGINT);
    signals.add(SIGTERM);
    signals.add(SIGHUP);
    wait_signals();
  }

  void start() {
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
    std::vector<std::pair<DeviceSlot*, std::future<std::string>>> started;
    for (auto& [name, s] : devices) {
      if (!s->config.autostart) continue;
      auto promise = std::make_shared<std::promise<std::string>>();
      started.emplace_back(s.get(), promise->get_future());
      DeviceSlot* slot = s.get();
      s->worker->post([slot, promise] { promise->set_value(autostart(*slot)); });
    }
    for (auto& [s, done] : started) {
      const std::string error = done.get();
      s->spec = s->device->spec();
      s->state = s->device->state();
      s->health = s->device->health();
      s->health_message = s->device->health_message();
      if (!error.empty()) log("error", "device " + s->config.name + ": autostart failed: " + error);
    }
    setup_sockets();
  }

  void add_device_at_runtime(const DeviceConfig& d) {
    auto slot = make_slot(d);
    DeviceSlot* s = slot.get();
    devices[d.name] = std::move(slot);
    publish_device(*s);
    if (d.autostart) {
      s->worker->post([this, s] {
        const std::string error = autostart(*s);
        post_device_status(*s);
        if (!error.empty()) log_async("error", "device " + s->config.name + ": autostart failed: " + error);
      });
    }
  }

  void reload() {
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
    reply_cache.set_limits(config.reply_cache_entries, config.reply_cache_bytes);
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

  void begin_shutdown(const std::string& why) {
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

  void drive_devices_safe() {
    if (phase == Phase::kSafeState || phase == Phase::kStopped) return;
    phase = Phase::kSafeState;
    stop_timer.cancel();
    for (auto& [name, s] : devices) clear_lease(*s);
    devices_pending_safe = devices.size();
    if (devices_pending_safe == 0) return finish_shutdown();
    for (auto& [name, s] : devices) {
      DeviceSlot* slot = s.get();
      // Behind every call already queued for the device.
      slot->worker->post([this, slot] {
        std::string error;
        if (slot->device->state() == Lifecycle::kActive) {
          if (auto r = slot->device->deactivate(); !r) {
            error = r.error().message;
            slot->device->shutdown();  // last resort: safe state whatever the lifecycle says
          }
        }
        const Lifecycle state = slot->device->state();
        const Health health = slot->device->health();
        asio::post(io, [this, slot, state, health, error] {
          update_device(*slot, state, health);
          if (!error.empty()) log("error", "device " + slot->config.name + ": " + error);
          if (--devices_pending_safe == 0) finish_shutdown();
        });
      });
    }
  }

  void finish_shutdown() {
    if (recorder) recorder->close();  // every queued forward record reaches the store
    log("info", "devices in their safe state, store flushed; bye");
    phase = Phase::kStopped;
    heartbeat.cancel();
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

  void wait_signals() {
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

  void run() {
    router_reader = std::make_unique<detail::ZmqReader>(
        io, router, [this](std::vector<zmq::message_t>& f) { on_rpc(f); });
    router_monitor_reader = std::make_unique<detail::ZmqReader>(
        io, *router_monitor, [this](std::vector<zmq::message_t>& f) { on_monitor_event(f); });
    pub_monitor_reader = std::make_unique<detail::ZmqReader>(
        io, *pub_monitor, [this](std::vector<zmq::message_t>& f) { on_monitor_event(f); });
    router_monitor_reader->start();
    pub_monitor_reader->start();
    if (zap) {
      zap_reader = std::make_unique<detail::ZmqReader>(
          io, *zap, [this](std::vector<zmq::message_t>& f) { on_zap(f); });
      zap_reader->start();
    }
    router_reader->start();
    arm_heartbeat();
    for (auto& [name, s] : devices) {
      if (s->health == Health::kFault) schedule_recovery(*s);  // e.g. absent at autostart
    }
    log("info", "serving " + std::to_string(devices.size()) + " device(s) on " + rpc_endpoint +
                    ", telemetry on " + telemetry_endpoint + ", instance " + instance_id);
    if (options.handle_signals) unblock_signals();  // pending ones now reach the signal_set
    io.run();
    cleanup();
  }

  // After the event loop: join jobs and workers, close the store. Idempotent.
  void cleanup() {
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
    store.reset();
  }
};

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
const std::string& Server::instance_id() const { return impl_->instance_id; }
const std::string& Server::public_key() const { return impl_->public_key; }

}  // namespace pnn::daemon

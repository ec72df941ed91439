#pragma once
// Server::Impl: the daemon's state and the declarations of its parts. Each part lives in its own
// file (docs/architecture.md):
//   server.cpp            controller: start-up, sockets, signals, reload, shutdown, run
//   request_intake.cpp    frames → Call, the idempotency gate, dispatch, the one reply path
//   device_supervisor.cpp slots, device workers, status, recovery, leases, on_device()
//   device_rpc.cpp        Hello, ListDevices, Describe, Lifecycle, Acquire, Renew, Release
//   forward_rpc.cpp       Forward (on the device worker) and its records
//   twin_rpc.cpp          TwinForward/TwinVjp (compute pool) and Calibrate
//   job_runner.cpp        SubmitJob, the job threads, JobStatus, CancelJob, runs, Snapshot
// with the parts that hold their own state as classes: Telemetry, ZapAuthenticator,
// IdempotencyGate, ComputeQueue, Outbox, ConnectionGuard, ForwardRecorder.
#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
#include <zmq.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "call.hpp"
#include "compute_queue.hpp"
#include "connection_guard.hpp"
#include "dashboard.hpp"
#include "drift.hpp"
#include "idempotency.hpp"
#include "outbox.hpp"
#include "pnn/client/lab.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/daemon/server.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/training/job.hpp"
#include "pnn/training/learned_twin.hpp"
#include "recorder.hpp"
#include "telemetry.hpp"
#include "worker.hpp"
#include "zap.hpp"
#include "zmq_reader.hpp"

namespace pnn::daemon {

namespace asio = boost::asio;
using detail::Call;
using detail::Clock;
using detail::Failure;
using detail::kDaemon;
using detail::kIntake;
using drivers::Health;
using drivers::Lifecycle;

struct DeviceSlot {
  DeviceConfig config;
  drivers::PhysicalSystemPtr device;
  // The device's execution context: every call on the device (RPCs, jobs, recovery, leases
  // expiring, shutdown) runs as one of its tasks, one at a time, in order.
  std::unique_ptr<detail::Worker> worker;

  // The status last published as a state event (for change detection only: readers use
  // device->status(), which never waits for a forward).
  drivers::DeviceStatus shown;
  std::uint64_t forward_calls = 0;
  // The Forward fast path (forward_rpc.cpp): whether this device may run a Forward on the event
  // loop (in-process, no injected faults: nothing in it sleeps or waits on a link), its last
  // forward's time per row (any thread; < 0 until one ran) and how many ran there.
  bool inline_capable = false;
  std::atomic<double> forward_ns_per_row{-1.0};
  std::uint64_t inline_forward_calls = 0;
  digital_twin::ModelPtr nominal_twin;
  digital_twin::ModelPtr twin;  // nominal or calibrated; immutable, shared with compute threads
  std::uint64_t calibration_id = 0;
  std::uint64_t twin_id = 0;  // the learned twin in use (run store), 0: datasheet or calibrated
  // The drift monitor (drift.hpp): fed by the device's forward tap on whatever thread ran the
  // forward; evaluated on the compute pool. The NMSE last published in a state event.
  std::shared_ptr<detail::DriftMonitor> drift;
  double drift_published = -1.0;

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
  // Long calls (FitTwin, Calibrate) running under the lease on the worker: while one runs, its
  // holder is waiting for the reply, so the lease does not expire (the timer re-arms).
  std::atomic<int> lease_calls{0};

  // Supervision: background recovery of a FAULTed device (io thread).
  std::unique_ptr<asio::steady_timer> recovery_timer;
  bool recovering = false;
  int recovery_attempts = 0;
  bool duplicate = false;  // same instrument (serial) as another name: finalized, never served
  std::string refusal;     // why it is finalized (duplicate), shown as its health message

  std::string serial() const { return device->status().spec->serial; }
};

// On the worker, for the duration of a long call under a lease (DeviceSlot::lease_calls).
class LongLeaseCall {
 public:
  explicit LongLeaseCall(DeviceSlot& s) : s_(s) { ++s_.lease_calls; }
  ~LongLeaseCall() { --s_.lease_calls; }
  LongLeaseCall(const LongLeaseCall&) = delete;
  LongLeaseCall& operator=(const LongLeaseCall&) = delete;

 private:
  DeviceSlot& s_;
};

struct JobSlot {
  std::uint64_t id = 0;
  std::uint64_t run_id = 0;
  std::string owner;  // the submitting identity
  training::JobConfig config;
  std::string main_phase;
  std::optional<std::string> resume_checkpoint;
  std::vector<DeviceSlot*> devices;  // unique
  std::map<std::string, drivers::PhysicalSystem*> external;
  // Devices of other daemons (DAEMON/DEVICE through config.lab), by the config's device name,
  // and the registry as it was read when the job was submitted (the one they resolved in).
  std::map<std::string, std::string> remote;
  std::optional<client::Lab> lab;
  std::map<std::string, training::DeviceExecutor> executors;
  // Learned twins the config names (twin: learned:<id>), loaded from the store, by device name.
  std::map<std::string, digital_twin::ModelPtr> twins;
  std::map<std::string, std::pair<std::string, std::string>> twin_provenance;
  v1::JobInfo info;  // io thread
  std::atomic<bool> stop{false};
  std::atomic<bool> stop_for_shutdown{false};
  bool finished = false;  // io thread
  std::thread thread;
};

// Start-up: configures and activates the autostart devices, in parallel on their workers.
void start_devices(std::map<std::string, std::unique_ptr<DeviceSlot>>& devices,
                   const std::function<void(const std::string&, const std::string&)>& log);

struct Server::Impl {
  DaemonConfig config;
  ServerOptions options;

  asio::io_context io;
  asio::signal_set signals{io};
  asio::steady_timer stop_timer{io};
  std::atomic<bool> retention_noted{false};  // note_forward_retention said it

  zmq::context_t zmq_context{1};
  zmq::socket_t router{zmq_context, zmq::socket_type::router};
  zmq::socket_t pub{zmq_context, zmq::socket_type::pub};
  std::unique_ptr<detail::ZapAuthenticator> zap;
  // Socket monitors of router and pub (accepted / closed connections), for the guard.
  std::unique_ptr<zmq::socket_t> router_monitor, pub_monitor;
  std::unique_ptr<detail::ZmqReader> router_reader, zap_reader, router_monitor_reader,
      pub_monitor_reader;
  std::string rpc_endpoint, telemetry_endpoint, public_key;
  detail::Telemetry telemetry;

  std::unique_ptr<RunStore> store;
  std::unique_ptr<detail::ForwardRecorder> recorder;
  std::unique_ptr<detail::Dashboard> dashboard;  ///< http.bind set: the read-only web pages
  std::string http_url;
  std::map<std::string, std::unique_ptr<DeviceSlot>> devices;
  detail::IdempotencyGate gate;
  std::map<std::uint64_t, std::unique_ptr<JobSlot>> jobs;

  // Replies bounded per peer; connections bounded per peer and in all (docs/daemon.md).
  detail::Outbox outbox{router, encode_protocol_frame(),
                        [this](const std::string& routing, std::size_t bytes, const char* why) {
                          note_dropped_reply(routing, bytes, why);
                        }};
  asio::steady_timer outbox_timer{io};
  bool outbox_timer_armed = false;
  std::map<std::string, std::uint64_t> drops_by_reason;  // for rate-limited logs
  std::uint64_t requests_dropped_unread = 0;
  detail::ConnectionGuard connections{
      [this](const std::string& level, const std::string& text) { log(level, text); }};
  std::uint64_t descriptor_limit = 0;
  detail::ComputeQueue compute{2};

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

  Impl(DaemonConfig c, ServerOptions o);
  ~Impl() { cleanup(); }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  void log(const std::string& level, const std::string& text) { telemetry.log(level, text); }
  void log_async(std::string level, std::string text) {
    telemetry.log_async(std::move(level), std::move(text));
  }
  void note_forward_retention();

  // ---- controller (server.cpp)
  void setup_sockets();
  void setup_dashboard();
  void monitor_connections();
  void on_monitor_event(std::vector<zmq::message_t>& f);
  void install_signals();
  void wait_signals();
  void start();
  void reload();
  void begin_shutdown(const std::string& why);
  void drive_devices_safe();
  void finish_shutdown();
  void run();
  void cleanup();
  std::string devices_digest() const;

  // ---- request intake and replies (request_intake.cpp)
  void on_rpc(std::vector<zmq::message_t>& frames);
  void dispatch(Call& call, v1::Request& request);
  void dispatch_body(const Call& call, v1::Request& request);
  void send_body(const std::string& routing_id, std::string body);
  void arm_outbox_flush();
  void note_dropped_reply(const std::string& routing, std::size_t bytes, const char* why);
  void note_dropped_request(const std::string& routing);
  // `record`: keep the reply for retries of this request (a Forward that never reached the
  // hardware is not recorded: its retry may run).
  void send_reply(const Call& call, v1::Reply& reply, bool record = true);
  void send_error(const Call& call, v1::StatusCode code, const std::string& message,
                  const std::string& origin = kDaemon);
  // Runs `fn(reply)` on the compute pool and sends the reply it fills.
  void on_compute(const Call& call, std::function<void(v1::Reply&)> fn, std::string origin = kDaemon);

  // ---- device supervisor (device_supervisor.cpp)
  std::unique_ptr<DeviceSlot> make_slot(const DeviceConfig& d);
  void add_device_at_runtime(const DeviceConfig& d);
  DeviceSlot* find_device(const std::string& name);
  std::string device_names() const;
  std::string origin(const DeviceSlot& s) const;
  void fill_device(const DeviceSlot& s, v1::DeviceInfo* out) const;
  void publish_device(const DeviceSlot& s);
  // After a call on the device: publishes a state event if its status changed, starts recovery
  // of a FAULT, refuses a second name for one instrument. Event loop.
  void refresh_device(DeviceSlot& s);
  // From any thread: refresh_device on the event loop.
  void post_refresh(DeviceSlot& s);
  void refuse_duplicate_instrument(DeviceSlot& s);
  void schedule_recovery(DeviceSlot& s);

  // ---- drift monitor (device_drift.cpp)
  // Gives the slot its monitor and the device its forward tap (make_slot).
  void attach_drift_monitor(DeviceSlot& s);
  // Event loop: the sampled forward's twin prediction on the compute pool, then the window.
  void evaluate_drift(DeviceSlot& s, std::shared_ptr<detail::DriftSample> sample);
  // Event loop: after the twin changed (calibration).
  void twin_changed(DeviceSlot& s);
  // Runs `work` on the device's worker, behind the calls already queued for it; then, on the
  // event loop, refreshes the device's status and runs what `work` returned (a callable).
  template <class Work>
  void on_device(DeviceSlot& s, Work work) {
    // The hand-back to the event loop is posted once the worker is idle again (post_then), so
    // a client that got its reply and calls again finds the device idle: the Forward fast path
    // (forward_inline) does not depend on how soon the worker's thread is scheduled.
    s.worker->post_then([this, &s, work = std::move(work)]() mutable -> std::function<void()> {
      auto then = std::make_shared<decltype(work())>(work());
      return [this, &s, then] {
        asio::post(io, [this, &s, then]() mutable {
          refresh_device(s);
          (*then)();
        });
      };
    });
  }
  // The same for an RPC: if the call's deadline passes while it waits, it is answered
  // DEADLINE_EXCEEDED at that moment and never runs. The one way RPC handlers reach a device.
  template <class Work>
  void run_on_device(DeviceSlot& s, const Call& call, Work work) {
    auto started = std::make_shared<std::atomic<int>>(kQueued);
    auto timer = arm_deadline(s, call, started);
    on_device(s, [started, timer, work = std::move(work)]() mutable {
      std::optional<decltype(work())> then;
      int expected = kQueued;
      if (started->compare_exchange_strong(expected, kStarted)) then.emplace(work());
      return [timer, then = std::move(then)]() mutable {
        if (!then) return;  // answered DEADLINE_EXCEEDED while it waited
        timer->cancel();
        (*then)();
      };
    });
  }
  enum : int { kQueued, kStarted, kExpired };
  // The deadline timer of run_on_device: answers DEADLINE_EXCEEDED unless the call started.
  std::shared_ptr<asio::steady_timer> arm_deadline(DeviceSlot& s, const Call& call,
                                                   std::shared_ptr<std::atomic<int>> started);
  // From a job's thread: runs `call` as a task of the device's execution context (inline when it
  // is idle, else behind the queued calls) and waits for it.
  void call_on_worker(DeviceSlot& s, const std::function<void()>& call);
  std::optional<Failure> check_lease(const DeviceSlot& s, const std::string& token,
                                     const Call* call = nullptr) const;
  void arm_lease(DeviceSlot& s);
  void clear_lease(DeviceSlot& s);
  void expire_lease(DeviceSlot& s);
  // Device, lease and deadline checks shared by the device writes. Null if an error was sent.
  DeviceSlot* writable_device(const Call& call, const std::string& name, const std::string& token);
  void unknown_device(const Call& call, const std::string& name);

  // ---- device RPCs (device_rpc.cpp, forward_rpc.cpp, twin_rpc.cpp)
  void hello(const Call& call);
  void list_devices(const Call& call);
  void describe(const Call& call, const v1::DescribeRequest& r);
  void lifecycle(const Call& call, const v1::Request& request);
  void acquire(const Call& call, const v1::AcquireRequest& r);
  void renew(const Call& call, const v1::Request& request);
  void release(const Call& call, const v1::Request& request);
  void forward(const Call& call, v1::Request& request);
  bool store_has_room();
  bool forward_inline(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f);
  bool run_forward(DeviceSlot& s, const Call& call, const v1::ForwardRequest& f, v1::Reply& reply,
                   bool on_event_loop);
  void twin(const Call& call, v1::Request& request);
  void calibrate(const Call& call, const v1::Request& request);
  digital_twin::ModelPtr run_calibration(DeviceSlot& s, const v1::CalibrateRequest& r,
                                         const digital_twin::DifferentiableModel& model,
                                         v1::Reply& reply, std::uint64_t& forward_calls);

  // ---- jobs and runs (job_runner.cpp)
  // ---- learned twins (learned_twin_rpc.cpp)
  void fit_twin(const Call& call, const v1::Request& request);
  void use_twin(const Call& call, const v1::Request& request);
  void twins(const Call& call, const v1::Request& request);  // ListTwins, GetTwin
  drivers::Result<training::FittedTwin> fit_from_records(DeviceSlot& s,
                                                         const training::TwinFitOptions& options);
  // Event loop: the device's twin becomes `model` (twin_id 0: back to the datasheet or
  // calibrated twin), kept in the store for restarts. Throws StoreError.
  void apply_learned_twin(DeviceSlot& s, std::uint64_t twin_id, digital_twin::ModelPtr model);
  // The stored twin `twin_id` as the device's model (and its data hash), or why it cannot serve
  // the device: UNKNOWN_TWIN, TWIN_MISMATCH (another serial, other sizes, a damaged record).
  std::optional<Failure> stored_twin(const DeviceSlot& s, std::uint64_t twin_id,
                                     digital_twin::ModelPtr& model,
                                     std::string* data_hash = nullptr) const;
  // The device's datasheet twin, or its latest stored calibration (store reads; throws StoreError).
  void use_calibrated_twin(DeviceSlot& s);

  void submit_job(const Call& call, const v1::SubmitJobRequest& r);
  void job_main(JobSlot& job);
  std::function<drivers::PhysicalSystemPtr(const std::string&)> remote_device_opener(JobSlot& job);
  void job_finished(JobSlot& job, RunState state, const std::string& summary,
                    const std::string& message);
  void arm_finish_retry();
  void retry_pending_finishes();
  bool may_control(const Call& call, const std::string& owner) const;
  std::size_t running_jobs() const;
  void publish_job(const JobSlot& j);
  void job_status(const Call& call, const v1::JobStatusRequest& r);
  void cancel_job(const Call& call, const v1::CancelJobRequest& r);
  void runs(const Call& call, v1::Request& request);
  void snapshot(const Call& call);
};

}  // namespace pnn::daemon

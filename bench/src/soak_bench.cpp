// soak: the main training job through a pnnd subprocess, once on a quiet daemon and once while
// hostile clients of this process attack the same daemon over loopback, then the two results
// side by side: the accuracies (same seed, fresh devices: they must be identical), the wall
// times, pnnd's peak memory and whether it survived and stopped cleanly.
//
// The hostile clients (threads of this process, raw ZeroMQ DEALER sockets, each bounded in time
// and in count, all stopped when the job is final or after kHostileCap):
//   flood      2 sockets pipelining ListDevices as fast as the socket takes them, never reading
//              a reply; closed with linger 0 and reopened every 2 s (the sequence that used to
//              abort pnnd on libzmq's !_io_error assertion)
//   hold       up to 1 500 connections (connect + one Hello each, never read), held to the end;
//              they come from kHoldSources loopback source addresses (127.0.1.x) so that both the
//              per-peer and the total connection limits of pnnd are pushed, while the other
//              clients (127.0.0.1) keep their share
//   oversized  TwinVjp on osc-a with 100 000 rows (above rpc.max_message_bytes: TOO_LARGE) and
//              8 192 rows (above twin.max_batch_rows: BATCH_TOO_LARGE), alternating, each reply
//              read and its status counted
//   pipelined  4 valid 4 096-row TwinVjp requests on a fresh connection, then the connection
//              closed (linger 0) before any reply was read, once a second
//   midstream  a Forward-sized request (4 096 × 64) sent on a fresh connection that is closed
//              at once (linger 0), so pnnd sees it cut off mid-message or answers nobody
// A sampler reads pnnd's /proc/PID/status (VmHWM, VmRSS, Threads) and counts /proc/PID/fd.
#include <signal.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "bench_common.hpp"
#include "daemon_bench_common.hpp"
#include "pnn/bench/daemon_process.hpp"
#include "pnn/daemon/protocol.hpp"
#include "pnn/digital_twin/parallel.hpp"

// GCC 12 -Wrestrict false positive (GCC bug 105329) on string concatenation in this file.
#pragma GCC diagnostic ignored "-Wrestrict"

namespace pnn::bench::detail {
namespace {

using nlohmann::json;
namespace v1 = pnn::v1;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kDefaultEpochs = 10;
constexpr auto kHostileCap = std::chrono::seconds(120);  // hard cap of the hostile activity
constexpr auto kJobCap = std::chrono::seconds(300);      // the hostile run's job, in all
constexpr int kFlooders = 2;
constexpr auto kFloodReopen = std::chrono::seconds(2);
constexpr long long kFloodMaxPerSocket = 10'000'000;
constexpr int kHoldConnections = 1500;
constexpr int kHoldSources = 12;  // 125 connections from each of 127.0.1.1 … 127.0.1.12
constexpr int kOversizedRows = 100'000;
constexpr int kOverBatchRows = 8'192;
constexpr int kOversizedMax = 2'000;
constexpr int kValidRows = 4'096;
constexpr int kPipelined = 4;
constexpr int kPipelinedMaxRounds = 200;
constexpr int kMidstreamMax = 5'000;
constexpr int kMidstreamRows = 4'096;

// ---- the pnnd process ---------------------------------------------------------------------


long long open_fds(int pid) {
  std::error_code ec;
  long long n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec && n == 0 ? -1 : n;
}

DaemonProcess start_pnnd(const BenchDir& dir) {
  return DaemonProcess({.executable = pnnd_path(),
                                .config_path = lab_config_in(dir),
                                .log_path = dir.file("pnnd.log")});
}

// How pnnd ended: its exit code, or the signal that ended it, or still running after the wait.
struct Ending {
  bool exited = false;
  int code = -1;
  int signal = 0;
  bool timed_out = false;
  bool clean() const { return exited && code == 0; }
  std::string text() const {
    if (exited) return "exit " + std::to_string(code);
    if (signal) return std::string("killed by signal ") + ::strsignal(signal);
    return timed_out ? "did not exit in 60 s (SIGKILLed)" : "unknown";
  }
};

Ending ending_of(int status) {
  Ending e;
  if (WIFEXITED(status)) {
    e.exited = true;
    e.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    e.signal = WTERMSIG(status);
  }
  return e;
}

// SIGTERM and up to 60 s to exit (then SIGKILL); or how it had ended already.
Ending stop_pnnd(DaemonProcess& pnnd) {
  if (auto status = pnnd.wait(milliseconds(0))) return ending_of(*status);
  pnnd.signal(SIGTERM);
  if (auto status = pnnd.wait(std::chrono::seconds(60))) return ending_of(*status);
  pnnd.signal(SIGKILL);
  (void)pnnd.wait(std::chrono::seconds(10));
  Ending e;
  e.timed_out = true;
  return e;
}

json ending_json(const Ending& e) {
  return e.exited ? json(e.code) : json(nullptr);
}

// Warning and error lines of pnnd's log ("pnnd: warning: ..."), counted by kind: the line with
// every word with a digit in it (sizes, counts, ids, addresses) as "#", cut at 72 characters (the most frequent kinds only).
json log_summary(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  long long warnings = 0, errors = 0;
  std::map<std::string, long long> kinds;
  while (std::getline(in, line)) {
    const bool w = line.find("warning:") != std::string::npos;
    const bool e = line.find("error:") != std::string::npos;
    if (!w && !e) continue;
    warnings += w;
    errors += e;
    std::string kind, word;
    std::istringstream words(line);
    while (kind.size() < 72 && words >> word) {
      const bool number = std::any_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!kind.empty()) kind.push_back(' ');
      kind.append(number ? "#" : word.c_str());
    }
    ++kinds[kind.substr(0, 72)];
  }
  std::vector<std::pair<std::string, long long>> top(kinds.begin(), kinds.end());
  std::sort(top.begin(), top.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (top.size() > 8) top.resize(8);
  json by_kind = json::object();
  for (const auto& [kind, n] : top) by_kind[kind] = n;
  return json{{"warnings", warnings}, {"errors", errors}, {"kinds", by_kind}};
}

// ---- the job ------------------------------------------------------------------------------

json accuracies_of(const json& summary) {
  json acc = json::object();
  for (const char* key : {"acc_pat_reality", "acc_insilico_reality", "acc_twin", "acc_digital"}) {
    if (summary.contains(key)) acc[key] = summary[key];
  }
  return acc;
}

std::unique_ptr<client::Client> soak_client(const std::string& endpoint, const std::string& id,
                                            milliseconds timeout) {
  client::ClientOptions o;
  o.endpoint = endpoint;
  o.client_id = id;
  o.timeout = timeout;
  return std::make_unique<client::Client>(std::move(o));
}

struct JobOutcome {
  bool final = false;      // a final state was seen
  bool pnnd_died = false;  // pnnd exited while the job ran
  bool timed_out = false;  // not final within kJobCap
  v1::JobInfo info;
  double wall_s = 0.0;     // SubmitJob to the final state
  long long poll_timeouts = 0;
};

// SubmitJob, then JobStatus every 10 ms until the job is final, pnnd is gone or kJobCap passed.
JobOutcome run_job(DaemonProcess& pnnd, client::Client& client, const std::string& text,
                   const std::string& path, const BenchOptions& options, const std::string& tag) {
  JobOutcome out;
  v1::Request submit;
  submit.mutable_submit_job()->set_config_yaml(text);
  submit.mutable_submit_job()->set_config_name(path);
  const auto t0 = Clock::now();
  v1::Request status;
  status.mutable_job_status()->set_job_id(
      call_ok(client, submit, "SubmitJob").submit_job().job_id());
  std::uint32_t reported = 0;
  for (;;) {
    if (Clock::now() - t0 > kJobCap) {
      out.timed_out = true;
      break;
    }
    v1::Reply reply;
    try {
      reply = client.call(status);
    } catch (const client::ClientError&) {
      ++out.poll_timeouts;
      if (!pnnd.running()) {
        out.pnnd_died = true;
        break;
      }
      continue;
    }
    if (reply.status().code() != v1::OK) {
      throw std::runtime_error("soak: JobStatus: " + v1::StatusCode_Name(reply.status().code()) +
                               ": " + reply.status().message());
    }
    out.info = reply.job_status().jobs(0);
    if (out.info.state() != v1::RUNNING && out.info.state() != v1::QUEUED) {
      out.final = true;
      break;
    }
    if (options.on_progress && out.info.epochs_done() != reported) {
      reported = out.info.epochs_done();
      options.on_progress(tag + " job epoch " + std::to_string(reported) + "/" +
                          std::to_string(out.info.epochs_total()));
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  out.wall_s = seconds_since(t0);
  return out;
}

// ---- hostile clients ----------------------------------------------------------------------

std::string envelope_body(v1::Request request, std::uint64_t id, const std::string& client) {
  request.set_request_id(id);
  request.set_client_id(client);
  return request.SerializeAsString();
}

// One [protocol frame][Request] message; false if the socket would block (dontwait).
bool send_request(zmq::socket_t& s, const std::string& body, bool dontwait) {
  static const std::string frame = daemon::encode_protocol_frame();
  const auto flags = dontwait ? zmq::send_flags::dontwait : zmq::send_flags::none;
  if (!s.send(zmq::buffer(frame), zmq::send_flags::sndmore | flags)) return false;
  // The rest of a message whose first frame was taken is always taken.
  (void)s.send(zmq::buffer(body), zmq::send_flags::none);
  return true;
}

// The next reply within `timeout` (nullopt: none), read in slices so `give_up` is seen.
std::optional<v1::Reply> receive_reply(zmq::socket_t& s, milliseconds timeout,
                                       const std::function<bool()>& give_up) {
  const auto until = Clock::now() + timeout;
  while (Clock::now() < until && !give_up()) {
    zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, milliseconds(100)) <= 0) continue;
    std::vector<zmq::message_t> frames;
    for (;;) {
      zmq::message_t part;
      if (!s.recv(part, zmq::recv_flags::dontwait)) break;
      const bool more = part.more();
      frames.push_back(std::move(part));
      if (!more) break;
    }
    v1::Reply reply;
    if (frames.size() == 2 && reply.ParseFromArray(frames[1].data(), static_cast<int>(frames[1].size()))) {
      return reply;
    }
    v1::Reply malformed;
    malformed.mutable_status()->set_code(v1::INTERNAL);
    malformed.mutable_status()->set_message("reply of " + std::to_string(frames.size()) +
                                            " frames that does not parse");
    return malformed;
  }
  return std::nullopt;
}

zmq::socket_t dealer(zmq::context_t& ctx, const std::string& endpoint) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  return s;
}

struct Hostility {
  std::atomic<bool> stop{false};
  Clock::time_point started, deadline;
  bool done() const { return stop.load(std::memory_order_relaxed) || Clock::now() >= deadline; }

  std::atomic<long long> flood_sent{0}, flood_would_block{0}, flood_sockets{0};
  std::atomic<long long> hold_opened{0}, hold_hellos{0};
  std::atomic<bool> hold_ready{false};
  std::atomic<long long> oversized_sent{0}, oversized_no_reply{0}, oversized_sockets{0};
  std::atomic<long long> pipelined_sent{0}, pipelined_connections{0}, pipelined_no_hello{0};
  std::atomic<long long> midstream_sent{0}, midstream_no_hello{0};

  std::mutex mutex;
  std::map<std::string, long long> oversized_replies;  // status name → count
  std::vector<std::string> errors;

  void note_error(const std::string& who, const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    if (errors.size() < 10) errors.push_back(who + ": " + what);
  }
};

// Runs `body` on a thread; an exception ends the thread and is noted.
std::thread hostile_thread(Hostility& h, const std::string& who, std::function<void()> body) {
  return std::thread([&h, who, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& e) {
      h.note_error(who, e.what());
    }
    if (who == "hold") h.hold_ready = true;  // also when it failed: the job need not wait
  });
}

void flood(Hostility& h, const std::string& endpoint, int index) {
  zmq::context_t ctx(1);
  v1::Request list;
  list.mutable_list_devices();
  const std::string client = "soak-flood-" + std::to_string(index);
  std::uint64_t id = 0;
  while (!h.done()) {
    zmq::socket_t s = dealer(ctx, endpoint);
    ++h.flood_sockets;
    const auto opened = Clock::now();
    long long sent = 0;
    while (!h.done() && Clock::now() - opened < kFloodReopen && sent < kFloodMaxPerSocket) {
      if (send_request(s, envelope_body(list, ++id, client), true)) {
        ++sent;
        ++h.flood_sent;
      } else {
        ++h.flood_would_block;  // the high-water mark: nothing read, pnnd not keeping up
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    s.close();  // linger 0, replies unread, requests maybe in flight
  }
}

// "tcp://HOST:PORT" connected from `source` (libzmq's "tcp://SOURCE:0;HOST:PORT").
std::string from_source(const std::string& endpoint, const std::string& source) {
  const std::string scheme = "tcp://";
  if (endpoint.rfind(scheme, 0) != 0) return endpoint;
  return scheme + source + ":0;" + endpoint.substr(scheme.size());
}

void hold(Hostility& h, const std::string& endpoint) {
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, kHoldConnections + 64);
  v1::Request hello;
  hello.mutable_hello();
  std::vector<zmq::socket_t> sockets;
  sockets.reserve(kHoldConnections);
  for (int i = 0; i < kHoldConnections && !h.done(); ++i) {
    const std::string source = "127.0.1." + std::to_string(1 + i % kHoldSources);
    sockets.push_back(dealer(ctx, from_source(endpoint, source)));
    ++h.hold_opened;
    if (send_request(sockets.back(), envelope_body(hello, 1, "soak-hold-" + std::to_string(i)),
                     true)) {
      ++h.hold_hellos;
    }
    if (i % 100 == 99) std::this_thread::sleep_for(milliseconds(5));
  }
  h.hold_ready = true;
  while (!h.done()) std::this_thread::sleep_for(milliseconds(20));
  sockets.clear();  // linger 0: 1 500 connections dropped at once
}

// A TwinVjp request body for osc-a: `rows` × inputs of x in the input range, θ inside the hard
// limits, ȳ = 1/rows.
struct TwinShape {
  std::uint32_t inputs = 0, outputs = 0;
  std::vector<double> theta;
  double x_lo = 0.0, x_hi = 1.0;
};

TwinShape twin_shape(const v1::DeviceInfo& info) {
  TwinShape t;
  const auto& spec = info.spec();
  t.inputs = spec.num_inputs();
  t.outputs = spec.num_outputs();
  for (const auto& block : spec.params()) {
    const double lo = block.hard_min(), hi = block.hard_max();
    const double mid = std::isfinite(lo) && std::isfinite(hi) ? 0.5 * (lo + hi) : std::clamp(0.0, lo, hi);
    for (std::uint32_t i = 0; i < block.count(); ++i) t.theta.push_back(mid);
  }
  const double lo = spec.input_min(), hi = spec.input_max();
  if (std::isfinite(lo) && std::isfinite(hi) && hi > lo) {
    t.x_lo = lo + 0.05 * (hi - lo);
    t.x_hi = hi - 0.05 * (hi - lo);
  }
  return t;
}

void fill_tensor(v1::Tensor* t, std::uint32_t rows, std::uint32_t cols, double lo, double hi,
                 std::mt19937& rng) {
  t->add_shape(rows);
  t->add_shape(cols);
  auto* data = t->mutable_data();
  data->Resize(static_cast<int>(rows * cols), 0.0f);
  std::uniform_real_distribution<float> u(static_cast<float>(lo), static_cast<float>(hi));
  for (int i = 0; i < data->size(); ++i) data->Set(i, u(rng));
}

std::string twin_vjp_body(const TwinShape& shape, std::uint32_t rows, const std::string& client) {
  std::mt19937 rng(rows);
  v1::Request r;
  auto* vjp = r.mutable_twin_vjp();
  vjp->set_device("osc-a");
  fill_tensor(vjp->mutable_x(), rows, shape.inputs, shape.x_lo, shape.x_hi, rng);
  for (double v : shape.theta) vjp->mutable_theta()->add_data(v);
  const double g = 1.0 / rows;
  fill_tensor(vjp->mutable_y_bar(), rows, shape.outputs, -g, g, rng);
  return envelope_body(r, 1, client);
}

void oversized(Hostility& h, const std::string& endpoint, const std::string& huge,
               const std::string& over_batch) {
  zmq::context_t ctx(1);
  auto give_up = [&h] { return h.done(); };
  std::optional<zmq::socket_t> s;
  for (int i = 0; i < kOversizedMax && !h.done(); ++i) {
    if (!s) {
      s.emplace(dealer(ctx, endpoint));
      ++h.oversized_sockets;
    }
    (void)send_request(*s, i % 2 == 0 ? huge : over_batch, false);
    ++h.oversized_sent;
    const auto reply = receive_reply(*s, std::chrono::seconds(15), give_up);
    if (!reply) {
      if (h.done()) break;
      ++h.oversized_no_reply;  // dropped by pnnd (or no connection): start a fresh one
      s.reset();
      continue;
    }
    std::lock_guard<std::mutex> lock(h.mutex);
    ++h.oversized_replies[v1::StatusCode_Name(reply->status().code())];
  }
}

// Hello and its reply on a fresh socket: the connection is up (false: no reply in `timeout`).
bool hello_round_trip(zmq::socket_t& s, const std::string& client, Hostility& h,
                      milliseconds timeout) {
  v1::Request hello;
  hello.mutable_hello();
  (void)send_request(s, envelope_body(hello, 1, client), false);
  return receive_reply(s, timeout, [&h] { return h.done(); }).has_value();
}

void pipelined(Hostility& h, const std::string& endpoint, const std::string& valid) {
  zmq::context_t ctx(1);
  for (int round = 0; round < kPipelinedMaxRounds && !h.done(); ++round) {
    const auto t0 = Clock::now();
    zmq::socket_t s = dealer(ctx, endpoint);
    ++h.pipelined_connections;
    if (hello_round_trip(s, "soak-pipelined", h, milliseconds(2000))) {
      for (int k = 0; k < kPipelined; ++k) (void)send_request(s, valid, false);
      h.pipelined_sent += kPipelined;
      std::this_thread::sleep_for(milliseconds(100));  // on the wire, pnnd at work
    } else {
      ++h.pipelined_no_hello;
    }
    s.close();  // linger 0: the replies have nobody to go to
    while (!h.done() && Clock::now() - t0 < std::chrono::seconds(1)) {
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
}

void midstream(Hostility& h, const std::string& endpoint, const std::string& forward) {
  zmq::context_t ctx(1);
  for (int i = 0; i < kMidstreamMax && !h.done(); ++i) {
    zmq::socket_t s = dealer(ctx, endpoint);
    if (hello_round_trip(s, "soak-midstream", h, milliseconds(1000))) {
      (void)send_request(s, forward, false);
      ++h.midstream_sent;
    } else {
      ++h.midstream_no_hello;
    }
    s.close();  // at once, linger 0: most of the 1 MB request is still in this process
    std::this_thread::sleep_for(milliseconds(20));
  }
}

// Peaks of pnnd's /proc figures, sampled every 100 ms until stopped.
struct Sampler {
  explicit Sampler(int pid) : pid_(pid), thread_([this] { loop(); }) {}
  ~Sampler() { stop(); }
  void stop() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
  }
  long long hwm_kb = -1, rss_kb = -1, threads = -1, fds = -1;

 private:
  void loop() {
    while (!done_) {
      sample();
      std::this_thread::sleep_for(milliseconds(100));
    }
    sample();
  }
  void sample() {
    const long long hwm = proc_status(pid_, "VmHWM");
    if (hwm < 0) return;  // gone
    hwm_kb = std::max(hwm_kb, hwm);
    rss_kb = std::max(rss_kb, proc_status(pid_, "VmRSS"));
    threads = std::max(threads, proc_status(pid_, "Threads"));
    fds = std::max(fds, open_fds(pid_));
  }
  int pid_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

double mb(long long kb) { return kb < 0 ? -1.0 : static_cast<double>(kb) / 1024.0; }

}  // namespace

std::vector<json> soak(const BenchOptions& options) {
  const std::string path = config_file("jobs/oscillator-digits.yaml");
  YAML::Node yaml = YAML::LoadFile(path);
  yaml["training"]["epochs"] = options.epochs > 0 ? options.epochs : kDefaultEpochs;
  yaml["seed"] = options.seed;
  const std::string text = YAML::Dump(yaml);  // the same job for both runs
  const training::JobConfig config = training::parse_job_config(text, path);

  // 1. Quiet: a fresh pnnd, the job, SIGTERM.
  json quiet_acc;
  double quiet_wall_s = 0.0;
  Ending quiet_end;
  long long quiet_hwm_kb = -1, quiet_fds = -1;
  {
    BenchDir dir("soak-quiet");
    DaemonProcess pnnd = start_pnnd(dir);
    auto client = soak_client(pnnd.rpc_endpoint(), "bench-soak-quiet", milliseconds(10000));
    const JobOutcome job = run_job(pnnd, *client, text, path, options, "quiet");
    quiet_hwm_kb = proc_status(pnnd.pid(), "VmHWM");
    quiet_fds = open_fds(pnnd.pid());
    client.reset();
    quiet_end = stop_pnnd(pnnd);
    if (!job.final || job.info.state() != v1::SUCCEEDED) {
      throw std::runtime_error(
          "soak: the quiet run's job did not succeed (" +
          (job.final ? v1::JobState_Name(job.info.state()) + ": " + job.info.message()
                     : std::string(job.pnnd_died ? "pnnd died" : "no final state")) +
          "); pnnd " + quiet_end.text() + ", its log ends with:\n" + pnnd.log_tail());
    }
    quiet_acc = accuracies_of(json::parse(job.info.summary_json()));
    quiet_wall_s = job.wall_s;
  }

  // 2. Hostile: a fresh pnnd, the same job under attack.
  BenchDir dir("soak-hostile");
  DaemonProcess pnnd = start_pnnd(dir);
  const std::string endpoint = pnnd.rpc_endpoint();
  auto client = soak_client(endpoint, "bench-soak", milliseconds(5000));
  v1::Request describe;
  describe.mutable_describe()->set_device("osc-a");
  const TwinShape shape = twin_shape(call_ok(*client, describe, "Describe osc-a").describe().device());
  // The requests, built once (the 100 000-row one is 51 MB).
  const std::string huge = twin_vjp_body(shape, kOversizedRows, "soak-oversized");
  const std::string over_batch = twin_vjp_body(shape, kOverBatchRows, "soak-oversized");
  const std::string valid = twin_vjp_body(shape, kValidRows, "soak-pipelined");
  std::string forward;
  {
    std::mt19937 rng(7);
    v1::Request r;
    r.set_lease_token("soak-no-lease");
    r.mutable_forward()->set_device("osc-a");
    fill_tensor(r.mutable_forward()->mutable_x(), kMidstreamRows, shape.inputs, shape.x_lo,
                shape.x_hi, rng);
    for (double v : shape.theta) r.mutable_forward()->mutable_theta()->add_data(v);
    forward = envelope_body(r, 1, "soak-midstream");
  }

  Sampler sampler(pnnd.pid());
  Hostility h;
  h.started = Clock::now();
  h.deadline = h.started + kHostileCap;
  std::vector<std::thread> threads;
  for (int i = 0; i < kFlooders; ++i) {
    threads.push_back(hostile_thread(h, "flood", [&h, &endpoint, i] { flood(h, endpoint, i); }));
  }
  threads.push_back(hostile_thread(h, "hold", [&h, &endpoint] { hold(h, endpoint); }));
  threads.push_back(hostile_thread(
      h, "oversized", [&] { oversized(h, endpoint, huge, over_batch); }));
  threads.push_back(hostile_thread(h, "pipelined", [&] { pipelined(h, endpoint, valid); }));
  threads.push_back(hostile_thread(h, "midstream", [&] { midstream(h, endpoint, forward); }));
  // The attack in full swing before the job starts: the holder's connections are open.
  const auto ramp_start = Clock::now();
  while (!h.hold_ready && Clock::now() - ramp_start < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  const double ramp_s = seconds_since(ramp_start);

  JobOutcome job;
  std::string job_error;
  try {
    job = run_job(pnnd, *client, text, path, options, "hostile");
  } catch (const std::exception& e) {
    job_error = e.what();
  }
  h.stop = true;
  for (auto& t : threads) t.join();
  const double hostile_s = seconds_since(h.started);

  // After the attack: pnnd still alive and answering?
  const bool alive = pnnd.running();
  bool responsive = false;
  if (alive) {
    try {
      auto probe = soak_client(endpoint, "bench-soak-probe", milliseconds(10000));
      v1::Request list;
      list.mutable_list_devices();
      responsive = probe->call(list).status().code() == v1::OK;
    } catch (const std::exception&) {
      responsive = false;
    }
  }
  sampler.stop();
  client.reset();
  const Ending hostile_end = stop_pnnd(pnnd);

  const bool job_ok = job.final && job.info.state() == v1::SUCCEEDED;
  json hostile_acc = json::object();
  if (job_ok) hostile_acc = accuracies_of(json::parse(job.info.summary_json()));
  json attacks{
      {"flood", {{"sockets", kFlooders},
                 {"requests_sent", h.flood_sent.load()},
                 {"would_block", h.flood_would_block.load()},
                 {"connections_opened", h.flood_sockets.load()},
                 {"reopen_s", std::chrono::duration<double>(kFloodReopen).count()}}},
      {"hold", {{"connections_opened", h.hold_opened.load()},
                {"hellos_sent", h.hold_hellos.load()},
                {"source_addresses", kHoldSources}}},
      {"oversized", {{"requests_sent", h.oversized_sent.load()},
                     {"rows", {kOversizedRows, kOverBatchRows}},
                     {"replies", h.oversized_replies},
                     {"no_reply", h.oversized_no_reply.load()},
                     {"connections_opened", h.oversized_sockets.load()}}},
      {"pipelined", {{"requests_sent", h.pipelined_sent.load()},
                     {"rows", kValidRows},
                     {"connections_opened", h.pipelined_connections.load()},
                     {"no_hello_reply", h.pipelined_no_hello.load()}}},
      {"midstream", {{"requests_sent", h.midstream_sent.load()},
                     {"rows", kMidstreamRows},
                     {"no_hello_reply", h.midstream_no_hello.load()}}},
      {"errors", h.errors}};
  const long long requests = h.flood_sent + h.hold_hellos + h.oversized_sent + h.pipelined_sent +
                             h.midstream_sent;
  const long long connections = h.flood_sockets + h.hold_opened + h.oversized_sockets +
                                h.pipelined_connections + h.midstream_sent + h.midstream_no_hello;

  json record{{"name", "soak"},
              {"config", path},
              {"seed", config.seed},
              {"epochs", config.training.epochs},
              {"compare_in_silico", config.compare_in_silico},
              {"quiet", quiet_acc},
              {"hostile", hostile_acc},
              {"result_identical", job_ok && hostile_acc == quiet_acc},
              {"quiet_wall_s", quiet_wall_s},
              {"hostile_wall_s", job.wall_s},
              {"slowdown", job_ok && quiet_wall_s > 0 ? json(job.wall_s / quiet_wall_s) : json(nullptr)},
              {"hostile_job_state", job.final ? v1::JobState_Name(job.info.state())
                                              : (job.pnnd_died ? "pnnd died"
                                                 : job.timed_out ? "not final in 300 s"
                                                                 : "unknown: " + job_error)},
              {"hostile_ramp_s", ramp_s},
              {"hostile_s", hostile_s},
              {"hostile_cap_s", std::chrono::duration<double>(kHostileCap).count()},
              {"job_status_poll_timeouts", job.poll_timeouts},
              {"peak_rss_mb", mb(sampler.hwm_kb)},
              {"peak_sampled_rss_mb", mb(sampler.rss_kb)},
              {"quiet_peak_rss_mb", mb(quiet_hwm_kb)},
              {"pnnd_peak_fds", sampler.fds},
              {"pnnd_quiet_fds", quiet_fds},
              {"pnnd_peak_threads", sampler.threads},
              {"pnnd_alive", alive},
              {"pnnd_responsive_after", responsive},
              {"pnnd_exit_code_quiet", ending_json(quiet_end)},
              {"pnnd_exit_code_hostile", ending_json(hostile_end)},
              {"pnnd_end_hostile", hostile_end.text()},
              {"hostile_requests_sent", requests},
              {"hostile_connections_opened", connections},
              {"attacks", attacks},
              {"pnnd_log", log_summary(dir.file("pnnd.log"))},
              {"threads", digital_twin::num_threads()},
              {"servers", "pnnd subprocess"}};

  // A daemon that died, hung, did not stop cleanly or lost the job is a failure: the bench
  // throws like the others do, with everything measured in the message.
  std::string failure;
  if (!alive || job.pnnd_died) failure = "pnnd died during the hostile run (" + hostile_end.text() + ")";
  else if (!quiet_end.clean()) failure = "the quiet pnnd did not stop cleanly (" + quiet_end.text() + ")";
  else if (!hostile_end.clean()) failure = "the hostile pnnd did not stop cleanly (" + hostile_end.text() + ")";
  else if (!job_ok) failure = "the hostile run's job did not succeed (" + record["hostile_job_state"].get<std::string>() +
                             (job.final ? ": " + job.info.message() : "") + ")";
  else if (!responsive) failure = "pnnd did not answer ListDevices after the attack";
  if (!failure.empty()) {
    throw std::runtime_error("soak: " + failure + "; measured: " + record.dump() +
                             "\npnnd's log ends with:\n" + pnnd.log_tail());
  }
  return {record};
}

}  // namespace pnn::bench::detail

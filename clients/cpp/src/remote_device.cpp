#include "pnn/client/remote_device.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>


namespace pnn::client {

drivers::DeviceSpec spec_from_proto(const v1::DeviceSpec& p) {
  drivers::DeviceSpec s;
  s.kind = p.kind();
  s.model = p.model();
  s.serial = p.serial();
  s.firmware = p.firmware();
  s.num_inputs = p.num_inputs();
  s.num_outputs = p.num_outputs();
  s.input_unit = p.input_unit();
  s.output_unit = p.output_unit();
  s.input_min = p.input_min_f32();
  s.input_max = p.input_max_f32();
  if (!(s.input_min <= s.input_max)) {  // a daemon older than protocol minor 4
    s.input_min = p.input_min();
    s.input_max = p.input_max();
  }
  for (const auto& b : p.params()) {
    s.params.push_back({b.name(), static_cast<Index>(b.count()), b.unit(), b.hard_min(),
                        b.hard_max(), b.description()});
  }
  s.output_noise_std = p.output_noise_std();
  s.max_batch = p.max_batch();
  return s;
}

// Renews the lease every ttl/3 on its own connection; the first failure is kept for the next
// forward to report (the lease may be gone: nothing more should run on the device).
struct RemoteDevice::KeepAlive {
  KeepAlive(ClientOptions options, std::string device, std::string token, std::uint32_t ttl_ms)
      : client(std::move(options)), device(std::move(device)), token(std::move(token)),
        period(std::chrono::milliseconds(std::max<std::uint32_t>(ttl_ms / 3, 50))) {
    thread = std::thread([this] { run(); });
  }
  ~KeepAlive() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    wake.notify_all();
    thread.join();
  }
  std::string failure() {
    std::lock_guard lock(mutex);
    return error;
  }

 private:
  void run() {
    std::unique_lock lock(mutex);
    while (!wake.wait_for(lock, period, [this] { return stop; })) {
      lock.unlock();
      std::string why;
      try {
        v1::Request r;
        r.set_lease_token(token);
        r.mutable_renew()->set_device(device);
        const v1::Reply reply = client.call(std::move(r));
        if (reply.status().code() != v1::OK) {
          why = wire::to_string(reply.status().code()) + ": " + reply.status().message();
        }
      } catch (const std::exception& e) {
        why = e.what();
      }
      lock.lock();
      if (!why.empty() && error.empty()) error = "lease renewal failed: " + why;
    }
  }

 public:
  Client client;
  std::string device, token;
  std::chrono::milliseconds period;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::string error;
  std::thread thread;
};

// Follows state/DEVICE on the daemon's telemetry and reports each change of state, health or
// health message.
struct RemoteDevice::StateWatch {
  StateWatch(std::string endpoint, std::string device, CurveClientKeys curve,
             std::function<void(const v1::DeviceInfo&)> on_state)
      : thread([this, endpoint = std::move(endpoint), device = std::move(device),
                curve = std::move(curve), on_state = std::move(on_state)] {
          try {
            Subscriber sub(endpoint, {"state/" + device}, curve);
            std::string last;
            while (!stop) {
              const auto e = sub.next(std::chrono::milliseconds(100));
              if (!e || e->second.body_case() != v1::Event::kDeviceState) continue;
              const auto& d = e->second.device_state();
              const std::string now = std::to_string(d.state()) + "/" + std::to_string(d.health()) +
                                      "/" + d.health_message();
              if (now != last) on_state(d);
              last = now;
            }
          } catch (const std::exception&) {
            // No telemetry (a bad event, a socket error): the device works without it.
          }
        }) {}
  ~StateWatch() {
    // After a failed call the daemon's account of the fault (its health message) is on its
    // way: give it a moment to arrive before the subscription closes.
    if (drain) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
    thread.join();
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> drain{false};
  std::thread thread;
};

std::string announced_telemetry(const v1::HelloReply& hello, const std::string& rpc) {
  for (const auto& c : hello.capabilities()) {
    if (c.rfind("telemetry=", 0) != 0) continue;
    std::string announced = c.substr(10);
    const auto colon = announced.rfind(':');
    const auto scheme = announced.find("://");
    if (colon == std::string::npos || scheme == std::string::npos) return announced;
    const std::string host = announced.substr(scheme + 3, colon - scheme - 3);
    if (host == "0.0.0.0" || host == "*" || host == "::" || host == "[::]") {
      const auto rpc_colon = rpc.rfind(':');
      const auto rpc_scheme = rpc.find("://");
      if (rpc_colon != std::string::npos && rpc_scheme != std::string::npos) {
        announced = announced.substr(0, scheme + 3) +
                    rpc.substr(rpc_scheme + 3, rpc_colon - rpc_scheme - 3) + announced.substr(colon);
      }
    }
    return announced;
  }
  return "";
}

namespace {

drivers::Errc errc_of(v1::StatusCode code) {
  switch (code) {
    case v1::DEVICE_TIMEOUT:
      return drivers::Errc::kTimeout;
    case v1::OUT_OF_LIMITS:
      return drivers::Errc::kOutOfLimits;
    case v1::SHAPE_MISMATCH:
      return drivers::Errc::kShapeMismatch;
    case v1::WRONG_STATE:
      return drivers::Errc::kWrongState;
    default:
      return drivers::Errc::kDeviceFault;
  }
}

}  // namespace

std::unique_ptr<RemoteDevice> RemoteDevice::open(RemoteDeviceOptions options) {
  Client client(options.client);
  v1::Reply reply;
  try {
    v1::Request r;
    r.mutable_describe()->set_device(options.device);
    reply = client.call(std::move(r));
  } catch (const std::exception& e) {
    throw std::invalid_argument(options.label + ": " + e.what() + options.hint);
  }
  if (reply.status().code() != v1::OK) {
    throw std::invalid_argument(options.label + ": the daemon says " +
                                wire::to_string(reply.status().code()) + ": " +
                                reply.status().message());
  }
  const auto& info = reply.describe().device();
  drivers::DeviceSpec spec = spec_from_proto(info.spec());
  digital_twin::ModelPtr twin;
  if (!info.no_twin()) {
    if (!options.twin_for) throw std::logic_error("RemoteDevice::open: no twin_for given");
    try {
      twin = options.twin_for(info.address());
    } catch (const std::exception& e) {
      throw std::invalid_argument(options.label + ": no twin for its address '" + info.address() +
                                  "' here: " + e.what());
    }
  }
  if (options.client.client_id.empty()) options.client.client_id = client.client_id();
  std::string telemetry = options.telemetry;
  if (options.on_state && telemetry.empty()) {
    v1::Request r;
    r.mutable_hello();
    try {
      telemetry = announced_telemetry(client.call(std::move(r)).hello(), options.client.endpoint);
    } catch (const std::exception&) {
      // It answered Describe a moment ago; without telemetry the device still works.
    }
  }
  std::unique_ptr<RemoteDevice> device(
      new RemoteDevice(std::move(options), std::move(spec), info.address(), std::move(twin)));
  if (device->options_.on_state && !telemetry.empty()) {
    device->state_watch_ = std::make_unique<StateWatch>(telemetry, device->options_.device,
                                                        device->options_.client.curve,
                                                        device->options_.on_state);
  }
  return device;
}

RemoteDevice::RemoteDevice(RemoteDeviceOptions options, drivers::DeviceSpec spec,
                           std::string address, digital_twin::ModelPtr twin)
    : PhysicalSystem(std::move(spec)), options_(std::move(options)), address_(std::move(address)),
      twin_(std::move(twin)) {}

RemoteDevice::~RemoteDevice() {
  shutdown();
  state_watch_.reset();
}

drivers::Result<v1::Reply> RemoteDevice::call(v1::Request request) {
  if (!client_) client_ = std::make_unique<Client>(options_.client);
  v1::Reply reply;
  try {
    reply = client_->call(std::move(request));
  } catch (const NoReplyError& e) {
    client_.reset();
    return drivers::make_error(drivers::Errc::kTimeout,
                               options_.label + ": " + e.what() + options_.hint);
  } catch (const std::exception& e) {
    client_.reset();
    return drivers::make_error(drivers::Errc::kIo, options_.label + ": " + e.what());
  }
  if (reply.status().code() != v1::OK) {
    return drivers::make_error(errc_of(reply.status().code()),
                               options_.label + ": " + wire::to_string(reply.status().code()) +
                                   ": " + reply.status().message());
  }
  return reply;
}

drivers::Result<void> RemoteDevice::do_configure() {
  v1::Request r;
  r.mutable_acquire()->set_device(options_.device);
  r.mutable_acquire()->set_ttl_ms(options_.lease_ttl_ms);
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  lease_token_ = reply.value().acquire().lease_token();
  const std::uint32_t ttl = reply.value().acquire().ttl_ms();
  keep_alive_ = std::make_unique<KeepAlive>(options_.client, options_.device, lease_token_,
                                            ttl != 0 ? ttl : options_.lease_ttl_ms);
  return {};
}

drivers::Result<void> RemoteDevice::do_activate() {
  v1::Request r;
  r.mutable_describe()->set_device(options_.device);
  auto reply = call(std::move(r));
  if (!reply) return reply.error();
  if (reply.value().describe().device().state() != v1::ACTIVE) {
    return drivers::make_error(drivers::Errc::kWrongState,
                               options_.label + " is not ACTIVE on its daemon: activate it there "
                               "(pnnctl lifecycle " + options_.label + " activate)");
  }
  return {};
}

drivers::Result<void> RemoteDevice::do_cleanup() {
  keep_alive_.reset();
  if (lease_token_.empty()) return {};
  v1::Request r;
  r.set_lease_token(lease_token_);
  r.mutable_release()->set_device(options_.device);
  lease_token_.clear();
  auto reply = call(std::move(r));  // best effort: an unreachable daemon lets the lease expire
  if (!reply) return reply.error();
  return {};
}

drivers::Result<Matrix> RemoteDevice::do_forward(const MatrixRef& x, const VectorRef& theta) {
  if (keep_alive_) {
    if (const std::string why = keep_alive_->failure(); !why.empty()) {
      // The lease lapsed or its daemon went away: the link to the device is lost.
      return drivers::make_error(drivers::Errc::kIo, options_.label + ": " + why);
    }
  }
  v1::Request r;
  r.set_lease_token(lease_token_);
  auto* f = r.mutable_forward();
  f->set_device(options_.device);
  wire::to_tensor(x, f->mutable_x());
  wire::to_vec(theta, f->mutable_theta());
  auto reply = call(std::move(r));
  if (!reply) {
    if (state_watch_) state_watch_->drain = true;
    return reply.error();
  }
  auto y = wire::from_tensor(reply.value().forward().y(), options_.label + " reply");
  if (!y) return drivers::make_error(drivers::Errc::kIo, y.error().message);
  return std::move(y).value();
}

}  // namespace pnn::client

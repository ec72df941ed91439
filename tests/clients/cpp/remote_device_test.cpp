// RemoteDevice (clients/cpp/src/remote_device.cpp) against a scripted fake daemon: a ZeroMQ
// ROUTER that answers each request as the test says, stays silent, or sends garbage. Checks the
// lease lifecycle and that every fault becomes a driver error naming the device.
#include "pnn/client/remote_device.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "pnn/digital_twin/model.hpp"

using namespace pnn;
namespace v1 = pnn::v1;

namespace {

/// What the fake daemon does with one request.
struct Answer {
  enum class Kind { kReply, kSilence, kGarbage } kind = Kind::kReply;
  v1::Reply reply;
};

class FakeDaemon {
 public:
  using Handler = std::function<Answer(const v1::Request&)>;
  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)) {
    router_.set(zmq::sockopt::linger, 0);
    router_.bind("tcp://127.0.0.1:*");
    endpoint_ = router_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  std::vector<v1::Request> requests() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  int count(v1::Request::BodyCase body) {
    int n = 0;
    for (const auto& r : requests()) n += r.body_case() == body;
    return n;
  }

 private:
  void serve() {
    const std::string protocol = wire::encode_protocol_frame();
    while (!stop_) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) <= 0) continue;
      std::vector<zmq::message_t> frames;
      for (bool more = true; more;) {
        zmq::message_t part;
        if (!router_.recv(part, zmq::recv_flags::dontwait)) break;
        more = part.more();
        frames.push_back(std::move(part));
      }
      if (frames.size() != 3) continue;
      v1::Request request;
      if (!request.ParseFromArray(frames[2].data(), static_cast<int>(frames[2].size()))) continue;
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(request);
      }
      Answer a = handler_(request);
      if (a.kind == Answer::Kind::kSilence) continue;
      a.reply.set_request_id(request.request_id());
      const std::string body = a.kind == Answer::Kind::kGarbage ? std::string("\xff\xff\x01garbage", 10)
                                                                : a.reply.SerializeAsString();
      (void)router_.send(frames[0], zmq::send_flags::sndmore);
      (void)router_.send(zmq::buffer(protocol), zmq::send_flags::sndmore);
      (void)router_.send(zmq::buffer(body), zmq::send_flags::none);
    }
  }

  Handler handler_;
  zmq::context_t context_{1};
  zmq::socket_t router_{context_, zmq::socket_type::router};
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<v1::Request> seen_;
};

Answer ok(v1::Reply reply = {}) {
  reply.mutable_status()->set_code(v1::OK);
  return {Answer::Kind::kReply, std::move(reply)};
}

Answer status(v1::StatusCode code, const std::string& message) {
  v1::Reply reply;
  reply.mutable_status()->set_code(code);
  reply.mutable_status()->set_message(message);
  return {Answer::Kind::kReply, std::move(reply)};
}

// A one-input, one-output device with one parameter in [0, 2], ACTIVE on its daemon.
v1::Reply describe_reply() {
  v1::Reply reply;
  auto* d = reply.mutable_describe()->mutable_device();
  d->set_name("dev");
  d->set_address("sim://power-law");
  d->set_state(v1::ACTIVE);
  auto* s = d->mutable_spec();
  s->set_kind("power-law");
  s->set_serial("SIM-X");
  s->set_num_inputs(1);
  s->set_num_outputs(1);
  s->set_input_min(0.0);
  s->set_input_max(10.0);
  s->set_input_min_f32(0.0f);
  s->set_input_max_f32(10.0f);
  s->set_max_batch(64);
  s->set_num_params(1);
  auto* p = s->add_params();
  p->set_name("exponent");
  p->set_count(1);
  p->set_hard_min(0.0);
  p->set_hard_max(2.0);
  return reply;
}

// The usual daemon: describes, leases (TTL as given), echoes y = 2·x, renews and releases.
Answer usual(const v1::Request& r, std::uint32_t ttl_ms = 30000) {
  switch (r.body_case()) {
    case v1::Request::kDescribe:
      return ok(describe_reply());
    case v1::Request::kAcquire: {
      v1::Reply reply;
      reply.mutable_acquire()->set_lease_token("TOKEN");
      reply.mutable_acquire()->set_ttl_ms(ttl_ms);
      return ok(reply);
    }
    case v1::Request::kForward: {
      v1::Reply reply;
      *reply.mutable_forward()->mutable_y() = r.forward().x();
      for (auto& v : *reply.mutable_forward()->mutable_y()->mutable_data()) v *= 2.0f;
      return ok(reply);
    }
    default:
      return ok();
  }
}

std::unique_ptr<client::RemoteDevice> open_device(const FakeDaemon& daemon, int timeout_ms = 300) {
  client::RemoteDeviceOptions o;
  o.label = "lab1/dev";
  o.device = "dev";
  o.client.endpoint = daemon.endpoint();
  o.client.timeout = std::chrono::milliseconds(timeout_ms);
  o.hint = " (check lab.yaml line 3)";
  o.twin_for = [](const std::string& address) -> digital_twin::ModelPtr {
    if (address != "sim://power-law") throw std::invalid_argument("unexpected address " + address);
    return nullptr;  // the tests never ask the twin for numbers
  };
  return client::RemoteDevice::open(std::move(o));
}

Matrix one(double v) { return Matrix::Constant(1, 1, v); }
Vector theta(double v) { return Vector::Constant(1, v); }

}  // namespace

TEST_CASE("remote device: lease on configure, forward with the lease, release on shutdown") {
  FakeDaemon daemon([](const v1::Request& r) { return usual(r); });
  auto dev = open_device(daemon);
  CHECK(dev->spec().serial == "SIM-X");
  CHECK(dev->spec().param_max()[0] == 2.0);
  CHECK(dev->remote_address() == "sim://power-law");
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  auto y = dev->forward(one(1.5), theta(1.0));
  REQUIRE(y);
  CHECK(y.value()(0, 0) == doctest::Approx(3.0));
  // Out of limits is refused here: nothing is sent.
  CHECK_FALSE(dev->forward(one(1.5), theta(3.0)));
  CHECK(daemon.count(v1::Request::kForward) == 1);
  for (const auto& r : daemon.requests()) {
    if (r.body_case() == v1::Request::kForward) CHECK(r.lease_token() == "TOKEN");
  }
  dev->shutdown();
  CHECK(daemon.count(v1::Request::kRelease) == 1);
}

TEST_CASE("remote device: daemon errors, silence and garbage are driver errors naming it") {
  std::atomic<int> mode{0};
  FakeDaemon daemon([&](const v1::Request& r) {
    if (r.body_case() != v1::Request::kForward) return usual(r);
    switch (mode.load()) {
      case 0:
        return status(v1::DEVICE_TIMEOUT, "the board did not answer");
      case 1:
        return Answer{Answer::Kind::kSilence, {}};
      default:
        return Answer{Answer::Kind::kGarbage, {}};
    }
  });
  auto dev = open_device(daemon);
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  auto r = dev->forward(one(1.0), theta(1.0));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == make_error_code(drivers::Errc::kTimeout));
  CHECK(r.error().message.find("lab1/dev: DEVICE_TIMEOUT: the board did not answer") != std::string::npos);
  // The device is FAULT now, as any driver's after a device error: refused until recovered,
  // which releases the lease and takes a new one.
  CHECK(dev->health() == drivers::Health::kFault);
  CHECK_FALSE(dev->forward(one(1.0), theta(1.0)));
  REQUIRE(dev->recover());
  REQUIRE(dev->activate());
  CHECK(daemon.count(v1::Request::kRelease) == 1);
  CHECK(daemon.count(v1::Request::kAcquire) == 2);
  mode = 1;
  r = dev->forward(one(1.0), theta(1.0));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == make_error_code(drivers::Errc::kTimeout));
  CHECK(r.error().message.find("lab1/dev") != std::string::npos);
  CHECK(r.error().message.find("check lab.yaml line 3") != std::string::npos);
  REQUIRE(dev->recover());
  REQUIRE(dev->activate());
  mode = 2;
  r = dev->forward(one(1.0), theta(1.0));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("lab1/dev") != std::string::npos);
}

TEST_CASE("remote device: a failed lease renewal stops the next forward with the reason") {
  std::atomic<bool> expire{false};
  FakeDaemon daemon([&](const v1::Request& r) {
    if (r.body_case() == v1::Request::kRenew && expire) {
      return status(v1::LEASE_EXPIRED, "the lease expired");
    }
    return usual(r, 150);  // renewals every 50 ms
  });
  auto dev = open_device(daemon);
  REQUIRE(dev->configure());
  REQUIRE(dev->activate());
  for (int i = 0; i < 200 && daemon.count(v1::Request::kRenew) < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(daemon.count(v1::Request::kRenew) >= 2);
  REQUIRE(dev->forward(one(1.0), theta(1.0)));
  expire = true;
  // Two more renewals: the keep-alive sends the next one only after it has taken in the reply
  // to the one before (and kept its failure), so by then the failure is recorded.
  const int renewals = daemon.count(v1::Request::kRenew);
  for (int i = 0; i < 300 && daemon.count(v1::Request::kRenew) < renewals + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(daemon.count(v1::Request::kRenew) >= renewals + 2);
  auto r = dev->forward(one(1.0), theta(1.0));
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("lease renewal failed") != std::string::npos);
  CHECK(r.error().message.find("LEASE_EXPIRED") != std::string::npos);
}

TEST_CASE("remote device: an unknown device or a silent daemon fails open with the reason") {
  FakeDaemon daemon([](const v1::Request& r) {
    if (r.body_case() == v1::Request::kDescribe) return status(v1::UNKNOWN_DEVICE, "no device 'dev'");
    return usual(r);
  });
  CHECK_THROWS_WITH_AS(open_device(daemon), doctest::Contains("lab1/dev: the daemon says UNKNOWN_DEVICE"),
                       std::invalid_argument);
  FakeDaemon silent([](const v1::Request&) { return Answer{Answer::Kind::kSilence, {}}; });
  CHECK_THROWS_WITH_AS(open_device(silent, 200), doctest::Contains("check lab.yaml line 3"),
                       std::invalid_argument);
}

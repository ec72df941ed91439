#include "telemetry.hpp"

#include <cstdio>

#include "proto_fill.hpp"
#include "wire_text.hpp"

namespace pnn::daemon::detail {

namespace asio = boost::asio;

Telemetry::Telemetry(asio::io_context& io, zmq::socket_t& pub, std::string instance_id, Sink sink)
    : io_(io), pub_(pub), instance_id_(std::move(instance_id)), sink_(std::move(sink)), heartbeat_(io) {}

void Telemetry::publish(const std::string& topic, v1::Event& event) {
  if (stopped_) return;
  make_strings_valid_utf8(event);
  event.set_instance_id(instance_id_);
  event.set_seq(++seq_);
  event.set_wall_ns(wall_ns());
  event.set_mono_ns(mono_ns());
  const std::string body = event.SerializeAsString();
  (void)pub_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)pub_.send(zmq::buffer(body), zmq::send_flags::dontwait);
  if (tap_) tap_(topic, body);
}

void Telemetry::log(const std::string& level, const std::string& text) {
  if (sink_) {
    sink_(level, text);
  } else {
    std::fprintf(stderr, "pnnd: %s: %s\n", level.c_str(), text.c_str());
  }
  if (stopped_) return;
  v1::Event e;
  e.mutable_log()->set_level(level);
  e.mutable_log()->set_text(text);
  publish("log/" + level, e);
}

void Telemetry::log_async(std::string level, std::string text) {
  asio::post(io_, [this, level = std::move(level), text = std::move(text)] { log(level, text); });
}

void Telemetry::start_heartbeat(std::function<std::uint32_t()> interval,
                                std::function<std::string()> digest) {
  interval_ = std::move(interval);
  digest_ = std::move(digest);
  arm_heartbeat();
}

void Telemetry::arm_heartbeat() {
  heartbeat_.expires_after(std::chrono::milliseconds(interval_()));
  heartbeat_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    v1::Event e;
    e.mutable_heartbeat()->set_protocol_major(kProtocolMajor);
    e.mutable_heartbeat()->set_devices_digest(digest_());
    publish("hb", e);
    arm_heartbeat();
  });
}

void Telemetry::stop() {
  stopped_ = true;
  heartbeat_.cancel();
}

}  // namespace pnn::daemon::detail

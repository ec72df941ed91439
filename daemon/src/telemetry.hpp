#pragma once
// Telemetry: the PUB socket's events (state/, job/, log/, hb) with the instance id, a sequence
// number and both clocks, and the daemon's log lines (to a sink, and as log/ events). Event loop
// thread only; log_async() from any thread.
#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
#include <zmq.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "pnn/daemon/protocol.hpp"

namespace pnn::daemon::detail {

class Telemetry {
 public:
  using Sink = std::function<void(const std::string& level, const std::string& text)>;
  /// `sink` receives every log line (empty: stderr, "pnnd: LEVEL: TEXT").
  Telemetry(boost::asio::io_context& io, zmq::socket_t& pub, std::string instance_id, Sink sink);

  /// Never blocks: at the PUB high-water mark the event is dropped (the seq gap shows it).
  void publish(const std::string& topic, v1::Event& event);
  void log(const std::string& level, const std::string& text);
  /// From any thread: the line is logged on the event loop.
  void log_async(std::string level, std::string text);

  /// Heartbeats ("hb") every interval() ms with digest() of the devices, until stop().
  void start_heartbeat(std::function<std::uint32_t()> interval, std::function<std::string()> digest);
  /// No events after this (log lines still reach the sink).
  void stop();

  /// Also hands every published event (topic, serialized v1::Event) to `tap`, on this thread,
  /// e.g. the dashboard's stream. Empty: none.
  void set_tap(std::function<void(const std::string&, const std::string&)> tap) { tap_ = std::move(tap); }

  std::uint64_t seq() const { return seq_; }
  const std::string& instance_id() const { return instance_id_; }

 private:
  void arm_heartbeat();
  boost::asio::io_context& io_;
  zmq::socket_t& pub_;
  std::string instance_id_;
  Sink sink_;
  std::uint64_t seq_ = 0;
  bool stopped_ = false;
  boost::asio::steady_timer heartbeat_;
  std::function<std::uint32_t()> interval_;
  std::function<std::string()> digest_;
  std::function<void(const std::string&, const std::string&)> tap_;
};

}  // namespace pnn::daemon::detail

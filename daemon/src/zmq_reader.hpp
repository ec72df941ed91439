#pragma once
// Integrates a ZeroMQ socket into an Asio io_context without polling: ZMQ_FD is wrapped in a
// posix::stream_descriptor and waited on with async_wait(wait_read). ZMQ_FD is edge-triggered and
// only says "look at ZMQ_EVENTS", so after every wake-up, and after every send on the socket
// (a send may consume the edge), the reader drains while ZMQ_EVENTS has ZMQ_POLLIN.
//
// Thread rule: everything runs on the io_context's thread. The descriptor belongs to libzmq: it
// is release()d, never closed.
#include <utility>  // before Asio: Boost 1.74 Asio with -std=c++20 on GCC 12 needs it
#include <boost/asio.hpp>
#include <zmq.hpp>

#include <functional>
#include <memory>
#include <vector>

namespace pnn::daemon::detail {

class ZmqReader {
 public:
  using Handler = std::function<void(std::vector<zmq::message_t>& frames)>;

  /// `socket` must outlive the reader. `handler` gets every complete multi-part message.
  ZmqReader(boost::asio::io_context& io, zmq::socket_t& socket, Handler handler);
  ~ZmqReader();
  ZmqReader(const ZmqReader&) = delete;
  ZmqReader& operator=(const ZmqReader&) = delete;

  /// Starts waiting (and drains what is already queued).
  void start();
  /// Call after every send on the socket: schedules a drain if input is pending.
  void after_send();
  /// Cancels the wait and releases the descriptor; no handler runs afterwards.
  void stop();

 private:
  void arm();
  void drain();
  bool readable();

  boost::asio::io_context& io_;
  zmq::socket_t& socket_;
  Handler handler_;
  boost::asio::posix::stream_descriptor descriptor_;
  bool waiting_ = false;
  bool drain_posted_ = false;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace pnn::daemon::detail

#include "zmq_reader.hpp"

namespace pnn::daemon::detail {

namespace {
// Messages handled per drain pass before yielding to other handlers (timers, other sockets, work
// results), so one busy client cannot starve the event loop.
constexpr int kBatch = 64;
}  // namespace

ZmqReader::ZmqReader(boost::asio::io_context& io, zmq::socket_t& socket, Handler handler)
    : io_(io),
      socket_(socket),
      handler_(std::move(handler)),
      descriptor_(io, socket.get(zmq::sockopt::fd)) {}

ZmqReader::~ZmqReader() { stop(); }

void ZmqReader::start() {
  stopped_ = false;
  drain();
}

void ZmqReader::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  if (descriptor_.is_open()) {
    boost::system::error_code ignored;
    descriptor_.cancel(ignored);
    (void)descriptor_.release();  // the fd is libzmq's
  }
}

bool ZmqReader::readable() {
  return (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
}

void ZmqReader::arm() {
  if (waiting_ || stopped_) return;
  waiting_ = true;
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this, alive = alive_](const boost::system::error_code& ec) {
                           if (!*alive) return;
                           waiting_ = false;
                           if (ec) return;
                           drain();
                         });
}

void ZmqReader::after_send() {
  if (stopped_ || drain_posted_) return;
  if (!readable()) return;
  drain_posted_ = true;
  boost::asio::post(io_, [this, alive = alive_] {
    if (!*alive) return;
    drain_posted_ = false;
    drain();
  });
}

void ZmqReader::drain() {
  if (stopped_) return;
  for (int n = 0; n < kBatch; ++n) {
    if (!readable()) {
      arm();
      return;
    }
    std::vector<zmq::message_t> frames;
    for (;;) {
      zmq::message_t part;
      if (!socket_.recv(part, zmq::recv_flags::dontwait)) break;
      const bool more = part.more();
      frames.push_back(std::move(part));
      if (!more) break;
    }
    if (!frames.empty()) handler_(frames);
    if (stopped_) return;
  }
  // More may be queued: continue after other ready handlers had their turn.
  if (!drain_posted_) {
    drain_posted_ = true;
    boost::asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      drain_posted_ = false;
      drain();
    });
  }
}

}  // namespace pnn::daemon::detail

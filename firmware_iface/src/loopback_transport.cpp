// In-process loopback transport: the host side calls the device endpoint synchronously and keeps
// the replies in a queue stamped with the time each becomes visible.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "pnn/firmware_iface/transport.hpp"

namespace pnn::firmware_iface {
namespace {

class LoopbackTransport final : public Transport {
 public:
  explicit LoopbackTransport(std::shared_ptr<DeviceEndpoint> endpoint)
      : endpoint_(std::move(endpoint)) {}

  std::error_code open(Deadline) override {
    if (open_) return {};
    const auto now = Clock::now();
    if (!endpoint_->connected(now)) return Errc::kDisconnected;
    queue_.clear();
    offset_ = 0;
    endpoint_->on_open(now);
    open_ = true;
    return {};
  }

  void close() noexcept override {
    open_ = false;
    queue_.clear();
    offset_ = 0;
  }

  bool is_open() const noexcept override { return open_; }

  std::error_code write(std::span<const std::uint8_t> bytes, Deadline) override {
    if (auto ec = check_link()) return ec;
    endpoint_->receive(bytes, Clock::now(), queue_);
    return {};
  }

  Result<std::size_t> read_some(std::span<std::uint8_t> buffer, Deadline deadline) override {
    if (auto ec = check_link()) return ec;
    if (buffer.empty()) return std::size_t{0};
    while (!queue_.empty() && queue_.front().bytes.size() <= offset_) {
      queue_.pop_front();
      offset_ = 0;
    }
    if (queue_.empty()) {
      // Nothing will ever arrive without another write: wait out the deadline like a real link.
      std::this_thread::sleep_until(deadline);
      if (auto ec = check_link()) return ec;
      return Errc::kTimeout;
    }
    const auto ready = queue_.front().ready_at;
    if (ready > deadline) {
      std::this_thread::sleep_until(deadline);
      if (auto ec = check_link()) return ec;
      return Errc::kTimeout;
    }
    if (ready > Clock::now()) std::this_thread::sleep_until(ready);
    if (auto ec = check_link()) return ec;
    const auto& front = queue_.front().bytes;
    const std::size_t n = std::min(buffer.size(), front.size() - offset_);
    std::memcpy(buffer.data(), front.data() + offset_, n);
    offset_ += n;
    if (offset_ == front.size()) {
      queue_.pop_front();
      offset_ = 0;
    }
    return n;
  }

  std::error_code clear(Deadline) override {
    if (auto ec = check_link()) return ec;
    queue_.clear();
    offset_ = 0;
    endpoint_->on_clear();
    return {};
  }

  std::string describe() const override { return "loopback to " + endpoint_->name(); }

 private:
  std::error_code check_link() {
    if (!open_) return Errc::kNotOpen;
    if (!endpoint_->connected(Clock::now())) {
      close();  // like a USB device that vanished: the handle is gone, open() must find it again
      return Errc::kDisconnected;
    }
    return {};
  }

  std::shared_ptr<DeviceEndpoint> endpoint_;
  std::deque<DeviceOutput> queue_;
  std::size_t offset_ = 0;  // bytes of queue_.front() already read
  bool open_ = false;
};

}  // namespace

TransportPtr make_loopback_transport(std::shared_ptr<DeviceEndpoint> endpoint) {
  if (!endpoint) throw std::invalid_argument("make_loopback_transport: null endpoint");
  return std::make_unique<LoopbackTransport>(std::move(endpoint));
}

}  // namespace pnn::firmware_iface

// usb:// — raw bulk IN/OUT endpoints of our lab-built boards, carrying the frame protocol as a
// byte stream. The frames delimit themselves, so the link adds nothing to the bytes.
#include <algorithm>
#include <stdexcept>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "usb_link.hpp"

namespace pnn::firmware_iface {
namespace {

using detail::UsbInterfaceKind;
using detail::UsbLink;

class UsbBulkTransport final : public Transport {
 public:
  explicit UsbBulkTransport(UsbBulkOptions options)
      : options_(std::move(options)),
        link_("usb", options_.match, options_.interface_number, UsbInterfaceKind::kRawBulk,
              options_.timings) {}

  std::error_code open(Deadline deadline) override {
    if (link_.is_open()) return {};
    pending_.clear();
    if (auto ec = link_.open(deadline)) return ec;
    // Whole packets only: a transfer that ends mid-packet would overflow when the device sends
    // a full one.
    const std::size_t packet = link_.interface_info().bulk_in_packet;
    const std::size_t packets = (options_.read_transfer_bytes + packet - 1) / packet;
    rx_.resize(packets * packet);
    return {};
  }

  void close() noexcept override {
    link_.close();
    pending_.clear();
  }

  bool is_open() const noexcept override { return link_.is_open(); }

  std::error_code write(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    if (bytes.empty()) return {};
    // A private copy: libusb takes a mutable buffer even for OUT transfers.
    tx_.assign(bytes.begin(), bytes.end());
    const auto r = link_.bulk(link_.interface_info().bulk_out, tx_, deadline);
    if (r.error) return r.error;
    if (r.actual != tx_.size()) {
      link_.set_error("bulk OUT accepted " + std::to_string(r.actual) + " of " +
                      std::to_string(tx_.size()) + " bytes");
      return Errc::kIo;
    }
    return {};
  }

  Result<std::size_t> read_some(std::span<std::uint8_t> buffer, Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    if (buffer.empty()) return std::size_t{0};
    if (!pending_.empty()) return pending_.take(buffer);
    while (true) {
      const auto r = link_.bulk(link_.interface_info().bulk_in, rx_, deadline);
      // Bytes that arrived before a cancellation are data like any other.
      if (r.actual > 0) {
        return detail::deliver(std::span<const std::uint8_t>(rx_).first(r.actual), buffer,
                               pending_);
      }
      if (r.error) return r.error;
      // A zero-length packet ends an empty transfer: keep waiting for data.
    }
  }

  std::error_code clear(Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    pending_.clear();
    // Drain bulk IN until it has been quiet for clear_quiet: a late reply to a timed-out
    // request must not be taken for the answer to the next one.
    while (true) {
      const auto now = Clock::now();
      if (now >= deadline) return Errc::kTimeout;
      const auto quiet_until = std::min(deadline, now + options_.clear_quiet);
      const auto r = link_.bulk(link_.interface_info().bulk_in, rx_, quiet_until);
      if (r.error == Errc::kTimeout && r.actual == 0) return {};
      if (r.error && r.error != Errc::kTimeout) return r.error;
    }
  }

  std::string describe() const override { return link_.describe(); }

 private:
  UsbBulkOptions options_;
  UsbLink link_;
  std::vector<std::uint8_t> rx_;
  std::vector<std::uint8_t> tx_;
  detail::ByteBuffer pending_;
};

}  // namespace

TransportPtr make_usb_bulk_transport(UsbBulkOptions options) {
  detail::check_common_options(options.match, options.timings, "make_usb_bulk_transport");
  if (options.read_transfer_bytes == 0) {
    throw std::invalid_argument(
        "make_usb_bulk_transport: read_transfer_bytes is 0; give the bulk IN transfer size in "
        "bytes (default 16384)");
  }
  if (options.clear_quiet.count() <= 0) {
    throw std::invalid_argument(
        "make_usb_bulk_transport: clear_quiet must be positive (default 20 ms)");
  }
  return std::make_unique<UsbBulkTransport>(std::move(options));
}

}  // namespace pnn::firmware_iface

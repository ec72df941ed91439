// usbtmc:// — USBTMC / USB488 instruments over libusb (PROTOCOLS.md §c). The codec
// (usbtmc.hpp) builds and parses the bytes; this file sequences them and recovers from timeouts.
#include <algorithm>
#include <stdexcept>
#include <thread>

#include "pnn/firmware_iface/usb_transport.hpp"
#include "pnn/common/hex.hpp"
#include "pnn/firmware_iface/usbtmc.hpp"
#include "usb_link.hpp"

namespace pnn::firmware_iface {
namespace {

using detail::TransferResult;
using detail::UsbInterfaceKind;
using detail::UsbLink;
namespace tmc = usbtmc;

/// Device misbehaviour worked around per vendor (PROTOCOLS.md §c.3).
struct Quirks {
  bool retry_empty_bulk_in = false;  ///< Rigol DS1054Z: empty first Bulk-IN, read again once
};

Quirks quirks_for_vendor(std::uint16_t vid) {
  struct Entry {
    std::uint16_t vid;
    Quirks quirks;
  };
  static constexpr Entry kTable[] = {
      {0x1ab1, {.retry_empty_bulk_in = true}},  // Rigol (sigrok scpi_usbtmc_libusb.c)
  };
  for (const auto& e : kTable) {
    if (e.vid == vid) return e.quirks;
  }
  return {};
}

/// What a timed-out or failed call left behind for the next call to clean up.
enum class Pending { kNone, kAbortIn, kAbortOut, kClear };

class UsbtmcTransport final : public Transport {
 public:
  explicit UsbtmcTransport(UsbtmcOptions options)
      : options_(std::move(options)),
        link_("usbtmc", options_.match, options_.interface_number, UsbInterfaceKind::kUsbtmc,
              options_.timings) {}

  std::error_code open(Deadline deadline) override {
    if (link_.is_open()) return {};
    reset_state();
    if (auto ec = link_.open(deadline)) return ec;
    quirks_ = quirks_for_vendor(link_.vendor_id());
    // REQUEST_DEV_DEP_MSG_IN asks for max_in bytes; the IN transfer holds them plus the header
    // in whole packets, plus one packet when that is an exact fit, so a device that ends with a
    // zero-length packet completes this transfer instead of the next (pyvisa-py, USB 2.0
    // §5.8.3).
    const std::size_t packet = link_.interface_info().bulk_in_packet;
    const std::size_t wanted = tmc::kHeaderSize + options_.max_in_transfer_bytes;
    rx_.resize((wanted + packet - 1) / packet * packet + (wanted % packet == 0 ? packet : 0));
    if (auto ec = clear_sequence(deadline)) {
      link_.set_error("open: " + last_error_or("the INITIATE_CLEAR sequence failed"));
      link_.close();
      return ec;
    }
    if (auto ec = read_capabilities(deadline)) {
      link_.set_error("open: GET_CAPABILITIES: " + last_error_or("failed"));
      link_.close();
      return ec;
    }
    term_char_ =
        options_.term_char && capabilities_.term_char() ? options_.term_char : std::nullopt;
    return {};
  }

  void close() noexcept override {
    link_.close();
    reset_state();
  }

  bool is_open() const noexcept override { return link_.is_open(); }

  std::error_code write(std::span<const std::uint8_t> bytes, Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    if (auto ec = recover(deadline)) return ec;
    if (bytes.empty()) return {};
    const auto transfers = tmc::split_message(bytes, options_.max_out_transfer_bytes, tags_);
    for (const auto& transfer : transfers) {
      tx_.assign(transfer.begin(), transfer.end());
      if (auto ec = send(tx_, transfer[1], deadline)) return ec;
    }
    return {};
  }

  Result<std::size_t> read_some(std::span<std::uint8_t> buffer, Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    if (buffer.empty()) return std::size_t{0};
    if (!surplus_.empty()) return surplus_.take(buffer);
    if (auto ec = recover(deadline)) return ec;
    message_.clear();
    while (true) {
      auto eom = read_transfer(deadline);
      if (!eom) {
        // What arrived before a timeout is still the caller's (the abort is pending).
        if (eom.error() == Errc::kTimeout && !message_.empty()) break;
        return eom.error();
      }
      if (message_.size() >= buffer.size()) break;
      if (*eom && !message_.empty()) break;
      // An empty message (EOM without bytes) or a partial one: ask for more.
    }
    return detail::deliver(message_, buffer, surplus_);
  }

  std::error_code clear(Deadline deadline) override {
    link_.clear_error();
    if (!link_.is_open()) return Errc::kNotOpen;
    surplus_.clear();
    if (pending_ == Pending::kAbortIn || pending_ == Pending::kAbortOut) {
      // Abort the transfer we know about first (the device's own bookkeeping expects it); the
      // clear that follows resets everything else whether or not the abort worked.
      const auto ec = pending_ == Pending::kAbortIn ? abort_bulk_in(pending_tag_, deadline)
                                                    : abort_bulk_out(pending_tag_, deadline);
      if (ec == Errc::kDisconnected) return ec;
    }
    pending_ = Pending::kClear;
    if (auto ec = clear_sequence(deadline)) return ec;
    pending_ = Pending::kNone;
    return {};
  }

  std::string describe() const override { return link_.describe(); }

 private:
  void reset_state() {
    tags_ = tmc::TagGenerator{};
    surplus_.clear();
    pending_ = Pending::kNone;
    capabilities_ = {};
    term_char_.reset();
  }

  std::string last_error_or(const std::string& fallback) const {
    return link_.last_error().empty() ? fallback : link_.last_error();
  }

  std::error_code io_error(std::string detail) {
    link_.set_error(std::move(detail));
    return Errc::kIo;
  }

  // One bulk OUT transfer; on failure records what the next call must clean up.
  std::error_code send(std::span<std::uint8_t> transfer, std::uint8_t tag, Deadline deadline) {
    const TransferResult r = link_.bulk(link_.interface_info().bulk_out, transfer, deadline);
    if (!r.error && r.actual == transfer.size()) return {};
    if (r.error == Errc::kDisconnected) return r.error;
    if (r.error == Errc::kTimeout) {
      pending_ = Pending::kAbortOut;
      pending_tag_ = tag;
      return r.error;
    }
    pending_ = Pending::kClear;
    return r.error ? r.error
                   : io_error("bulk OUT accepted " + std::to_string(r.actual) + " of " +
                              std::to_string(transfer.size()) + " bytes");
  }

  // REQUEST_DEV_DEP_MSG_IN, then one Bulk-IN transfer (plus continuations when the device
  // sends more than one transfer holds). Appends the payload to message_; returns EOM.
  Result<bool> read_transfer(Deadline deadline) {
    const std::uint8_t tag = tags_.next();
    const auto request =
        tmc::encode_request_dev_dep_msg_in(tag, options_.max_in_transfer_bytes, term_char_);
    tx_.assign(request.begin(), request.end());
    if (auto ec = send(tx_, tag, deadline)) return ec;

    TransferResult r = receive(tag, deadline);
    if (r.error) return r.error;
    if (r.actual == 0 && quirks_.retry_empty_bulk_in) {
      r = receive(tag, deadline);
      if (r.error) return r.error;
    }
    const auto in = tmc::parse_bulk_in(std::span<const std::uint8_t>(rx_).first(r.actual), tag);
    if (!in || in->msg_id != tmc::MsgId::kDevDepMsgIn) {
      pending_ = Pending::kAbortIn;
      pending_tag_ = tag;
      const std::string why =
          !in ? in.error().message() : "MsgID " + std::to_string(rx_[0]) + " instead of 2";
      return io_error("bad Bulk-IN header answering bTag " + std::to_string(tag) + " (" +
                      std::to_string(r.actual) + " bytes): " + why);
    }
    const std::uint32_t declared = in->transfer_size;
    message_.insert(message_.end(), in->payload.begin(), in->payload.end());
    std::size_t got = in->payload.size();
    // A full transfer (no short packet) whose header declares more: the rest follows in
    // further Bulk-IN transfers without a header (the kernel's read loop does the same).
    bool full = r.actual == rx_.size();
    while (full && got < declared) {
      const TransferResult more = receive(tag, deadline);
      if (more.error) return more.error;
      const std::size_t take = std::min<std::size_t>(more.actual, declared - got);
      message_.insert(message_.end(), rx_.begin(), rx_.begin() + static_cast<std::ptrdiff_t>(take));
      got += take;
      full = more.actual == rx_.size();
    }
    return in->eom();
  }

  TransferResult receive(std::uint8_t tag, Deadline deadline) {
    TransferResult r = link_.bulk(link_.interface_info().bulk_in, rx_, deadline);
    if (r.error == Errc::kTimeout) {
      pending_ = Pending::kAbortIn;
      pending_tag_ = tag;
    } else if (r.error && r.error != Errc::kDisconnected) {
      pending_ = Pending::kClear;
    }
    return r;
  }

  // Runs whatever a previous call left pending (see usb_transport.hpp).
  std::error_code recover(Deadline deadline) {
    if (pending_ == Pending::kNone) return {};
    std::error_code ec;
    if (pending_ == Pending::kAbortIn) {
      ec = abort_bulk_in(pending_tag_, deadline);
    } else if (pending_ == Pending::kAbortOut) {
      ec = abort_bulk_out(pending_tag_, deadline);
    } else {
      ec = Errc::kIo;  // a clear is due
    }
    if (!ec) {
      pending_ = Pending::kNone;
      return {};
    }
    if (ec == Errc::kDisconnected) return ec;
    pending_ = Pending::kClear;
    if (auto cleared = clear_sequence(deadline)) return cleared;
    pending_ = Pending::kNone;
    return {};
  }

  // A class request with an IN data stage; returns the bytes received.
  Result<std::span<const std::uint8_t>> request(const tmc::ControlSetup& setup, const char* name,
                                                Deadline deadline) {
    const TransferResult r = link_.control_in(setup, control_buf_, deadline);
    if (r.error) {
      if (r.error != Errc::kDisconnected) {
        link_.set_error(std::string(name) + ": " + last_error_or("control transfer failed"));
      }
      return r.error;
    }
    return std::span<const std::uint8_t>(control_buf_).first(r.actual);
  }

  std::error_code status_error(const char* name, tmc::Status status) {
    return io_error(std::string(name) + " answered " + std::string(tmc::to_string(status)) +
                    " (status 0x" + common::hex_byte(static_cast<unsigned>(status)) + ")");
  }

  // Sleeps one poll interval; false once the deadline is reached.
  bool wait_poll(Deadline deadline) {
    const auto until = std::min(deadline, Clock::now() + options_.status_poll_interval);
    std::this_thread::sleep_until(until);
    return Clock::now() < deadline;
  }

  // Reads and discards Bulk-IN until a short packet; nothing queued is not an error.
  std::error_code drain_bulk_in(Deadline deadline) {
    const std::uint8_t ep = link_.interface_info().bulk_in;
    for (int i = 0; i < 100; ++i) {  // the kernel's USBTMC_MAX_READS_TO_CLEAR_BULK_IN
      const auto until = std::min(deadline, Clock::now() + options_.drain_read_timeout);
      const TransferResult r = link_.bulk(ep, rx_, until);
      if (r.error == Errc::kTimeout) return {};
      if (r.error) return r.error;
      if (r.actual < rx_.size()) return {};
    }
    return io_error("bulk IN still delivering after 100 reads while aborting");
  }

  std::error_code abort_bulk_in(std::uint8_t tag, Deadline deadline) {
    const std::uint8_t ep = link_.interface_info().bulk_in;
    auto data = request(tmc::initiate_abort_bulk_in(tag, ep), "INITIATE_ABORT_BULK_IN", deadline);
    if (!data) return data.error();
    auto initiated = tmc::parse_initiate_abort_response(*data);
    if (!initiated) return io_error("INITIATE_ABORT_BULK_IN: short response");
    if (initiated->status != tmc::Status::kSuccess) {
      return status_error("INITIATE_ABORT_BULK_IN", initiated->status);
    }
    if (auto ec = drain_bulk_in(deadline)) return ec;
    for (int poll = 0; poll < options_.max_status_polls; ++poll) {
      data = request(tmc::check_abort_bulk_in_status(ep), "CHECK_ABORT_BULK_IN_STATUS", deadline);
      if (!data) return data.error();
      auto check = tmc::parse_check_abort_bulk_in_status(*data);
      if (!check) return io_error("CHECK_ABORT_BULK_IN_STATUS: short response");
      if (check->status == tmc::Status::kSuccess) return {};
      if (check->status != tmc::Status::kPending) {
        return status_error("CHECK_ABORT_BULK_IN_STATUS", check->status);
      }
      if (check->bulk_in_fifo_bytes) {
        if (auto ec = drain_bulk_in(deadline)) return ec;
      }
      if (!wait_poll(deadline)) return Errc::kTimeout;
    }
    return io_error("CHECK_ABORT_BULK_IN_STATUS still PENDING after " +
                    std::to_string(options_.max_status_polls) + " polls");
  }

  std::error_code abort_bulk_out(std::uint8_t tag, Deadline deadline) {
    const std::uint8_t ep = link_.interface_info().bulk_out;
    auto data = request(tmc::initiate_abort_bulk_out(tag, ep), "INITIATE_ABORT_BULK_OUT", deadline);
    if (!data) return data.error();
    auto initiated = tmc::parse_initiate_abort_response(*data);
    if (!initiated) return io_error("INITIATE_ABORT_BULK_OUT: short response");
    if (initiated->status != tmc::Status::kSuccess) {
      return status_error("INITIATE_ABORT_BULK_OUT", initiated->status);
    }
    for (int poll = 0; poll < options_.max_status_polls; ++poll) {
      data = request(tmc::check_abort_bulk_out_status(ep), "CHECK_ABORT_BULK_OUT_STATUS", deadline);
      if (!data) return data.error();
      auto check = tmc::parse_check_abort_bulk_out_status(*data);
      if (!check) return io_error("CHECK_ABORT_BULK_OUT_STATUS: short response");
      if (check->status == tmc::Status::kSuccess) return link_.clear_halt(ep);
      if (check->status != tmc::Status::kPending) {
        return status_error("CHECK_ABORT_BULK_OUT_STATUS", check->status);
      }
      if (!wait_poll(deadline)) return Errc::kTimeout;
    }
    return io_error("CHECK_ABORT_BULK_OUT_STATUS still PENDING after " +
                    std::to_string(options_.max_status_polls) + " polls");
  }

  // INITIATE_CLEAR → CHECK_CLEAR_STATUS until not PENDING → CLEAR_FEATURE(HALT) bulk OUT.
  std::error_code clear_sequence(Deadline deadline) {
    const std::uint8_t number = link_.interface_info().number;
    auto data = request(tmc::initiate_clear(number), "INITIATE_CLEAR", deadline);
    if (!data) return data.error();
    auto initiated = tmc::parse_initiate_clear_response(*data);
    if (!initiated) return io_error("INITIATE_CLEAR: empty response");
    if (initiated->status != tmc::Status::kSuccess) {
      return status_error("INITIATE_CLEAR", initiated->status);
    }
    for (int poll = 0; poll < options_.max_status_polls; ++poll) {
      data = request(tmc::check_clear_status(number), "CHECK_CLEAR_STATUS", deadline);
      if (!data) return data.error();
      auto check = tmc::parse_check_clear_status(*data);
      if (!check) return io_error("CHECK_CLEAR_STATUS: short response");
      if (check->status == tmc::Status::kSuccess) {
        surplus_.clear();
        return link_.clear_halt(link_.interface_info().bulk_out);
      }
      if (check->status != tmc::Status::kPending) {
        return status_error("CHECK_CLEAR_STATUS", check->status);
      }
      if (check->bulk_in_fifo_bytes) {
        if (auto ec = drain_bulk_in(deadline)) return ec;
      }
      if (!wait_poll(deadline)) return Errc::kTimeout;
    }
    return io_error("CHECK_CLEAR_STATUS still PENDING after " +
                    std::to_string(options_.max_status_polls) + " polls");
  }

  // GET_CAPABILITIES. A device that refuses it (stall, FAILED) is treated as advertising
  // nothing, as python-usbtmc does; only link faults are errors.
  std::error_code read_capabilities(Deadline deadline) {
    capabilities_ = {};
    const TransferResult r = link_.control_in(tmc::get_capabilities(link_.interface_info().number),
                                              control_buf_, deadline);
    if (r.error == Errc::kTimeout || r.error == Errc::kDisconnected) return r.error;
    link_.clear_error();
    if (r.error) return {};
    auto caps =
        tmc::parse_capabilities(std::span<const std::uint8_t>(control_buf_).first(r.actual));
    if (caps && caps->status == tmc::Status::kSuccess) capabilities_ = *caps;
    return {};
  }

  UsbtmcOptions options_;
  UsbLink link_;
  Quirks quirks_;
  tmc::TagGenerator tags_;
  tmc::Capabilities capabilities_;
  std::optional<std::uint8_t> term_char_;
  Pending pending_ = Pending::kNone;
  std::uint8_t pending_tag_ = 0;
  std::vector<std::uint8_t> rx_;
  std::vector<std::uint8_t> tx_;
  std::vector<std::uint8_t> message_;
  std::array<std::uint8_t, 0x18> control_buf_{};
  detail::ByteBuffer surplus_;
};

}  // namespace

TransportPtr make_usbtmc_transport(UsbtmcOptions options) {
  const char* f = "make_usbtmc_transport";
  detail::check_common_options(options.match, options.timings, f);
  if (options.max_out_transfer_bytes < tmc::kHeaderSize + 4) {
    throw std::invalid_argument(std::string(f) + ": max_out_transfer_bytes is " +
                                std::to_string(options.max_out_transfer_bytes) +
                                "; it must be at least 16 (12-byte header + 4 payload bytes)");
  }
  if (options.max_in_transfer_bytes == 0 || options.max_in_transfer_bytes > (1u << 24)) {
    throw std::invalid_argument(std::string(f) + ": max_in_transfer_bytes is " +
                                std::to_string(options.max_in_transfer_bytes) +
                                "; give 1 .. 16777216 bytes (default 65536)");
  }
  if (options.max_status_polls < 1) {
    throw std::invalid_argument(std::string(f) + ": max_status_polls must be at least 1");
  }
  if (options.status_poll_interval.count() < 0 || options.drain_read_timeout.count() <= 0) {
    throw std::invalid_argument(std::string(f) +
                                ": status_poll_interval must be >= 0 and drain_read_timeout > 0");
  }
  return std::make_unique<UsbtmcTransport>(std::move(options));
}

}  // namespace pnn::firmware_iface

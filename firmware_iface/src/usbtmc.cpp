#include "pnn/firmware_iface/usbtmc.hpp"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "pnn/common/bytes.hpp"

namespace pnn::firmware_iface::usbtmc {
namespace {

using common::load_le;
using common::store_le;

Header make_header(MsgId id, std::uint8_t tag, std::uint32_t transfer_size, std::uint8_t attributes,
                   std::uint8_t term_char) noexcept {
  Header h{};
  h[0] = static_cast<std::uint8_t>(id);
  h[1] = tag;
  h[2] = static_cast<std::uint8_t>(~tag);
  h[3] = 0;
  store_le<std::uint32_t>(h.data() + 4, transfer_size);
  h[8] = attributes;
  h[9] = term_char;
  h[10] = h[11] = 0;
  return h;
}

void append_in_out(std::vector<std::uint8_t>& out, const Header& header,
                   std::span<const std::uint8_t> payload, std::size_t padded_size) {
  const std::size_t at = out.size();
  out.resize(at + padded_size, 0);
  std::copy(header.begin(), header.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
  std::copy(payload.begin(), payload.end(),
            out.begin() + static_cast<std::ptrdiff_t>(at + kHeaderSize));
}

std::uint32_t checked_size(std::size_t n) {
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("USBTMC transfer payload exceeds 2^32 - 1 bytes");
  }
  return static_cast<std::uint32_t>(n);
}

constexpr ControlSetup endpoint_request(Request r, std::uint16_t value, std::uint8_t endpoint,
                                        std::uint16_t length) noexcept {
  return {kRequestTypeEndpoint, static_cast<std::uint8_t>(r), value, endpoint, length};
}
constexpr ControlSetup interface_request(Request r, std::uint8_t interface_number,
                                         std::uint16_t length) noexcept {
  return {kRequestTypeInterface, static_cast<std::uint8_t>(r), 0, interface_number, length};
}

}  // namespace

Header encode_dev_dep_msg_out_header(std::uint8_t tag, std::uint32_t transfer_size,
                                     bool eom) noexcept {
  return make_header(MsgId::kDevDepMsgOut, tag, transfer_size, eom ? kAttrEom : 0, 0);
}

void encode_dev_dep_msg_out(std::uint8_t tag, std::span<const std::uint8_t> payload, bool eom,
                            std::vector<std::uint8_t>& out) {
  if (payload.empty()) throw std::invalid_argument("DEV_DEP_MSG_OUT needs at least one byte");
  if (tag == 0) throw std::invalid_argument("USBTMC bTag 0 is reserved");
  const std::uint32_t size = checked_size(payload.size());
  const std::size_t padded = (kHeaderSize + payload.size() + 3) & ~std::size_t{3};
  append_in_out(out, encode_dev_dep_msg_out_header(tag, size, eom), payload, padded);
}

Header encode_request_dev_dep_msg_in(std::uint8_t tag, std::uint32_t max_transfer_size,
                                     std::optional<std::uint8_t> term_char) noexcept {
  return make_header(MsgId::kRequestDevDepMsgIn, tag, max_transfer_size,
                     term_char ? kAttrTermCharEnabled : 0, term_char.value_or(0));
}

Header encode_trigger(std::uint8_t tag) noexcept {
  return make_header(MsgId::kTrigger, tag, 0, 0, 0);
}

std::vector<std::vector<std::uint8_t>> split_message(std::span<const std::uint8_t> message,
                                                     std::size_t max_transfer_bytes,
                                                     TagGenerator& tags) {
  if (max_transfer_bytes < kHeaderSize + 4) {
    throw std::invalid_argument("split_message: max_transfer_bytes must be at least 16, got " +
                                std::to_string(max_transfer_bytes));
  }
  const std::size_t chunk = (max_transfer_bytes - kHeaderSize) & ~std::size_t{3};
  std::vector<std::vector<std::uint8_t>> transfers;
  transfers.reserve((message.size() + chunk - 1) / chunk);
  for (std::size_t at = 0; at < message.size(); at += chunk) {
    const std::size_t n = std::min(chunk, message.size() - at);
    auto& t = transfers.emplace_back();
    encode_dev_dep_msg_out(tags.next(), message.subspan(at, n), at + n == message.size(), t);
  }
  return transfers;
}

Result<BulkOutHeader> decode_bulk_out_header(std::span<const std::uint8_t> transfer) noexcept {
  if (transfer.size() < kHeaderSize) return Errc::kTruncated;
  const std::uint8_t id = transfer[0];
  if (id != 1 && id != 2 && id != 126 && id != 127 && id != 128) return Errc::kBadMsgId;
  if (transfer[1] == 0 || static_cast<std::uint8_t>(~transfer[1]) != transfer[2]) {
    return Errc::kBadTag;
  }
  return BulkOutHeader{.msg_id = static_cast<MsgId>(id),
                       .tag = transfer[1],
                       .transfer_size = load_le<std::uint32_t>(transfer.data() + 4),
                       .attributes = transfer[8],
                       .term_char = transfer[9]};
}

Result<BulkIn> parse_bulk_in(std::span<const std::uint8_t> transfer,
                             std::uint8_t expected_tag) noexcept {
  if (transfer.size() < kHeaderSize) return Errc::kTruncated;
  const std::uint8_t id = transfer[0];
  if (id != static_cast<std::uint8_t>(MsgId::kDevDepMsgIn) &&
      id != static_cast<std::uint8_t>(MsgId::kVendorSpecificIn)) {
    return Errc::kBadMsgId;
  }
  if (static_cast<std::uint8_t>(~transfer[1]) != transfer[2] || transfer[1] != expected_tag) {
    return Errc::kBadTag;
  }
  BulkIn in;
  in.msg_id = static_cast<MsgId>(id);
  in.tag = transfer[1];
  in.transfer_size = load_le<std::uint32_t>(transfer.data() + 4);
  in.attributes = transfer[8];
  const std::size_t present = transfer.size() - kHeaderSize;
  // Trust min(TransferSize, actual − 12): the kernel's "Device lies about message size" clamp.
  const std::size_t n = std::min<std::size_t>(in.transfer_size, present);
  in.size_clamped = in.transfer_size > present;
  in.payload = transfer.subspan(kHeaderSize, n);
  return in;
}

void encode_dev_dep_msg_in(std::uint8_t tag, std::span<const std::uint8_t> payload, bool eom,
                           std::vector<std::uint8_t>& out, bool term_char_seen) {
  const std::uint8_t attributes =
      static_cast<std::uint8_t>((eom ? kAttrEom : 0) | (term_char_seen ? kAttrTermCharSeen : 0));
  const Header h =
      make_header(MsgId::kDevDepMsgIn, tag, checked_size(payload.size()), attributes, 0);
  append_in_out(out, h, payload, kHeaderSize + payload.size());
}

ControlSetup initiate_abort_bulk_out(std::uint8_t tag, std::uint8_t bulk_out_endpoint) noexcept {
  return endpoint_request(Request::kInitiateAbortBulkOut, tag, bulk_out_endpoint, 2);
}
ControlSetup check_abort_bulk_out_status(std::uint8_t bulk_out_endpoint) noexcept {
  return endpoint_request(Request::kCheckAbortBulkOutStatus, 0, bulk_out_endpoint, 8);
}
ControlSetup initiate_abort_bulk_in(std::uint8_t tag, std::uint8_t bulk_in_endpoint) noexcept {
  return endpoint_request(Request::kInitiateAbortBulkIn, tag, bulk_in_endpoint, 2);
}
ControlSetup check_abort_bulk_in_status(std::uint8_t bulk_in_endpoint) noexcept {
  return endpoint_request(Request::kCheckAbortBulkInStatus, 0, bulk_in_endpoint, 8);
}
ControlSetup initiate_clear(std::uint8_t interface_number) noexcept {
  return interface_request(Request::kInitiateClear, interface_number, 1);
}
ControlSetup check_clear_status(std::uint8_t interface_number) noexcept {
  return interface_request(Request::kCheckClearStatus, interface_number, 2);
}
ControlSetup get_capabilities(std::uint8_t interface_number) noexcept {
  return interface_request(Request::kGetCapabilities, interface_number, 0x18);
}
ControlSetup indicator_pulse(std::uint8_t interface_number) noexcept {
  return interface_request(Request::kIndicatorPulse, interface_number, 1);
}

std::string_view to_string(Status status) noexcept {
  switch (status) {
    case Status::kSuccess:
      return "SUCCESS";
    case Status::kPending:
      return "PENDING";
    case Status::kInterruptInBusy:
      return "INTERRUPT_IN_BUSY";
    case Status::kFailed:
      return "FAILED";
    case Status::kTransferNotInProgress:
      return "TRANSFER_NOT_IN_PROGRESS";
    case Status::kSplitNotInProgress:
      return "SPLIT_NOT_IN_PROGRESS";
    case Status::kSplitInProgress:
      return "SPLIT_IN_PROGRESS";
  }
  return "UNKNOWN";
}

Result<InitiateAbortResponse> parse_initiate_abort_response(
    std::span<const std::uint8_t> data) noexcept {
  if (data.size() < 2) return Errc::kTruncated;
  return InitiateAbortResponse{static_cast<Status>(data[0]), data[1]};
}

Result<CheckAbortBulkOutResponse> parse_check_abort_bulk_out_status(
    std::span<const std::uint8_t> data) noexcept {
  if (data.size() < 8) return Errc::kTruncated;
  return CheckAbortBulkOutResponse{static_cast<Status>(data[0]),
                                   load_le<std::uint32_t>(data.data() + 4)};
}

Result<CheckAbortBulkInResponse> parse_check_abort_bulk_in_status(
    std::span<const std::uint8_t> data) noexcept {
  if (data.size() < 8) return Errc::kTruncated;
  return CheckAbortBulkInResponse{static_cast<Status>(data[0]), (data[1] & 0x01) != 0,
                                  load_le<std::uint32_t>(data.data() + 4)};
}

Result<ClearResponse> parse_initiate_clear_response(std::span<const std::uint8_t> data) noexcept {
  if (data.empty()) return Errc::kTruncated;
  return ClearResponse{static_cast<Status>(data[0]), false};
}

Result<ClearResponse> parse_check_clear_status(std::span<const std::uint8_t> data) noexcept {
  if (data.size() < 2) return Errc::kTruncated;
  return ClearResponse{static_cast<Status>(data[0]), (data[1] & 0x01) != 0};
}

Result<Capabilities> parse_capabilities(std::span<const std::uint8_t> data) noexcept {
  if (data.size() < 16) return Errc::kTruncated;
  Capabilities c;
  c.status = static_cast<Status>(data[0]);
  c.bcd_usbtmc = load_le<std::uint16_t>(data.data() + 2);
  c.interface_caps = data[4];
  c.device_caps = data[5];
  c.bcd_usb488 = load_le<std::uint16_t>(data.data() + 12);
  c.usb488_interface_caps = data[14];
  c.usb488_device_caps = data[15];
  return c;
}

}  // namespace pnn::firmware_iface::usbtmc

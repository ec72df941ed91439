#pragma once
/// USBTMC / USB488 wire codec (USBTMC 1.0, USB488 1.0; facts in PROTOCOLS.md §c.2–c.4). Pure:
/// builds and parses bytes and control-request descriptors; the libusb transport does the I/O.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "pnn/firmware_iface/error.hpp"

namespace pnn::firmware_iface::usbtmc {

/// Size of every Bulk-OUT and Bulk-IN header.
inline constexpr std::size_t kHeaderSize = 12;

/// MsgID, byte 0 of a bulk header. DEV_DEP_MSG_IN shares 2 with its request, VENDOR_SPECIFIC_IN
/// 127 with its request, as in the specification.
enum class MsgId : std::uint8_t {
  kDevDepMsgOut = 1,
  kRequestDevDepMsgIn = 2,
  kDevDepMsgIn = 2,
  kVendorSpecificOut = 126,
  kRequestVendorSpecificIn = 127,
  kVendorSpecificIn = 127,
  kTrigger = 128,  ///< USB488
};

/// bmTransferAttributes bits.
inline constexpr std::uint8_t kAttrEom = 0x01;              ///< MSG_OUT / MSG_IN: last transfer
inline constexpr std::uint8_t kAttrTermCharEnabled = 0x02;  ///< REQUEST_DEV_DEP_MSG_IN
inline constexpr std::uint8_t kAttrTermCharSeen = 0x02;     ///< DEV_DEP_MSG_IN: ended at TermChar

/// bTag sequence for Bulk-OUT headers: 1, 2, …, 255, 1, … (0 is never used: kernel, sigrok
/// and python-usbtmc all skip it). Not thread-safe; one per device.
class TagGenerator {
 public:
  /// `last` is the tag used before; the first next() returns last + 1 (skipping 0).
  explicit TagGenerator(std::uint8_t last = 0) noexcept : last_(last) {}
  std::uint8_t next() noexcept {
    last_ = static_cast<std::uint8_t>(last_ == 255 ? 1 : last_ + 1);
    return last_;
  }
  std::uint8_t last() const noexcept { return last_; }

 private:
  std::uint8_t last_;
};

/// A decoded Bulk-OUT header (what the device side sees).
struct BulkOutHeader {
  MsgId msg_id = MsgId::kDevDepMsgOut;
  std::uint8_t tag = 0;
  std::uint32_t transfer_size = 0;
  std::uint8_t attributes = 0;
  std::uint8_t term_char = 0;
  bool eom() const noexcept { return attributes & kAttrEom; }
  bool operator==(const BulkOutHeader&) const = default;
};

using Header = std::array<std::uint8_t, kHeaderSize>;

/// DEV_DEP_MSG_OUT header for `transfer_size` payload bytes in this transfer.
Header encode_dev_dep_msg_out_header(std::uint8_t tag, std::uint32_t transfer_size,
                                     bool eom) noexcept;

/// Appends one whole DEV_DEP_MSG_OUT transfer to `out`: header, `payload`, then zero bytes up to
/// a multiple of 4 (kernel `roundup(12 + n, 4)`). Throws std::invalid_argument for an empty
/// payload (TransferSize must be > 0) or tag 0, std::length_error past 2^32 − 1 bytes.
void encode_dev_dep_msg_out(std::uint8_t tag, std::span<const std::uint8_t> payload, bool eom,
                            std::vector<std::uint8_t>& out);

/// REQUEST_DEV_DEP_MSG_IN: ask for at most `max_transfer_size` bytes; with `term_char` the device
/// may end the transfer at that character (only if GET_CAPABILITIES advertised TermChar).
Header encode_request_dev_dep_msg_in(std::uint8_t tag, std::uint32_t max_transfer_size,
                                     std::optional<std::uint8_t> term_char = std::nullopt) noexcept;

/// USB488 TRIGGER: MsgID 128, bytes 4..11 zero.
Header encode_trigger(std::uint8_t tag) noexcept;

/// Splits `message` into DEV_DEP_MSG_OUT transfers of at most `max_transfer_bytes` each
/// (header, payload and padding included), tags from `tags`, EOM set on the last only.
/// The payload per transfer is (max_transfer_bytes − 12) rounded down to a multiple of 4, so
/// padding never pushes a transfer past the maximum. An empty message gives no transfers.
/// Throws std::invalid_argument if max_transfer_bytes < 16.
std::vector<std::vector<std::uint8_t>> split_message(std::span<const std::uint8_t> message,
                                                     std::size_t max_transfer_bytes,
                                                     TagGenerator& tags);

/// Decodes a Bulk-OUT header (device side, e.g. a simulated instrument). Checks bTagInverse
/// and that MsgID is one of the OUT ids. Errors: kTruncated, kBadTag (bTagInverse or tag 0),
/// kBadMsgId. Does not require the padding to be present.
Result<BulkOutHeader> decode_bulk_out_header(std::span<const std::uint8_t> transfer) noexcept;

/// A parsed Bulk-IN transfer.
struct BulkIn {
  MsgId msg_id = MsgId::kDevDepMsgIn;
  std::uint8_t tag = 0;
  std::uint32_t transfer_size = 0;  ///< as declared by the device
  std::uint8_t attributes = 0;
  std::span<const std::uint8_t> payload;  ///< min(TransferSize, bytes present after header)
  /// True if TransferSize exceeded the bytes present ("device lies about message size"); the
  /// payload was clamped. Trailing alignment bytes beyond TransferSize are never payload.
  bool size_clamped = false;
  bool eom() const noexcept { return attributes & kAttrEom; }
  bool term_char_seen() const noexcept { return attributes & kAttrTermCharSeen; }
};

/// Parses the first packet(s) of a Bulk-IN transfer answering a request with bTag
/// `expected_tag`. The payload views `transfer`. Errors: kTruncated (< 12 bytes), kBadMsgId
/// (not DEV_DEP_MSG_IN or VENDOR_SPECIFIC_IN), kBadTag (bTagInverse wrong or bTag ≠ expected).
Result<BulkIn> parse_bulk_in(std::span<const std::uint8_t> transfer,
                             std::uint8_t expected_tag) noexcept;

/// Appends a device-side DEV_DEP_MSG_IN transfer (header + payload, no padding required) to
/// `out`, for simulated instruments. Throws std::length_error past 2^32 − 1 bytes.
void encode_dev_dep_msg_in(std::uint8_t tag, std::span<const std::uint8_t> payload, bool eom,
                           std::vector<std::uint8_t>& out, bool term_char_seen = false);

// --- class control requests (§c.4) -------------------------------------------------------------

/// bmRequestType of USBTMC class requests: IN | Class | Interface, and IN | Class | Endpoint.
inline constexpr std::uint8_t kRequestTypeInterface = 0xA1;
inline constexpr std::uint8_t kRequestTypeEndpoint = 0xA2;

enum class Request : std::uint8_t {
  kInitiateAbortBulkOut = 1,
  kCheckAbortBulkOutStatus = 2,
  kInitiateAbortBulkIn = 3,
  kCheckAbortBulkInStatus = 4,
  kInitiateClear = 5,
  kCheckClearStatus = 6,
  kGetCapabilities = 7,
  kIndicatorPulse = 64,
};

/// The setup packet of a control transfer, ready for libusb_control_transfer.
struct ControlSetup {
  std::uint8_t request_type = 0;  ///< bmRequestType
  std::uint8_t request = 0;       ///< bRequest
  std::uint16_t value = 0;        ///< wValue
  std::uint16_t index = 0;        ///< wIndex (endpoint address or interface number)
  std::uint16_t length = 0;       ///< wLength: bytes of the IN data stage
  bool operator==(const ControlSetup&) const = default;
};

/// Endpoint requests take the endpoint *address* (e.g. 0x02 OUT, 0x81 IN, read from the
/// descriptors); interface requests the bInterfaceNumber.
ControlSetup initiate_abort_bulk_out(std::uint8_t tag, std::uint8_t bulk_out_endpoint) noexcept;
ControlSetup check_abort_bulk_out_status(std::uint8_t bulk_out_endpoint) noexcept;
ControlSetup initiate_abort_bulk_in(std::uint8_t tag, std::uint8_t bulk_in_endpoint) noexcept;
ControlSetup check_abort_bulk_in_status(std::uint8_t bulk_in_endpoint) noexcept;
ControlSetup initiate_clear(std::uint8_t interface_number) noexcept;
ControlSetup check_clear_status(std::uint8_t interface_number) noexcept;
ControlSetup get_capabilities(std::uint8_t interface_number) noexcept;
ControlSetup indicator_pulse(std::uint8_t interface_number) noexcept;

/// USBTMC_status byte of every class-request response.
enum class Status : std::uint8_t {
  kSuccess = 0x01,
  kPending = 0x02,
  kInterruptInBusy = 0x20,  ///< USB488
  kFailed = 0x80,
  kTransferNotInProgress = 0x81,
  kSplitNotInProgress = 0x82,
  kSplitInProgress = 0x83,
};
/// "SUCCESS", "PENDING", …; "UNKNOWN" for other values (kept as read, never rejected).
std::string_view to_string(Status status) noexcept;

/// INITIATE_ABORT_BULK_OUT/IN response: [0] status, [1] bTag being aborted.
struct InitiateAbortResponse {
  Status status = Status::kFailed;
  std::uint8_t tag = 0;
};
/// CHECK_ABORT_BULK_OUT_STATUS: [0] status, [4..7] NBYTES_RXD.
struct CheckAbortBulkOutResponse {
  Status status = Status::kFailed;
  std::uint32_t bytes_received = 0;
};
/// CHECK_ABORT_BULK_IN_STATUS: [0] status, [1] bit0 more data queued (read Bulk-IN until a
/// short packet), [4..7] NBYTES_TXD.
struct CheckAbortBulkInResponse {
  Status status = Status::kFailed;
  bool bulk_in_fifo_bytes = false;
  std::uint32_t bytes_transmitted = 0;
};
/// INITIATE_CLEAR: [0] status. CHECK_CLEAR_STATUS: [0] status, [1] bit0 read and discard
/// Bulk-IN.
struct ClearResponse {
  Status status = Status::kFailed;
  bool bulk_in_fifo_bytes = false;
};
/// GET_CAPABILITIES (24 bytes), byte layout of the Linux kernel's get_capabilities().
struct Capabilities {
  Status status = Status::kFailed;
  std::uint16_t bcd_usbtmc = 0;            ///< [2..3], e.g. 0x0100
  std::uint8_t interface_caps = 0;         ///< [4]
  std::uint8_t device_caps = 0;            ///< [5]
  std::uint16_t bcd_usb488 = 0;            ///< [12..13], 0 for a plain USBTMC device
  std::uint8_t usb488_interface_caps = 0;  ///< [14]
  std::uint8_t usb488_device_caps = 0;     ///< [15]
  bool indicator_pulse() const noexcept { return interface_caps & 0x04; }
  bool talk_only() const noexcept { return interface_caps & 0x02; }
  bool listen_only() const noexcept { return interface_caps & 0x01; }
  bool term_char() const noexcept { return device_caps & 0x01; }
  bool usb488_2() const noexcept { return usb488_interface_caps & 0x04; }  ///< 488.2 interface
  bool ren_control() const noexcept { return usb488_interface_caps & 0x02; }
  bool trigger() const noexcept { return usb488_interface_caps & 0x01; }
  bool scpi() const noexcept { return usb488_device_caps & 0x08; }
  bool sr1() const noexcept { return usb488_device_caps & 0x04; }
  bool rl1() const noexcept { return usb488_device_caps & 0x02; }
  bool dt1() const noexcept { return usb488_device_caps & 0x01; }
};

/// Response parsers. Each needs the bytes up to the last field it reads (2, 8, 8, 1, 2 and 16)
/// and ignores any beyond; fewer is kTruncated. Status values are returned, not judged: the
/// caller decides what PENDING or FAILED means in its sequence.
Result<InitiateAbortResponse> parse_initiate_abort_response(
    std::span<const std::uint8_t> data) noexcept;
Result<CheckAbortBulkOutResponse> parse_check_abort_bulk_out_status(
    std::span<const std::uint8_t> data) noexcept;
Result<CheckAbortBulkInResponse> parse_check_abort_bulk_in_status(
    std::span<const std::uint8_t> data) noexcept;
Result<ClearResponse> parse_initiate_clear_response(std::span<const std::uint8_t> data) noexcept;
Result<ClearResponse> parse_check_clear_status(std::span<const std::uint8_t> data) noexcept;
Result<Capabilities> parse_capabilities(std::span<const std::uint8_t> data) noexcept;

}  // namespace pnn::firmware_iface::usbtmc

#pragma once
// The two emulated instruments of the USB transport tests:
//  - `BulkBoard`: one of our lab-built boards. Bulk OUT bytes go to a `DeviceEndpoint` (the
//    same interface a simulated instrument's firmware implements); its replies feed bulk IN.
//  - `UsbtmcInstrument`: a USBTMC/USB488 SCPI instrument that answers `*IDN?` and `DATA? n`,
//    implements the class requests (abort, clear, capabilities) and can misbehave on request.
#include <memory>
#include <optional>
#include <string>

#include "mock_usb.hpp"
#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::test_usb {

/// A board with a decoy interface 0 (interrupt IN only) and the bulk pair on interface 1:
/// OUT 0x03, IN 0x85, wMaxPacketSize `packet` (64: full speed, so replies span packets).
MockDeviceSpec bulk_board_spec(std::uint16_t vid, std::uint16_t pid, std::string serial,
                               std::uint16_t packet = 64);

class BulkBoard final : public MockUsbDevice {
 public:
  static constexpr std::uint8_t kOut = 0x03;
  static constexpr std::uint8_t kIn = 0x85;
  BulkBoard(MockDeviceSpec spec, std::shared_ptr<firmware_iface::DeviceEndpoint> endpoint);

  /// Bulk OUT: NAK every transfer (the host's write times out), or stall it.
  void set_nak_out(bool on);
  void set_stall_out(bool on);
  /// Queues bytes on bulk IN as if the firmware had sent them unasked.
  void inject_in(std::vector<std::uint8_t> bytes);

 protected:
  OutResult on_bulk_out(std::uint8_t endpoint, std::span<const std::uint8_t> data) override;

 private:
  std::shared_ptr<firmware_iface::DeviceEndpoint> endpoint_;
  bool nak_out_ = false;
  bool stall_out_ = false;
};

/// Firmware of a frame-protocol board, reduced to what the transport tests need: every frame
/// received is answered by a frame with the same sequence number — kIdentify by kIdentifyReply
/// carrying the board name, kReadOutputs by kOutputsReply with `reply_bytes` payload bytes
/// (i & 0xFF), anything else by kAck. Replies are ready `latency` after the command.
class FrameResponder final : public firmware_iface::DeviceEndpoint {
 public:
  explicit FrameResponder(std::string name, std::size_t reply_bytes = 300,
                          std::chrono::milliseconds latency = std::chrono::milliseconds{0});
  void receive(std::span<const std::uint8_t> bytes, firmware_iface::Clock::time_point now,
               std::deque<firmware_iface::DeviceOutput>& out) override;
  void on_clear() override;
  std::string name() const override { return name_; }
  /// Frames received so far (read on the test thread after the host call returned; the model
  /// calls receive() with its mutex held).
  std::size_t frames_received() const;

 private:
  std::string name_;
  std::size_t reply_bytes_;
  std::chrono::milliseconds latency_;
  firmware_iface::FrameDecoder decoder_;
  mutable std::mutex mutex_;
  std::size_t frames_ = 0;
};

/// A USB488 instrument on interface 0: bulk OUT 0x02, bulk IN 0x81 (wMaxPacketSize 512),
/// interrupt IN 0x83.
MockDeviceSpec usbtmc_spec(std::uint16_t vid, std::uint16_t pid, std::string serial);

/// Ways to misbehave; each is one-shot unless said otherwise.
enum class TmcCorruption { kNone, kTagInverse, kWrongTag, kWrongMsgId, kShort };
struct TmcBehaviour {
  std::string idn = "PNN-TEST,MOCK-TMC,SN0001,1.0";
  bool silent = false;               ///< never answer queries (persistent)
  bool nak_out = false;              ///< NAK bulk OUT until an abort or clear (persistent)
  bool term_char_capable = false;    ///< GET_CAPABILITIES advertises TermChar
  std::size_t max_per_transfer = 0;  ///< >0: split replies into transfers this big
  bool ignore_max_size = false;      ///< send the whole reply whatever TransferSize was asked
  std::uint32_t declare_extra = 0;   ///< header TransferSize claims this many more bytes
  TmcCorruption corrupt_next = TmcCorruption::kNone;
  bool empty_first_in = false;  ///< next reply starts with an empty Bulk-IN transfer
  int abort_pending_polls = 0;  ///< CHECK_ABORT_*_STATUS answers PENDING this often
  bool abort_fails = false;     ///< INITIATE_ABORT_BULK_IN/OUT answer FAILED (persistent)
  int clear_pending_polls = 0;  ///< CHECK_CLEAR_STATUS answers PENDING this often
};

class UsbtmcInstrument final : public MockUsbDevice {
 public:
  static constexpr std::uint8_t kOut = 0x02;
  static constexpr std::uint8_t kIn = 0x81;

  using Corruption = TmcCorruption;
  using Behaviour = TmcBehaviour;

  explicit UsbtmcInstrument(MockDeviceSpec spec, Behaviour behaviour = {});

  /// Changes the behaviour (thread-safe).
  void configure(const Behaviour& behaviour);
  /// Messages received (EOM-complete), as text.
  std::vector<std::string> messages() const;
  /// bTags of every Bulk-OUT header received, in order.
  std::vector<std::uint8_t> tags() const;
  /// Number of REQUEST_DEV_DEP_MSG_IN received.
  std::size_t requests_in() const;

 protected:
  OutResult on_bulk_out(std::uint8_t endpoint, std::span<const std::uint8_t> data) override;
  std::optional<std::vector<std::uint8_t>> on_control(const Setup& setup,
                                                      std::span<const std::uint8_t> out) override;

 private:
  struct Request {
    std::uint8_t tag;
    std::uint32_t max;
  };
  void handle_message(const std::string& message);
  void answer();
  void reset_io();

  Behaviour b_;
  std::string input_;
  std::deque<std::string> responses_;
  std::size_t response_offset_ = 0;
  std::optional<Request> request_;
  std::uint8_t last_answered_tag_ = 0;
  std::vector<std::string> messages_;
  std::vector<std::uint8_t> tags_;
  std::size_t requests_in_ = 0;
  int abort_polls_left_ = 0;
  int clear_polls_left_ = 0;
  std::uint32_t bytes_out_in_transfer_ = 0;
};

}  // namespace pnn::test_usb

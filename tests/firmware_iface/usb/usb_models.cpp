#include "usb_models.hpp"

#include <algorithm>

#include "pnn/firmware_iface/usbtmc.hpp"

namespace pnn::test_usb {

namespace fi = pnn::firmware_iface;
namespace tmc = pnn::firmware_iface::usbtmc;

MockDeviceSpec bulk_board_spec(std::uint16_t vid, std::uint16_t pid, std::string serial,
                               std::uint16_t packet) {
  MockDeviceSpec spec;
  spec.vid = vid;
  spec.pid = pid;
  spec.product = "pnn bulk board";
  spec.serial = std::move(serial);
  spec.speed_mbps = packet <= 64 ? 12 : 480;
  spec.interfaces = {
      {.number = 0, .interface_class = 0xFF, .endpoints = {{0x81, 3, 8}}},
      {.number = 1,
       .interface_class = 0xFF,
       .endpoints = {{BulkBoard::kOut, 2, packet}, {BulkBoard::kIn, 2, packet}}},
  };
  return spec;
}

BulkBoard::BulkBoard(MockDeviceSpec spec, std::shared_ptr<fi::DeviceEndpoint> endpoint)
    : MockUsbDevice(std::move(spec)), endpoint_(std::move(endpoint)) {}

void BulkBoard::set_nak_out(bool on) {
  std::lock_guard lock(mutex_);
  nak_out_ = on;
}

void BulkBoard::set_stall_out(bool on) {
  std::lock_guard lock(mutex_);
  stall_out_ = on;
}

void BulkBoard::inject_in(std::vector<std::uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  queue_in(kIn, std::move(bytes));
}

OutResult BulkBoard::on_bulk_out(std::uint8_t endpoint, std::span<const std::uint8_t> data) {
  if (endpoint != kOut) return OutResult::kStall;
  if (stall_out_) return OutResult::kStall;
  if (nak_out_) return OutResult::kNak;
  std::deque<fi::DeviceOutput> replies;
  endpoint_->receive(data, Clock::now(), replies);
  for (auto& r : replies) queue_in(kIn, std::move(r.bytes), r.ready_at);
  return OutResult::kAccept;
}

FrameResponder::FrameResponder(std::string name, std::size_t reply_bytes,
                               std::chrono::milliseconds latency)
    : name_(std::move(name)), reply_bytes_(reply_bytes), latency_(latency) {}

void FrameResponder::receive(std::span<const std::uint8_t> bytes, fi::Clock::time_point now,
                             std::deque<fi::DeviceOutput>& out) {
  decoder_.feed(bytes);
  while (auto frame = decoder_.next()) {
    std::vector<std::uint8_t> payload;
    fi::MessageType type = fi::MessageType::kAck;
    if (frame->header.type == fi::MessageType::kIdentify) {
      type = fi::MessageType::kIdentifyReply;
      payload.assign(name_.begin(), name_.end());
    } else if (frame->header.type == fi::MessageType::kReadOutputs) {
      type = fi::MessageType::kOutputsReply;
      for (std::size_t i = 0; i < reply_bytes_; ++i)
        payload.push_back(static_cast<std::uint8_t>(i));
    }
    fi::DeviceOutput reply;
    fi::encode_frame(type, frame->header.seq, payload, reply.bytes);
    reply.ready_at = now + latency_;
    out.push_back(std::move(reply));
    std::lock_guard lock(mutex_);
    ++frames_;
  }
}

void FrameResponder::on_clear() { decoder_.flush(); }

std::size_t FrameResponder::frames_received() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

MockDeviceSpec usbtmc_spec(std::uint16_t vid, std::uint16_t pid, std::string serial) {
  MockDeviceSpec spec;
  spec.vid = vid;
  spec.pid = pid;
  spec.manufacturer = "PNN-TEST";
  spec.product = "MOCK-TMC";
  spec.serial = std::move(serial);
  spec.speed_mbps = 480;
  spec.interfaces = {
      {.number = 0,
       .interface_class = 0xFE,
       .interface_subclass = 0x03,
       .interface_protocol = 0x01,
       .endpoints = {
           {UsbtmcInstrument::kOut, 2, 512}, {UsbtmcInstrument::kIn, 2, 512}, {0x83, 3, 8}}}};
  return spec;
}

UsbtmcInstrument::UsbtmcInstrument(MockDeviceSpec spec, Behaviour behaviour)
    : MockUsbDevice(std::move(spec)), b_(std::move(behaviour)) {}

void UsbtmcInstrument::configure(const Behaviour& behaviour) {
  std::lock_guard lock(mutex_);
  b_ = behaviour;
}

std::vector<std::string> UsbtmcInstrument::messages() const {
  std::lock_guard lock(mutex_);
  return messages_;
}

std::vector<std::uint8_t> UsbtmcInstrument::tags() const {
  std::lock_guard lock(mutex_);
  return tags_;
}

std::size_t UsbtmcInstrument::requests_in() const {
  std::lock_guard lock(mutex_);
  return requests_in_;
}

void UsbtmcInstrument::reset_io() {
  input_.clear();
  responses_.clear();
  response_offset_ = 0;
  request_.reset();
  drop_in(kIn);
}

OutResult UsbtmcInstrument::on_bulk_out(std::uint8_t endpoint, std::span<const std::uint8_t> data) {
  if (endpoint != kOut) return OutResult::kStall;
  if (b_.nak_out) return OutResult::kNak;
  auto header = tmc::decode_bulk_out_header(data);
  if (!header) {
    log("bad Bulk-OUT header");
    return OutResult::kStall;
  }
  tags_.push_back(header->tag);
  if (header->msg_id == tmc::MsgId::kDevDepMsgOut) {
    const std::size_t n = std::min<std::size_t>(header->transfer_size, data.size() - 12);
    log("MSG_OUT tag=" + std::to_string(header->tag) + " size=" + std::to_string(n) +
        (header->eom() ? " eom" : ""));
    input_.append(reinterpret_cast<const char*>(data.data()) + 12, n);
    bytes_out_in_transfer_ = static_cast<std::uint32_t>(n);
    if (header->eom()) {
      handle_message(input_);
      input_.clear();
    }
  } else if (header->msg_id == tmc::MsgId::kRequestDevDepMsgIn) {
    ++requests_in_;
    std::string event = "REQUEST_IN tag=" + std::to_string(header->tag);
    if (header->attributes & tmc::kAttrTermCharEnabled) {
      event += " term=" + std::to_string(header->term_char);
    }
    log(event);
    request_ = Request{header->tag, header->transfer_size};
    answer();
  } else {
    log("unsupported MsgID " + std::to_string(static_cast<int>(header->msg_id)));
    return OutResult::kStall;
  }
  return OutResult::kAccept;
}

void UsbtmcInstrument::handle_message(const std::string& message) {
  std::string text = message;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  messages_.push_back(text);
  if (b_.silent) return;
  if (text == "*IDN?") {
    responses_.push_back(b_.idn + "\n");
  } else if (text.rfind("DATA? ", 0) == 0) {
    const std::size_t n = std::stoul(text.substr(6));
    std::string data(n, '\0');
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>('0' + i % 10);
    responses_.push_back(data + "\n");
  }
  answer();
}

void UsbtmcInstrument::answer() {
  if (!request_ || responses_.empty()) return;
  const std::string& r = responses_.front();
  const std::size_t left = r.size() - response_offset_;
  std::size_t n = b_.ignore_max_size ? left : std::min<std::size_t>(left, request_->max);
  if (b_.max_per_transfer > 0) n = std::min(n, b_.max_per_transfer);
  const bool eom = n == left;
  std::vector<std::uint8_t> transfer;
  std::span<const std::uint8_t> payload(
      reinterpret_cast<const std::uint8_t*>(r.data()) + response_offset_, n);
  tmc::encode_dev_dep_msg_in(request_->tag, payload, eom, transfer);
  if (b_.declare_extra > 0) {
    const std::uint32_t declared = static_cast<std::uint32_t>(n) + b_.declare_extra;
    for (int i = 0; i < 4; ++i) transfer[4 + i] = static_cast<std::uint8_t>(declared >> (8 * i));
  }
  // Alignment bytes, not payload. (A device that overstates TransferSize sends none here: with
  // padding the host could not tell them from payload, as the USBTMC spec notes.)
  if (b_.declare_extra == 0) {
    while (transfer.size() % 4 != 0) transfer.push_back(0xEE);
  }
  switch (b_.corrupt_next) {
    case Corruption::kNone:
      break;
    case Corruption::kTagInverse:
      transfer[2] ^= 0xFF;
      break;
    case Corruption::kWrongTag:
      transfer[1] = static_cast<std::uint8_t>(transfer[1] + 1);
      transfer[2] = static_cast<std::uint8_t>(~transfer[1]);
      break;
    case Corruption::kWrongMsgId:
      transfer[0] = 0x01;
      break;
    case Corruption::kShort:
      transfer.resize(7);
      break;
  }
  b_.corrupt_next = Corruption::kNone;
  if (b_.empty_first_in) {
    queue_in(kIn, {});
    b_.empty_first_in = false;
  }
  queue_in(kIn, std::move(transfer));
  last_answered_tag_ = request_->tag;
  request_.reset();
  response_offset_ += n;
  if (eom) {
    responses_.pop_front();
    response_offset_ = 0;
  }
}

std::optional<std::vector<std::uint8_t>> UsbtmcInstrument::on_control(
    const Setup& s, std::span<const std::uint8_t> out) {
  (void)out;
  const auto status = [](tmc::Status st) { return static_cast<std::uint8_t>(st); };
  const auto tag = static_cast<std::uint8_t>(s.value & 0xFF);
  if (s.request_type == tmc::kRequestTypeEndpoint) {
    switch (static_cast<tmc::Request>(s.request)) {
      case tmc::Request::kInitiateAbortBulkIn: {
        log("INITIATE_ABORT_BULK_IN tag=" + std::to_string(tag));
        const bool in_progress =
            (request_ && request_->tag == tag) || (last_answered_tag_ == tag && queued_in(kIn) > 0);
        if (b_.abort_fails || !in_progress) {
          return std::vector<std::uint8_t>{status(tmc::Status::kFailed), tag};
        }
        reset_io();
        abort_polls_left_ = b_.abort_pending_polls;
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess), tag};
      }
      case tmc::Request::kCheckAbortBulkInStatus:
        log("CHECK_ABORT_BULK_IN_STATUS");
        if (abort_polls_left_ > 0) {
          --abort_polls_left_;
          return std::vector<std::uint8_t>{status(tmc::Status::kPending), 0, 0, 0, 0, 0, 0, 0};
        }
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess), 0, 0, 0, 0, 0, 0, 0};
      case tmc::Request::kInitiateAbortBulkOut:
        log("INITIATE_ABORT_BULK_OUT tag=" + std::to_string(tag));
        if (b_.abort_fails) return std::vector<std::uint8_t>{status(tmc::Status::kFailed), tag};
        input_.clear();
        b_.nak_out = false;
        abort_polls_left_ = b_.abort_pending_polls;
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess), tag};
      case tmc::Request::kCheckAbortBulkOutStatus: {
        log("CHECK_ABORT_BULK_OUT_STATUS");
        if (abort_polls_left_ > 0) {
          --abort_polls_left_;
          return std::vector<std::uint8_t>{status(tmc::Status::kPending), 0, 0, 0, 0, 0, 0, 0};
        }
        const auto n = bytes_out_in_transfer_;
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess),
                                         0,
                                         0,
                                         0,
                                         static_cast<std::uint8_t>(n),
                                         static_cast<std::uint8_t>(n >> 8),
                                         static_cast<std::uint8_t>(n >> 16),
                                         static_cast<std::uint8_t>(n >> 24)};
      }
      default:
        break;
    }
  } else if (s.request_type == tmc::kRequestTypeInterface) {
    switch (static_cast<tmc::Request>(s.request)) {
      case tmc::Request::kInitiateClear:
        log("INITIATE_CLEAR");
        reset_io();
        b_.nak_out = false;
        clear_polls_left_ = b_.clear_pending_polls;
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess)};
      case tmc::Request::kCheckClearStatus:
        log("CHECK_CLEAR_STATUS");
        if (clear_polls_left_ > 0) {
          --clear_polls_left_;
          return std::vector<std::uint8_t>{status(tmc::Status::kPending), 0};
        }
        return std::vector<std::uint8_t>{status(tmc::Status::kSuccess), 0};
      case tmc::Request::kGetCapabilities: {
        log("GET_CAPABILITIES");
        std::vector<std::uint8_t> caps(0x18, 0);
        caps[0] = status(tmc::Status::kSuccess);
        caps[2] = 0x00;
        caps[3] = 0x01;                                // bcdUSBTMC 1.00
        caps[5] = b_.term_char_capable ? 0x01 : 0x00;  // TermChar
        caps[12] = 0x00;
        caps[13] = 0x01;  // bcdUSB488 1.00
        caps[14] = 0x07;  // 488.2, REN_CONTROL, TRIGGER
        caps[15] = 0x0F;  // SCPI, SR1, RL1, DT1
        return caps;
      }
      default:
        break;
    }
  }
  log("stalled control request " + std::to_string(s.request));
  return std::nullopt;
}

}  // namespace pnn::test_usb

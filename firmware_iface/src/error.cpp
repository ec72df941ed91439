#include "pnn/firmware_iface/error.hpp"

#include <string>

namespace pnn::firmware_iface {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pnn.firmware_iface"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::kTruncated:
        return "input truncated";
      case Errc::kTrailingBytes:
        return "unexpected trailing bytes";
      case Errc::kBadValue:
        return "field value out of range";
      case Errc::kInconsistent:
        return "inconsistent fields";
      case Errc::kUnknownMessageType:
        return "unknown message type";
      case Errc::kBadSync:
        return "bad frame sync";
      case Errc::kBadHeader:
        return "bad frame header";
      case Errc::kOversize:
        return "frame payload larger than allowed";
      case Errc::kCrcMismatch:
        return "frame CRC mismatch";
      case Errc::kUnsupportedVersion:
        return "unsupported protocol version";
      case Errc::kBadMsgId:
        return "unexpected USBTMC MsgID";
      case Errc::kBadTag:
        return "USBTMC bTag mismatch";
      case Errc::kSyntax:
        return "SCPI syntax error";
      case Errc::kBadBlock:
        return "malformed IEEE-488.2 block";
      case Errc::kMessageTooLong:
        return "SCPI message too long";
      case Errc::kTimeout:
        return "transport timeout";
      case Errc::kDisconnected:
        return "device disconnected";
      case Errc::kIo:
        return "transport I/O error";
      case Errc::kNotOpen:
        return "transport not open";
      case Errc::kIdentityMismatch:
        return "device identity mismatch";
      case Errc::kDeviceError:
        return "device reported an error";
    }
    return "unknown firmware_iface error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace pnn::firmware_iface

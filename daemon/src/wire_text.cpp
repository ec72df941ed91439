#include "wire_text.hpp"

#include "pnn/common/hex.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/message.h>
#include <google/protobuf/reflection.h>
#include <google/protobuf/wire_format_lite.h>

#include <functional>

namespace pnn::daemon::detail {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) noexcept {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string to_valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_sequence(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

void make_strings_valid_utf8(google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const auto* reflection = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    if (f->type() == FieldDescriptor::TYPE_STRING) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(m, f); ++i) {
          const std::string& v = reflection->GetRepeatedStringReference(m, f, i, nullptr);
          if (!is_valid_utf8(v)) reflection->SetRepeatedString(&m, f, i, to_valid_utf8(v));
        }
      } else {
        std::string scratch;
        const std::string& v = reflection->GetStringReference(m, f, &scratch);
        if (!is_valid_utf8(v)) reflection->SetString(&m, f, to_valid_utf8(v));
      }
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (f->is_repeated()) {
        for (int i = 0; i < reflection->FieldSize(m, f); ++i) {
          make_strings_valid_utf8(*reflection->MutableRepeatedMessage(&m, f, i));
        }
      } else {
        make_strings_valid_utf8(*reflection->MutableMessage(&m, f));
      }
    }
  }
}

std::optional<std::string> client_id_problem(std::string_view client_id) {
  if (client_id.size() > kMaxClientIdBytes) {
    return "client_id is " + std::to_string(client_id.size()) + " bytes; the limit is " +
           std::to_string(kMaxClientIdBytes) + " (use a short name such as user@host-pid)";
  }
  for (std::size_t i = 0; i < client_id.size(); ++i) {
    const auto c = static_cast<unsigned char>(client_id[i]);
    if (c < 0x20 || c == 0x7F) {
      return "client_id contains the control character 0x" + common::hex_byte(c) +
             " at byte " + std::to_string(i) + " (printable text only)";
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> request_digest(std::string_view bytes) {
  using google::protobuf::internal::WireFormatLite;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  std::uint64_t digest = 0xcbf29ce484222325ull;
  const std::hash<std::string_view> hash;
  for (;;) {
    const int start = in.CurrentPosition();
    const std::uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (!WireFormatLite::SkipField(&in, tag)) return std::nullopt;
    const int field = static_cast<int>(WireFormatLite::GetTagFieldNumber(tag));
    if (field == 1 || field == 3 || field == 4 || field == 5) continue;
    const std::string_view raw = bytes.substr(static_cast<std::size_t>(start),
                                              static_cast<std::size_t>(in.CurrentPosition() - start));
    digest = (digest ^ hash(raw)) * 0x100000001b3ull + raw.size();
  }
  if (in.CurrentPosition() != static_cast<int>(bytes.size())) return std::nullopt;
  return digest;
}

}  // namespace pnn::daemon::detail

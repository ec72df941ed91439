#pragma once
// Text and bytes that cross the wire: UTF-8 repair for proto3 `string` fields (a reply that
// carries invalid UTF-8, e.g. a YAML error echoing a stray byte, cannot be parsed by clients),
// client_id validation, and the digest that tells a retried request from a different request
// that reuses its request id.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace google::protobuf {
class Message;
}

namespace pnn::daemon::detail {

bool is_valid_utf8(std::string_view s) noexcept;
/// `s` with every byte that is not part of a valid UTF-8 sequence replaced by U+FFFD.
std::string to_valid_utf8(std::string_view s);
/// Repairs every `string` field of `m`, recursively (bytes fields are left alone).
void make_strings_valid_utf8(google::protobuf::Message& m);

inline constexpr std::size_t kMaxClientIdBytes = 128;
/// Empty if `client_id` is acceptable (≤ 128 bytes, no control characters), else why not.
std::optional<std::string> client_id_problem(std::string_view client_id);

/// A digest of a serialized pnn.v1.Request over client_id and the body: every field except
/// request_id, lease_token, deadline_ms and protocol_minor, which a faithful retry may change.
/// Empty if the bytes are not a well-formed message.
std::optional<std::uint64_t> request_digest(std::string_view request_bytes);

}  // namespace pnn::daemon::detail

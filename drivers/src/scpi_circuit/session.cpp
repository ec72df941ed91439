#include "session.hpp"

#include <cmath>

#include "pnn/common/hex.hpp"

namespace pnn::drivers::scpi_circuit {
namespace {

namespace fw = firmware_iface;
namespace scpi = firmware_iface::scpi;

constexpr int kMaxErrorsDrained = 64;

}  // namespace

Session::Session(fw::TransportPtr transport, std::chrono::milliseconds timeout,
                 std::string address, std::string expected_serial)
    : client_(std::move(transport), timeout),
      address_(std::move(address)),
      serial_(std::move(expected_serial)) {}

Result<void> Session::open() {
  if (const auto ec = client_.open()) return link_failure(ec, "connecting");
  return {};
}

Result<void> Session::resync(const std::string& doing) {
  if (const auto ec = client_.resync()) return link_failure(ec, doing);
  return {};
}

Result<void> Session::tell(const std::string& message) {
  if (const auto ec = client_.write(message)) return link_failure(ec, "sending commands");
  return {};
}

Result<std::string> Session::ask(const std::string& query, const std::string& what) {
  auto reply = client_.query(query);
  if (!reply) return link_failure(reply.error(), "waiting for " + (what.empty() ? query : what));
  return std::move(reply).value();
}

Result<Status> Session::status(const std::string& query, std::size_t n) {
  auto reply = ask(query + ";*ESR?;:SYST:ERR?", query + ";*ESR?;:SYST:ERR?");
  if (!reply) return reply.error();
  const std::vector<std::string> parts = split_responses(reply.value());
  if (parts.size() != n + 2) return garbled(query + ";*ESR?;:SYST:ERR?", reply.value());
  Status s;
  s.raw.assign(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    const auto d = parse_decimal(parts[i]);
    if (!d) return garbled(query, reply.value());
    s.values.push_back(std::llround(*d));
  }
  const auto esr = parse_integer(parts[n]);
  auto entry = scpi::parse_error(parts[n + 1]);
  if (!esr || *esr < 0 || *esr > 255 || !entry) return garbled("*ESR?;:SYST:ERR?", reply.value());
  s.esr = static_cast<unsigned>(*esr);
  for (int i = 0; entry->code != 0 && i < kMaxErrorsDrained; ++i) {
    s.errors.push_back(*entry);
    auto next = ask("SYST:ERR?");
    if (!next) return next.error();
    entry = scpi::parse_error(next.value());
    if (!entry) return garbled("SYST:ERR?", next.value());
  }
  return s;
}

Error Session::fail(Error error, bool transient) {
  transient_ = transient;
  return error;
}

Error Session::link_failure(std::error_code ec, const std::string& doing) {
  const std::string who = this->who();
  if (ec == fw::Errc::kTimeout) {
    return fail(make_error(Errc::kTimeout,
                           "no reply from " + who + " (" + client_.describe() + ") within " +
                               std::to_string(client_.timeout().count()) + " ms while " + doing),
                true);
  }
  if (ec == fw::Errc::kDisconnected || ec == fw::Errc::kNotOpen) {
    const bool connecting = doing == "connecting";
    return fail(make_error(Errc::kIo, "instrument " + who + " at " + client_.describe() +
                                          " is disconnected (unplugged, powered off or not "
                                          "listening) while " +
                                          doing +
                                          (connecting ? "; check that it is on and reachable, "
                                                        "then configure again"
                                                      : "; run cleanup, then configure to "
                                                        "reconnect and re-identify it")),
                false);
  }
  if (ec == fw::Errc::kMessageTooLong) {
    return fail(make_error(Errc::kIo, "garbled reply from " + who + " while " + doing +
                                          " (a response without its terminator)"),
                true);
  }
  return fail(make_error(Errc::kIo, "link to " + who + " (" + client_.describe() +
                                        ") failed while " + doing + ": " + ec.message()),
              false);
}

Error Session::garbled(const std::string& query, const std::string& reply) {
  // Printable, and short: a damaged reply may be binary, or megabytes long.
  std::string shown;
  for (const char c : reply.substr(0, 48)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) {
      shown.push_back(c);
    } else {
      shown += "\\x" + common::hex_byte(u);
    }
  }
  if (reply.size() > 48) shown += "...";
  return fail(
      make_error(Errc::kIo, "garbled reply from " + who() + " to " + query + ": '" + shown + "'"),
      true);
}

std::optional<Error> Session::refused(const Status& s, const std::string& doing) {
  if (s.errors.empty()) return std::nullopt;
  return fail(make_error(Errc::kDeviceFault, "instrument " + serial_ + " reported errors while " +
                                                 doing + error_list(s.errors)),
              false);
}

std::string Session::error_list(const std::vector<scpi::ErrorEntry>& errors) {
  std::string out;
  for (const auto& e : errors) {
    out += out.empty() ? "; its error queue: " : " | ";
    out += scpi::format_error(e);
  }
  return out;
}

}  // namespace pnn::drivers::scpi_circuit

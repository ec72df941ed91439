#include "zap.hpp"

#include <array>

namespace pnn::daemon::detail {

namespace {
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
}

ZapAuthenticator::ZapAuthenticator(zmq::context_t& context, const std::vector<ClientKey>& clients,
                                   std::function<void(const std::string&)> warn)
    : socket_(context, zmq::socket_type::rep), warn_(std::move(warn)) {
  for (const auto& k : clients) allowlist_[k.public_key] = k.role;
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
}

void ZapAuthenticator::on_request(std::vector<zmq::message_t>& f) {
  // ZAP request: version, request id, domain, address, identity, mechanism, credentials. The
  // REP socket has stripped the envelope.
  auto frame = [&](std::size_t i) { return i < f.size() ? f[i].to_string() : std::string(); };
  std::string status = "400", text = "client key not allowed", user;
  if (frame(5) == "CURVE" && f.size() >= 7 && f[6].size() == 32) {
    std::array<char, 41> z85{};
    zmq_z85_encode(z85.data(), static_cast<const std::uint8_t*>(f[6].data()), 32);
    auto it = allowlist_.find(z85.data());
    if (it != allowlist_.end()) {
      status = "200";
      text = "OK";
      user = std::string(to_string(it->second)) + " " + z85.data();  // "ROLE KEY": identify()
    } else {
      warn_("refused a CURVE client from " + frame(3) + ": public key " + z85.data() +
            " is not in security.clients");
    }
  } else {
    text = "only CURVE clients are accepted";
  }
  const std::vector<std::string> reply = {"1.0", frame(1), status, text, user, ""};
  for (std::size_t i = 0; i < reply.size(); ++i) {
    (void)socket_.send(zmq::buffer(reply[i]),
                       i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

}  // namespace pnn::daemon::detail

#pragma once
// ZAP (ZeroMQ RFC 27) authentication of CURVE clients: a client key in security.clients is let in
// with its role; the ROUTER then sees User-Id "ROLE KEY" (intake.cpp identify()).
#include <zmq.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pnn/daemon/config.hpp"

namespace pnn::daemon::detail {

class ZapAuthenticator {
 public:
  /// Binds the ZAP endpoint in `context`. `warn` gets a line for every refused key.
  ZapAuthenticator(zmq::context_t& context, const std::vector<ClientKey>& clients,
                   std::function<void(const std::string&)> warn);
  zmq::socket_t& socket() { return socket_; }
  /// Answers one ZAP request (frames as the REP socket received them).
  void on_request(std::vector<zmq::message_t>& frames);

 private:
  zmq::socket_t socket_;
  std::map<std::string, Role> allowlist_;  // Z85 public key → role
  std::function<void(const std::string&)> warn_;
};

}  // namespace pnn::daemon::detail

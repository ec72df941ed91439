// pnnd: the lab daemon. Serves the devices of a lab config over ZeroMQ (docs/daemon.md).
//   pnnd [--config FILE]     serve (default config: configs/daemon/lab.yaml)
//   pnnd --check FILE        validate a config and exit
//   pnnd --keygen            print a new CURVE key pair (for security.* in the config)
//   pnnd --version           print the project and protocol version
// Prints one line "pnnd ready rpc=... telemetry=... instance=..." on stdout once serving.
// Exit codes: 0 clean stop (SIGINT/SIGTERM), 1 runtime failure (store, bind), 2 usage or config.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "pnn/client/client.hpp"
#include "pnn/common/version.hpp"
#include "pnn/daemon/config.hpp"
#include "pnn/daemon/run_store.hpp"
#include "pnn/daemon/server.hpp"
#include "pnn/digital_twin/memory.hpp"
#include "pnn/proto/wire.hpp"

namespace {

int usage() {
  std::fprintf(stderr, "usage: pnnd [--config FILE] | --check FILE | --keygen | --version\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  pnn::daemon::block_signals();  // first: a signal during start-up waits for the event loop
  pnn::digital_twin::tune_allocator_for_batches();
  std::string config_path = "configs/daemon/lab.yaml";
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if ((arg == "--config" || arg == "--check") && i + 1 < argc) {
      config_path = argv[++i];
      check_only = arg == "--check";
    } else if (arg == "--keygen") {
      const auto keys = pnn::client::make_curve_keypair();
      std::printf("public_key: \"%s\"\nsecret_key: \"%s\"\n", keys.public_key.c_str(),
                  keys.secret_key.c_str());
      return 0;
    } else if (arg == "--version") {
      std::printf("pnnd %s (protocol %u.%u)\n", pnn::kVersion,
                  static_cast<unsigned>(pnn::wire::kProtocolMajor),
                  static_cast<unsigned>(pnn::wire::kProtocolMinor));
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      return usage();
    }
  }
  try {
    pnn::daemon::DaemonConfig config = pnn::daemon::load_daemon_config(config_path);
    if (check_only) {
      std::printf("%s: ok (%zu devices)\n", config_path.c_str(), config.devices.size());
      return 0;
    }
    pnn::daemon::ServerOptions options;
    options.config_path = config_path;
    pnn::daemon::Server server(std::move(config), options);
    std::printf("pnnd ready rpc=%s telemetry=%s instance=%s%s%s\n", server.rpc_endpoint().c_str(),
                server.telemetry_endpoint().c_str(), server.instance_id().c_str(),
                server.http_url().empty() ? "" : " http=", server.http_url().c_str());
    std::fflush(stdout);
    server.run();
    return 0;
  } catch (const pnn::daemon::ConfigError& e) {
    std::fprintf(stderr, "pnnd: config error: %s\n", e.what());
    return 2;
  } catch (const pnn::daemon::StoreError& e) {
    std::fprintf(stderr, "pnnd: run store error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnnd: error: %s\n", e.what());
    return 1;
  }
}

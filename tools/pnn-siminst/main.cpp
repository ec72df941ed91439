// pnn-siminst: serves a simulated instrument over TCP, as the instrument's own socket server
// would (scpi-raw for the SCPI instruments), so any client (the pnn drivers with a tcp://
// address, PyVISA, netcat) can talk to it.
//   pnn-siminst --listen 127.0.0.1:5025 'sim://electronic-circuit?seed=1&slots=32'
// Prints "listening on HOST:PORT" once it accepts connections (port 0 picks a free one);
// SIGINT/SIGTERM stop it: the socket is closed and it exits 0. Exit 2: bad arguments, 1: it
// could not listen.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "pnn/drivers/sim_instrument.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "pnn/digital_twin/memory.hpp"

namespace {

// "HOST:PORT" or "[V6]:PORT"; throws std::invalid_argument naming the fix.
pnn::firmware_iface::TcpDeviceServer::Options listen_options(const std::string& text) {
  const auto bad = [&] {
    return std::invalid_argument("--listen " + text +
                                 ": expected HOST:PORT, e.g. 127.0.0.1:5025 (port 0 = any free)");
  };
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) throw bad();
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) throw bad();
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoul(port) > 65535) {
    throw bad();
  }
  return {.host = host, .port = static_cast<std::uint16_t>(std::stoul(port))};
}

}  // namespace

int main(int argc, char** argv) {
  pnn::digital_twin::tune_allocator_for_batches();
  CLI::App app("Serves a simulated instrument over TCP (scpi-raw)", "pnn-siminst");
  std::string listen = "127.0.0.1:5025";
  std::string address;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: a free one)")
      ->capture_default_str();
  app.add_option("address", address,
                 "the simulated instrument, e.g. "
                 "'sim://electronic-circuit?seed=1&slots=32'")
      ->required();
  CLI11_PARSE(app, argc, argv);

  // Block the stop signals before the server thread starts, so only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<pnn::firmware_iface::TcpDeviceServer> server;
  try {
    auto options = listen_options(listen);
    auto instrument = pnn::drivers::make_simulated_instrument(address);
    const std::string name = instrument->name();
    server = std::make_unique<pnn::firmware_iface::TcpDeviceServer>(std::move(instrument), options);
    std::cout << "listening on " << server->address() << " (" << name << ")" << std::endl;
  } catch (const std::invalid_argument& e) {
    std::cerr << "pnn-siminst: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pnn-siminst: " << e.what() << "\n";
    return 1;
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server->stop();
  std::cout << "pnn-siminst: stopped (" << (signal == SIGINT ? "SIGINT" : "SIGTERM") << ")"
            << std::endl;
  return 0;
}

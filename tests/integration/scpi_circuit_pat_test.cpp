// PAT through the SCPI path of the electronic setup (driver → loopback → simulated AWG +
// digitizer) with faults injected by the device address: lost and corrupted replies are retried
// and the run completes; an instrument that drops off the bus ends the run with a clean error.
#include <doctest/doctest.h>

#include "../../drivers/sim/src/circuit_instrument.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "pnn/training/job.hpp"

using namespace pnn;
using namespace pnn::training;

namespace {

JobConfig circuit_job(const std::string& address) {
  JobConfig c;
  c.source = "scpi_circuit_pat_test";
  c.name = "circuit-scpi-faults";
  c.seed = 2;
  c.dataset = "digits";
  c.data_options.max_train = 400;
  c.devices = {{"rlc", address}};
  c.network = {{LayerSpec::Kind::kAffine, "", 12},
               {LayerSpec::Kind::kActivation, "", 0, 0, 1.0, "tanh"},
               {LayerSpec::Kind::kPhysical, "rlc"},
               {LayerSpec::Kind::kAffine, "", 10}};
  c.training.method = PatConfig{};
  c.training.learning_rate = 1e-2;
  c.training.batch_size = 32;
  c.training.epochs = 8;
  c.training.seed = 2;
  c.training.evaluate_each_epoch = false;
  c.compare_in_silico = false;
  return c;
}

}  // namespace

TEST_CASE("circuit over SCPI: PAT completes through lost and corrupted replies (over TCP)") {
  // The simulated bench served on a local port, as pnn-siminst serves it; the job reaches it
  // through a tcp:// address, and the test keeps the instrument to see the faults it injected.
  auto instrument = drivers::sim::make_circuit_instrument(drivers::DeviceAddress::parse(
      "sim://electronic-circuit?seed=3&faults=drop:0.002,corrupt:0.003"));
  firmware_iface::TcpDeviceServer server(instrument, {});
  const auto r = run_job(circuit_job("tcp://" + server.address() +
                                     "?kind=electronic-circuit&slots=12&timeout_ms=500"),
                         {}, {.write_outputs = false});
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
  const PhaseResult* pat = r.value().phase("pat");
  REQUIRE(pat != nullptr);
  const auto faults = instrument->fault_stats();
  INFO("PAT on the device " << pat->acc_hardware << ", on the twin " << pat->acc_twin << "; "
                            << faults.dropped << " replies dropped, " << faults.corrupted
                            << " corrupted");
  CHECK(faults.dropped >= 1);  // 6 and 2 with these seeds
  CHECK(faults.corrupted >= 1);
  CHECK(pat->acc_hardware > 0.75);
  CHECK(pat->history.back().train_loss < pat->history.front().train_loss);
  CHECK(r.value().device_serials == std::vector<std::string>{"SIM-RLC-3"});
  CHECK(instrument->status().out_of_range == 0);
}

TEST_CASE("circuit over SCPI: an unplugged instrument ends the run with a clean error") {
  const auto r = run_job(circuit_job("sim://electronic-circuit?slots=12&seed=3&timeout_ms=50&"
                                     "faults=unplug_after:400,unplug_ms:100000"),
                         {}, {.write_outputs = false});
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().code == drivers::Errc::kIo);
  CHECK(r.error().message.find("layer 'rlc'") != std::string::npos);
  CHECK(r.error().message.find("disconnected") != std::string::npos);
}

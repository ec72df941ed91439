// The datasheet table: every kind has a datasheet whose twin fits its spec, a simulated
// instrument built from that datasheet, and real-instrument addresses that take their spec from
// the datasheet alone.
#include "pnn/drivers/setups.hpp"

#include <doctest/doctest.h>

#include "pnn/drivers/instrument_device.hpp"
#include "pnn/drivers/registry.hpp"

using namespace pnn;
using namespace pnn::drivers;

TEST_CASE("setups: every kind's datasheet fits its twin and is what its simulated device reports") {
  REQUIRE(known_setups().size() == setup_kinds().size());
  for (const SetupKind& kind : setup_kinds()) {
    CAPTURE(kind.info.example_address);
    const DeviceAddress address = DeviceAddress::parse(kind.info.example_address);
    CHECK(address.target == kind.info.kind);
    CHECK(find_setup_kind(kind.info.kind) == &kind);
    const Datasheet ds = kind.datasheet(address);
    CHECK(ds.spec.kind == kind.info.kind);
    CHECK(ds.spec.model.empty());     // no identity: the instrument reports its own
    CHECK(ds.spec.firmware.empty());
    REQUIRE(ds.twin);
    CHECK(ds.twin->num_inputs() == ds.spec.num_inputs);
    CHECK(ds.twin->num_outputs() == ds.spec.num_outputs);
    CHECK(ds.twin->num_params() == ds.spec.num_params());
    CHECK(ds.spec.max_batch > 0);

    const auto dev = make_physical_system(kind.info.example_address);
    const DeviceSpec& sim = dev->spec();
    CHECK(sim.num_inputs == ds.spec.num_inputs);
    CHECK(sim.num_outputs == ds.spec.num_outputs);
    CHECK(sim.input_min == ds.spec.input_min);
    CHECK(sim.input_max == ds.spec.input_max);
    CHECK(sim.max_batch == ds.spec.max_batch);
    CHECK(sim.output_noise_std == ds.spec.output_noise_std);
    CHECK((sim.param_min() - ds.spec.param_min()).norm() == 0.0);
    CHECK((sim.param_max() - ds.spec.param_max()).norm() == 0.0);
    CHECK(dev->nominal_twin()->name() == ds.twin->name());
  }
  CHECK(find_setup_kind("warp-drive") == nullptr);
  CHECK(setup_kind_names().find("mechanical-oscillators, power-law") == 0);
}

TEST_CASE("setups: a real board's spec is its datasheet's, its identity comes from the board") {
  const std::string text = "tcp://127.0.0.1:1?kind=mechanical-plate&slots=5&timeout_ms=50";
  const auto dev = make_instrument_device(DeviceAddress::parse(text));
  const Datasheet ds = find_setup_kind("mechanical-plate")
                           ->datasheet(DeviceAddress::parse("sim://mechanical-plate?slots=5"));
  CHECK(dev->spec().num_inputs == 5);
  CHECK(dev->spec().input_max == ds.spec.input_max);
  CHECK((dev->spec().param_max() - ds.spec.param_max()).norm() == 0.0);
  CHECK(dev->spec().serial == text);  // no serial= : unknown until the board identifies
  CHECK(dev->spec().model == "(read from the board when configured)");
  CHECK(dev->nominal_twin()->name() == ds.twin->name());
  CHECK(make_instrument_device(DeviceAddress::parse(text + "&serial=PL-3"))->spec().serial ==
        "PL-3");
  // Options that shape only a simulated reality are accepted and change nothing.
  const auto with_sim_keys =
      make_instrument_device(DeviceAddress::parse(text + "&spread=2&seed=4"));
  CHECK(with_sim_keys->spec().num_inputs == 5);
  CHECK_THROWS_WITH_AS(
      make_instrument_device(DeviceAddress::parse("tcp://127.0.0.1:1?kind=null")),
      doctest::Contains("exists only as sim://null"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_instrument_device(DeviceAddress::parse("sim://null")),
                       doctest::Contains("not an instrument link"), std::invalid_argument);
}

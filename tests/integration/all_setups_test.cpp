// One daemon serves every simulated setup as a device (issue: "one config runs all of them").
#include <doctest/doctest.h>

#include "daemon/daemon_test_util.hpp"
#include "pnn/drivers/registry.hpp"

namespace pnn::daemon::test {

TEST_CASE("daemon: one config serves every simulated setup and each answers Describe and Forward") {
  TempDir dir("all-setups");
  DaemonConfig c = test_config(dir);
  const auto setups = drivers::known_setups();
  for (const auto& s : setups) c.devices.push_back(device(s.kind, s.example_address));
  RunningServer server(c);
  auto client = make_client(server.rpc(), "all-setups");
  v1::Request list;
  list.mutable_list_devices();
  const v1::Reply devices = client->call(list);
  REQUIRE(devices.status().code() == v1::OK);
  CHECK(devices.list_devices().devices_size() == static_cast<int>(setups.size()));
  for (const auto& s : setups) {
    CAPTURE(s.kind);
    const v1::DeviceInfo d = describe_device(*client, s.kind);
    REQUIRE(d.state() == v1::ACTIVE);
    const auto& spec = d.spec();
    CHECK(spec.kind() == s.kind);
    CHECK(!spec.serial().empty());
    const std::string token = acquire_token(*client, s.kind);
    const double lo = spec.input_min(), hi = std::min(spec.input_max(), spec.input_min() + 1.0);
    std::vector<double> theta;
    for (const auto& p : spec.params()) {
      for (std::uint32_t i = 0; i < p.count(); ++i) theta.push_back(0.5 * (p.hard_min() + p.hard_max()));
    }
    const v1::Reply r = client->call(forward(s.kind, token, 2, static_cast<int>(spec.num_inputs()),
                                             static_cast<float>(0.5 * (lo + hi)), theta));
    REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
    CHECK(r.forward().y().shape(0) == 2);
    CHECK(r.forward().y().shape(1) == spec.num_outputs());
    CHECK(client->call(release(s.kind, token)).status().code() == v1::OK);
  }
}

}  // namespace pnn::daemon::test

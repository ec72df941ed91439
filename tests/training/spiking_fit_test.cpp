// The spiking chip in the training library: a physical layer on a spiking chip runs as a
// spike_run and its backward is the twin at the measured record (the hxtorch pattern), and the
// mock fit brings the twin's spike counts and readout traces close to the chip's.
#include "pnn/training/spiking_fit.hpp"

#include <doctest/doctest.h>

#include "pnn/training/job.hpp"
#include "pnn/training/network.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::training;
namespace dt = pnn::digital_twin;

namespace {

const std::string kChip = "sim://spiking-chip?features=4&hidden=24&outputs=3&steps=40&seed=3";

Matrix inputs(Index rows, std::uint64_t seed) {
  return test::random_matrix(rows, 4, 1.0, seed).cwiseAbs().cwiseMin(1.0);
}

const dt::SpikingLifModel& lif_of(const drivers::PhysicalSystem& dev) {
  return dynamic_cast<const dt::SpikingLifModel&>(*dev.nominal_twin());
}

Vector levels(const drivers::PhysicalSystem& dev, std::uint64_t seed) {
  return lif_of(dev).initial_params(seed).array().round();
}

}  // namespace

TEST_CASE("network: a spiking chip's layer records spikes and its backward is the twin at them") {
  auto s = test::active_sim(kChip + "&gap=large&weights=round");
  const Vector theta = levels(*s.driver, 4);
  Network net;
  net.add_physical("chip", *s.driver, s.driver->nominal_twin(), theta);
  REQUIRE(net.layers()[0].backward_at_record);
  const Matrix x = inputs(20, 5);
  const Matrix y_bar = test::random_matrix(20, 3, 1.0, 6);
  const Trace trace = net.forward(x, Mode::kHardware).value();
  REQUIRE(trace.records.size() == 1);
  REQUIRE(trace.records[0].has_value());
  const dt::SpikeRecord& rec = *trace.records[0];
  CHECK(rec.outputs == trace.output);
  CHECK(rec.hidden_spikes.sum() > 0.0);
  CHECK(s.firmware->stats().spike_runs == 1);
  const Vector g = net.backward(trace, y_bar)[0];
  CHECK((g - lif_of(*s.driver).vjp_at_record(x, theta, rec, y_bar).theta_bar).norm() <
        1e-12 * (1.0 + g.norm()));
  // On a chip with large mismatch the measured record moves the gradient away from the twin's.
  const Vector g_twin = lif_of(*s.driver).vjp(x, theta, y_bar).theta_bar;
  CHECK((g - g_twin).norm() > 1e-3 * g_twin.norm());
  // backward_at_record off: a plain forward, no record, the twin's own activity.
  net.layers()[0].backward_at_record = false;
  const Trace plain = net.forward(x, Mode::kHardware).value();
  CHECK_FALSE(plain.records[0].has_value());
  CHECK((net.backward(plain, y_bar)[0] - g_twin).norm() < 1e-12 * (1.0 + g_twin.norm()));
  // Twin mode records nothing either.
  CHECK_FALSE(net.forward(x, Mode::kTwin).value().records[0].has_value());
  // A digital layer or a non-spiking device never records.
  auto mixer = test::active_sim("sim://power-law");
  Network other;
  other.add_physical("mixer", *mixer.driver, mixer.driver->nominal_twin(),
                     mixer.driver->nominal_twin()->initial_params(1));
  CHECK_FALSE(other.layers()[0].backward_at_record);
}

TEST_CASE("mock fit: per-neuron corrections cut the twin-vs-chip spike-count error") {
  auto s = test::active_sim(kChip + "&gap=large&weights=round");
  const Vector theta = levels(*s.driver, 7);
  const Matrix probe = inputs(200, 8);
  const MockFitResult fit = mock_fit(*s.driver, lif_of(*s.driver), probe, theta).value();
  const MockFitReport& m = fit.report;
  INFO("spike error " << m.spike_error_before << " -> " << m.spike_error_after << " (floor "
                      << m.spike_error_floor << "), traces " << m.trace_mse_before << " -> "
                      << m.trace_mse_after << ", outputs " << m.output_mse_before << " -> "
                      << m.output_mse_after);
  CHECK(m.chip_runs == 4);
  CHECK(s.firmware->stats().spike_runs == 4);
  CHECK(m.chip_spikes_per_neuron > 0.1);
  CHECK(m.spike_error_floor > 0.0);  // the chip's trial-to-trial noise
  CHECK(m.spike_error_after < 0.8 * m.spike_error_before);
  CHECK(m.spike_error_after >= m.spike_error_floor * 0.5);
  CHECK(m.trace_mse_after < 0.7 * m.trace_mse_before);
  CHECK(m.output_mse_after < m.output_mse_before);
  const dt::SpikingLifConfig& c = fit.model->config();
  CHECK(c.hidden_threshold.size() == 24);
  CHECK(c.channel_gain.size() == 5);
  CHECK(c.output_gain.size() == 3);
  CHECK((c.hidden_threshold.array() != 1.0).any());
}

TEST_CASE("mock fit: a chip without mismatch needs no correction, and faults and wrong setups are errors") {
  auto s = test::active_sim(kChip + "&gap=none&noise=0&jitter=0");
  const Vector theta = levels(*s.driver, 9);
  const Matrix probe = inputs(50, 10);
  const MockFitReport m = mock_fit(*s.driver, lif_of(*s.driver), probe, theta).value().report;
  CHECK(m.spike_error_before == 0.0);
  CHECK(m.spike_error_floor == 0.0);
  CHECK(m.spike_error_after == 0.0);
  CHECK(m.trace_mse_before < 1e-4);  // the 8-bit readout only
  // A chip that stops returning events: the device's timeout, no model.
  auto cut = test::active_sim(kChip + "&gap=none&faults=truncate:1&timeout_ms=20&retries=1");
  const auto failed = mock_fit(*cut.driver, lif_of(*cut.driver), probe, theta);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == drivers::Errc::kTimeout);
  auto mixer = test::active_sim("sim://power-law");
  const auto wrong = mock_fit(*mixer.driver, lif_of(*s.driver), probe, theta);
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().code == drivers::Errc::kWrongState);
  CHECK_THROWS_AS(mock_fit(*s.driver, lif_of(*s.driver), probe, theta, {.repeats = 1}),
                  std::invalid_argument);
}

TEST_CASE("job config: backward is measured by default, twin on request, else refused") {
  const std::string base = R"(name: spk
data: {name: yin-yang}
devices:
  chip: sim://spiking-chip?seed=1&hidden=16
network:
  - physical: {device: chip%s}
)";
  const auto parse = [&](const std::string& extra) {
    std::string text = base;
    text.replace(text.find("%s"), 2, extra);
    return parse_job_config(text, "job.yaml");
  };
  CHECK(parse("").network[0].backward_at_record);
  CHECK_FALSE(parse(", backward: twin").network[0].backward_at_record);
  CHECK(parse(", backward: spike-train").network[0].spike_train_rule);
  CHECK_FALSE(parse("").network[0].spike_train_rule);
  try {
    (void)parse(", backward: chip");
    FAIL("no error");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("'chip' is not one of measured") != std::string::npos);
  }
}

TEST_CASE("trainer: a chip that stops returning events mid-batch stops training, no update applied") {
  auto s = test::active_sim(kChip + "&gap=none&faults=truncate:1&timeout_ms=20&retries=1");
  const Vector theta = levels(*s.driver, 11);
  Network net;
  net.add_physical("chip", *s.driver, s.driver->nominal_twin(), theta);
  Dataset data{"probe", inputs(30, 12), Eigen::VectorXi::Zero(30), 3};
  TrainOptions o;
  o.method = PatConfig{};
  o.batch_size = 10;
  o.epochs = 1;
  o.evaluate_each_epoch = false;
  Trainer trainer(net, o);
  const auto fitted = trainer.fit(data, nullptr);
  REQUIRE_FALSE(fitted);
  CHECK(fitted.error().code == drivers::Errc::kTimeout);
  CHECK(fitted.error().message.find("layer 'chip'") != std::string::npos);
  CHECK(net.layers()[0].theta == theta);
  CHECK(s.driver->health() == drivers::Health::kFault);
}

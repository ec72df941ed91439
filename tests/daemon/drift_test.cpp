// The drift monitor (issue 13 item 4): the rolling NMSE between a device's twin and what it
// measured, the WARNING past devices.NAME.drift.warn_nmse, the restart after a calibration, and
// the simulators' drift= option that makes a device drift.
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>

#include "../../daemon/src/drift.hpp"
#include "daemon_test_util.hpp"
#include "pnn/drivers/registry.hpp"

namespace pnn::daemon::test {

namespace {

using detail::DriftMonitor;
using detail::DriftSample;

// Forward of `rows` samples with inputs spread over [lo, lo + rows·step) (a varied batch).
v1::Request spread_forward(const std::string& device, const std::string& token, int rows,
                           double lo, double step, double theta) {
  v1::Request r;
  auto* f = r.mutable_forward();
  f->set_device(device);
  f->mutable_x()->add_shape(static_cast<std::uint32_t>(rows));
  f->mutable_x()->add_shape(1);
  for (int i = 0; i < rows; ++i) f->mutable_x()->add_data(static_cast<float>(lo + step * i));
  f->mutable_theta()->add_data(theta);
  return with_token(r, token);
}

DriftConfig drift_config(std::uint32_t window, double warn) {
  DriftConfig d;
  d.every_ms = 0;
  d.window = window;
  d.warn_nmse = warn;
  return d;
}

}  // namespace

TEST_CASE("drift monitor: NMSE of a perfect twin is 0 and of a mean predictor is 1") {
  DriftMonitor m(drift_config(2, 0.0));
  const auto now = DriftMonitor::Clock::now();
  Matrix x(4, 1), y(4, 1);
  x << 1, 2, 3, 4;
  y << 1, 2, 3, 4;
  auto s = m.take(x, Vector::Zero(1), y, now);
  REQUIRE(s);
  CHECK_FALSE(m.add(*s, y));
  CHECK(m.snapshot().samples == 1);
  CHECK(m.snapshot().nmse == doctest::Approx(0.0));
  s = m.take(x, Vector::Zero(1), y, now);
  REQUIRE(s);
  (void)m.add(*s, Matrix::Constant(4, 1, 2.5));  // the mean of the readings
  // Σ‖mean − y‖² over the window = 5 (second batch); Σ‖y − ȳ‖² = 10 (both batches).
  CHECK(m.snapshot().nmse == doctest::Approx(0.5));
  CHECK(m.snapshot().baseline_set);  // the window (2) is full
  CHECK(m.snapshot().baseline_nmse == doctest::Approx(0.5));
}

TEST_CASE("drift monitor: each output is normalised about its own mean, as twin_nmse is") {
  DriftMonitor m(drift_config(1, 0.0));
  const auto now = DriftMonitor::Clock::now();
  // Two outputs far apart: readings (1, 101), (3, 103). Each output's own variance is 2 + 2 = 4;
  // about one pooled mean (52) it would be ≈ 10⁴ and hide a bad twin.
  Matrix x(2, 1), y(2, 2), twin(2, 2);
  x << 0, 1;
  y << 1, 101, 3, 103;
  twin << 2, 102, 2, 102;  // each output's mean: no better than the mean predictor
  auto s = m.take(x, Vector::Zero(1), y, now);
  REQUIRE(s);
  (void)m.add(*s, twin);
  CHECK(m.snapshot().nmse == doctest::Approx(1.0));
  // A sample of another width starts the window afresh.
  Matrix y1(2, 1);
  y1 << 1, 3;
  s = m.take(x, Vector::Zero(1), y1, now + std::chrono::seconds(10));
  REQUIRE(s);
  (void)m.add(*s, y1);
  CHECK(m.snapshot().samples == 1);
  CHECK(m.snapshot().nmse == doctest::Approx(0.0));
}

TEST_CASE("drift monitor: sampling is rate limited, one in flight, and a twin change drops it") {
  DriftConfig c = drift_config(4, 0.0);
  c.every_ms = 1000;
  c.max_rows = 2;
  DriftMonitor m(c);
  const auto t0 = DriftMonitor::Clock::now();
  const Matrix x = Matrix::Ones(5, 1), y = Matrix::Ones(5, 1);
  auto s = m.take(x, Vector::Zero(1), y, t0);
  REQUIRE(s);
  CHECK(s->x.rows() == 2);  // max_rows
  CHECK_FALSE(m.take(x, Vector::Zero(1), y, t0 + std::chrono::seconds(2)));  // one in flight
  m.abandon();
  CHECK_FALSE(m.take(x, Vector::Zero(1), y, t0 + std::chrono::milliseconds(500)));  // every_ms
  auto s2 = m.take(x, Vector::Zero(1), y, t0 + std::chrono::seconds(2));
  REQUIRE(s2);
  m.twin_changed();
  CHECK_FALSE(m.add(*s2, s2->y));  // taken under the old twin: dropped
  CHECK(m.snapshot().samples == 0);
  auto s3 = m.take(x, Vector::Zero(1), y, t0 + std::chrono::seconds(4));
  REQUIRE(s3);
  CHECK_FALSE(m.add(*s3, Matrix::Constant(2, 1, std::nan(""))));  // non-finite: dropped
  CHECK(m.dropped_nonfinite() == 1);
  CHECK(m.snapshot().samples == 0);
}

TEST_CASE("drift monitor: the bound is crossed only on a full window and names the fix") {
  DriftMonitor m(drift_config(2, 0.1));
  const auto now = DriftMonitor::Clock::now();
  Matrix x(2, 1), y(2, 1);
  x << 0, 1;
  y << 0, 1;
  auto s = m.take(x, Vector::Zero(1), y, now);
  CHECK_FALSE(m.add(*s, Matrix::Constant(2, 1, 0.5)));  // NMSE 1, but the window is not full
  CHECK_FALSE(m.snapshot().over_bound);
  s = m.take(x, Vector::Zero(1), y, now);
  CHECK(m.add(*s, Matrix::Constant(2, 1, 0.5)));  // full and past 0.1: changed
  CHECK(m.snapshot().over_bound);
  const std::string w = detail::drift_warning(m.snapshot(), "osc-a");
  CHECK(w.find("devices.osc-a.drift.warn_nmse") != std::string::npos);
  CHECK(w.find("recalibrate") != std::string::npos);
  m.twin_changed();
  CHECK_FALSE(m.snapshot().over_bound);
  CHECK(detail::drift_warning(m.snapshot(), "osc-a").empty());
}

TEST_CASE("sim drift=: the readings' gain grows by R per 1,000 samples, across reconnects") {
  auto drifting = drivers::make_physical_system("sim://power-law?prefactor=2&drift=0.5");
  auto steady = drivers::make_physical_system("sim://power-law?prefactor=2");
  for (auto* d : {drifting.get(), steady.get()}) {
    REQUIRE(d->configure());
    REQUIRE(d->activate());
  }
  const Matrix x = Matrix::Constant(100, 1, 1.5);
  const Vector theta = Vector::Constant(1, 1.2);
  for (int call = 0; call < 3; ++call) {
    auto a = drifting->forward(x, theta);
    auto b = steady->forward(x, theta);
    REQUIRE(a);
    REQUIRE(b);
    // Rows of one batch share the gain of the samples run before it: 100 per call.
    const double gain = 1.0 + 0.5 * (100.0 * call) / 1000.0;
    CHECK(a.value()(0, 0) == doctest::Approx(gain * b.value()(0, 0)).epsilon(1e-9));
  }
  REQUIRE(drifting->recover());  // reconnect: the instrument keeps drifting from where it was
  REQUIRE(drifting->activate());
  auto a = drifting->forward(x, theta);
  auto b = steady->forward(x, theta);
  REQUIRE(a);
  CHECK(a.value()(0, 0) == doctest::Approx(1.15 * b.value()(0, 0)).epsilon(1e-9));
  for (const char* bad : {"sim://power-law?drift=nan", "sim://power-law?drift=2",
                          "sim://power-law?drift=fast"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(drivers::make_physical_system(bad), std::invalid_argument);
  }
}

TEST_CASE("daemon drift: a drifting device goes WARNING past warn_nmse, a calibration clears it") {
  TempDir dir("drift-warn");
  DaemonConfig c = test_config(dir);
  c.devices = {device("power", "sim://power-law?prefactor=2&drift=0.2"),
               device("steady", "sim://power-law?prefactor=2&serial=SIM-POW-STEADY")};
  c.devices[0].drift = drift_config(5, 0.05);
  c.devices[1].drift = drift_config(5, 0.05);
  RunningServer s(c);
  auto client = make_client(s.rpc(), "drifter");
  const std::string token = acquire_token(*client, "power");
  const std::string steady_token = acquire_token(*client, "steady");
  auto info = [&](const std::string& name) { return describe_device(*client, name); };

  // Every forward is sampled (every_ms 0) once the previous sample is evaluated.
  auto forward_until = [&](const std::string& name, const std::string& lease,
                           const std::function<bool(const v1::DeviceInfo&)>& done) {
    for (int k = 0; k < 600; ++k) {
      const v1::Reply r = client->call(spread_forward(name, lease, 64, 0.5, 0.02, 1.5));
      REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
      if (done(info(name))) return true;
    }
    return false;
  };
  // The first window: each forward waits for its own sample's evaluation (on the compute pool)
  // before the next, so the window holds exactly the first five forwards however slow that
  // evaluation is (under a sanitizer, forwards sent meanwhile would pass unsampled while the
  // device drifts on, and the baseline would depend on the machine's speed).
  for (std::uint64_t k = 1; k <= 5; ++k) {
    const v1::Reply r = client->call(spread_forward("power", token, 64, 0.5, 0.02, 1.5));
    REQUIRE_MESSAGE(r.status().code() == v1::OK, status_text(r));
    REQUIRE_MESSAGE(eventually([&] { return info("power").drift().samples() == k; }, 10s),
                    "sample " << k << " was not evaluated within 10 s");
  }
  const v1::DeviceInfo early = info("power");
  CHECK(early.drift().enabled());
  CHECK(early.drift().window() == 5);
  CHECK(early.drift().baseline_nmse() > 0.0);
  CHECK(early.drift().baseline_nmse() < 0.05);  // the twin still explains the device
  CHECK(early.health() == v1::HEALTH_OK);

  REQUIRE(forward_until("power", token, [](const v1::DeviceInfo& d) { return d.drift().over_bound(); }));
  const v1::DeviceInfo warned = info("power");
  CHECK(warned.health() == v1::HEALTH_WARNING);
  CHECK(warned.drift().nmse() > 0.05);
  CHECK(warned.health_message().find("twin drift") != std::string::npos);
  CHECK(warned.health_message().find("devices.power.drift.warn_nmse") != std::string::npos);
  CHECK(warned.state() == v1::ACTIVE);  // a warning, not a fault: forwards still run

  // The steady device over as many samples stays within the bound.
  REQUIRE(forward_until("steady", steady_token, [](const v1::DeviceInfo& d) { return d.drift().samples() == 5; }));
  for (int k = 0; k < 10; ++k) (void)client->call(spread_forward("steady", steady_token, 64, 0.5, 0.02, 1.5));
  const v1::DeviceInfo calm = info("steady");
  CHECK(calm.drift().nmse() < 1e-3);
  CHECK_FALSE(calm.drift().over_bound());
  CHECK(calm.health() == v1::HEALTH_OK);

  // A calibration gives a new twin: the window restarts and the warning goes.
  v1::Request cal;
  cal.mutable_calibrate()->set_device("power");
  const v1::Reply calibrated = client->call(with_token(cal, token));
  REQUIRE_MESSAGE(calibrated.status().code() == v1::OK, status_text(calibrated));
  const v1::DeviceInfo after = info("power");
  CHECK_FALSE(after.drift().over_bound());
  CHECK(after.health() == v1::HEALTH_OK);
  CHECK(after.drift().samples() < 5);
}

TEST_CASE("daemon drift: drift: false turns the monitor off") {
  TempDir dir("drift-off");
  DaemonConfig c = test_config(dir);
  c.devices = {device("power", "sim://power-law?prefactor=2&drift=0.5")};
  c.devices[0].drift.enabled = false;
  RunningServer s(c);
  auto client = make_client(s.rpc(), "off");
  const std::string token = acquire_token(*client, "power");
  for (int k = 0; k < 20; ++k) {
    REQUIRE(client->call(spread_forward("power", token, 64, 0.5, 0.02, 1.5)).status().code() == v1::OK);
  }
  const v1::DeviceInfo d = describe_device(*client, "power");
  CHECK_FALSE(d.drift().enabled());
  CHECK(d.drift().samples() == 0);
  CHECK(d.health() == v1::HEALTH_OK);
}

}  // namespace pnn::daemon::test

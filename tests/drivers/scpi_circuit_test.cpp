// The electronic-circuit driver against the simulated SCPI AWG + digitizer, over the loopback
// and over TCP: readings equal to the reality simulator's, hard limits that never reach the
// instrument, the lifecycle and the safe state, retries after lost and late replies, and injected
// faults from the address's faults= plan (drops, corruption, NaN, reset, unplug).
#include "pnn/drivers/scpi_circuit.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <thread>

#include "../../drivers/sim/src/circuit_instrument.hpp"
#include "pnn/drivers/sim_instrument.hpp"
#include "pnn/firmware_iface/tcp_transport.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;
using namespace std::chrono_literals;
namespace fw = pnn::firmware_iface;

namespace {

double max_abs(const MatrixRef& m) { return m.cwiseAbs().maxCoeff(); }

// The error message of a failed result ("" on success: doctest may format messages of passes).
template <class R>
std::string why(const R& r) {
  return r ? std::string() : r.error().message;
}

// Passes the instrument's replies through, losing or delaying the ones a test asks for.
class Flaky final : public fw::DeviceEndpoint {
 public:
  explicit Flaky(std::shared_ptr<fw::DeviceEndpoint> inner) : inner_(std::move(inner)) {}
  std::atomic<int> drop_replies{0};  // the next N replies are lost
  std::atomic<int> late_replies{0};  // the next N replies come late_by late
  std::chrono::milliseconds late_by{0};

  void receive(std::span<const std::uint8_t> bytes, fw::Clock::time_point now,
               std::deque<fw::DeviceOutput>& out) override {
    std::deque<fw::DeviceOutput> replies;
    inner_->receive(bytes, now, replies);
    for (auto& r : replies) {
      if (drop_replies > 0) {
        --drop_replies;
        continue;
      }
      if (late_replies > 0) {
        --late_replies;
        r.ready_at += late_by;
      }
      out.push_back(std::move(r));
    }
  }
  bool connected(fw::Clock::time_point now) override { return inner_->connected(now); }
  void on_open(fw::Clock::time_point now) override { inner_->on_open(now); }
  void on_clear() override { inner_->on_clear(); }
  std::string name() const override { return inner_->name(); }

 private:
  std::shared_ptr<fw::DeviceEndpoint> inner_;
};

// The driver over the loopback to an instrument the test keeps a handle to.
struct Rig {
  std::shared_ptr<sim::CircuitInstrument> instrument;
  std::shared_ptr<Flaky> link;
  PhysicalSystemPtr dev;

  explicit Rig(const std::string& address) {
    const auto a = DeviceAddress::parse(address);
    instrument = sim::make_circuit_instrument(a);
    link = std::make_shared<Flaky>(instrument);
    dev = make_scpi_circuit_over(a, fw::make_loopback_transport(link));
  }
  void activate() {
    auto c = dev->configure();
    REQUIRE_MESSAGE(c, why(c));
    auto a = dev->activate();
    REQUIRE_MESSAGE(a, why(a));
  }
};

// What the driver should read: the reality simulator with the same hidden components, played
// the waveform the driver composes (levels rounded to DAC codes), windows averaged, through
// float32 as the digitizer sends them.
struct Reference {
  sim::CircuitReality reality;
  explicit Reference(const std::string& serial)
      : reality(sim::CircuitRealityConfig{.seed = sim::serial_seed(serial)}) {}
  Matrix measure(const MatrixRef& x, const VectorRef& theta) {
    const auto dac = [](double v) {
      return sim::CircuitInstrument::dac_volts(static_cast<int>(std::lround(v / 10.0 * 32767)));
    };
    const Index k = x.cols();
    Matrix drive(x.rows(), 2 * k);
    for (Index r = 0; r < x.rows(); ++r) {
      for (Index s = 0; s < k; ++s) {
        drive(r, 2 * s) = dac(x(r, s));
        drive(r, 2 * s + 1) = dac(theta[s]);
      }
    }
    const Matrix samples = reality.acquire(drive, 1e-6, 1e-6);
    Matrix y(x.rows(), k);
    for (Index r = 0; r < x.rows(); ++r) {
      for (Index w = 0; w < k; ++w) {
        y(r, w) = 0.5 * (static_cast<double>(static_cast<float>(samples(r, 2 * w))) +
                         static_cast<double>(static_cast<float>(samples(r, 2 * w + 1))));
      }
    }
    return y;
  }
};

}  // namespace

TEST_CASE("scpi circuit driver: forward reads what the reality simulator measures") {
  Rig rig("sim://electronic-circuit?seed=5&slots=6");
  rig.activate();
  Reference ref("SIM-RLC-5");
  const Matrix x = test::random_matrix(5, 6, 0.5, 1);
  const Vector theta = test::random_matrix(6, 1, 1.0, 2);
  for (int call = 0; call < 2; ++call) {  // the lab clock and noise stream move on together
    auto y = rig.dev->forward(x, theta);
    REQUIRE_MESSAGE(y, why(y));
    const Matrix expected = ref.measure(x, theta);
    CHECK(max_abs(y.value() - expected) < 1e-9);
  }
  const Matrix y_twin = rig.dev->nominal_twin()->forward(x, theta);
  const Matrix y = rig.dev->forward(x, theta).value();
  INFO("gap to the twin " << max_abs(y - y_twin) << " V");
  CHECK(max_abs(y - y_twin) > 20 * rig.dev->spec().output_noise_std);
  const auto st = rig.instrument->status();
  CHECK(st.acquisitions == 3);
  CHECK(st.runs == 15);
  CHECK(rig.instrument->num_errors() == 0);
  CHECK(rig.dev->health() == Health::kOk);
}

TEST_CASE("scpi circuit driver: levels at the limit never trip the AWG's own limit check") {
  Rig rig("sim://electronic-circuit?seed=1&slots=4&vmax=2");
  const auto& spec = rig.dev->spec();
  CHECK(spec.input_max == 2.0);
  CHECK(spec.param_min()[3] == -2.0);
  rig.activate();
  const auto st = rig.instrument->status();
  CHECK(st.limits_on);
  CHECK(st.limit_low_v == -2.0);
  CHECK(st.limit_high_v == 2.0);
  // Every level exactly at ±vmax, where naive rounding to the nearest code would overshoot.
  Matrix x(4, 4);
  x << 2, -2, 2, -2, -2, 2, -2, 2, 1.99999, -1.99999, 0, 0, 2, 2, 2, 2;
  const Vector theta = Vector::Constant(4, 2.0);
  auto y = rig.dev->forward(x, theta);
  REQUIRE_MESSAGE(y, why(y));
  CHECK(rig.dev->forward(x, -theta));
  CHECK(rig.instrument->status().out_of_range == 0);
  CHECK(rig.instrument->num_errors() == 0);
  CHECK(rig.instrument->status().acquisitions == 2);
  // Beyond the limit: refused by the driver, nothing reaches the instrument.
  Vector over = theta;
  over[1] = 2.001;
  auto r = rig.dev->forward(x, over);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(rig.instrument->status().acquisitions == 2);
  CHECK(rig.instrument->fault_stats().commands > 0);

  CHECK_THROWS_WITH_AS(make_physical_system("sim://electronic-circuit?vmax=12"),
                       doctest::Contains("vmax"), std::invalid_argument);
  CHECK_THROWS_AS(make_physical_system("sim://electronic-circuit?vmax=0"), std::invalid_argument);
}

TEST_CASE("scpi circuit driver: lifecycle, deactivate and shutdown switch the AWG output off") {
  Rig rig("sim://electronic-circuit?seed=2&slots=3");
  CHECK(rig.dev->spec().serial.starts_with("sim://"));  // not identified yet
  REQUIRE(rig.dev->configure());
  CHECK(rig.dev->spec().serial == "SIM-RLC-2");
  CHECK(rig.dev->spec().firmware == "1.0-sim");
  CHECK(rig.dev->spec().model.starts_with("PNN-HIL AWGDIG-100"));
  CHECK_FALSE(rig.instrument->status().output_on);
  const Matrix x = Matrix::Constant(2, 3, 0.5);
  const Vector theta = Vector::Zero(3);
  CHECK(rig.dev->forward(x, theta).error().code == Errc::kWrongState);
  CHECK(rig.instrument->status().acquisitions == 0);
  REQUIRE(rig.dev->activate());
  CHECK(rig.instrument->status().output_on);
  REQUIRE(rig.dev->forward(x, theta));
  REQUIRE(rig.dev->deactivate());
  CHECK_FALSE(rig.instrument->status().output_on);
  REQUIRE(rig.dev->cleanup());
  REQUIRE(rig.dev->configure());  // reconnects and re-identifies
  REQUIRE(rig.dev->activate());
  CHECK(rig.instrument->status().output_on);
  rig.dev->shutdown();
  CHECK(rig.dev->state() == Lifecycle::kFinalized);
  CHECK_FALSE(rig.instrument->status().output_on);
  CHECK(rig.instrument->num_errors() == 0);
}

TEST_CASE("scpi circuit driver: a lost reply is retried once (WARNING), twice lost is kTimeout") {
  Rig rig("sim://electronic-circuit?seed=6&slots=4&timeout_ms=50");
  rig.activate();
  Reference ref("SIM-RLC-6");
  const Matrix x = test::random_matrix(3, 4, 0.5, 3);
  const Vector theta = test::random_matrix(4, 1, 0.5, 4);
  rig.link->drop_replies = 1;  // the *OPC? after the trigger
  auto y = rig.dev->forward(x, theta);
  REQUIRE_MESSAGE(y, why(y));
  CHECK(rig.dev->health() == Health::kWarning);
  // The first acquisition ran but its reply was lost; the retry measured anew.
  (void)ref.measure(x, theta);
  CHECK(max_abs(y.value() - ref.measure(x, theta)) < 1e-9);
  CHECK(rig.instrument->status().acquisitions == 2);

  rig.link->drop_replies = 2;  // the reply, and the one of the retry's resynchronisation
  auto r = rig.dev->forward(x, theta);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kTimeout);
  CHECK(r.error().message.find("within 50 ms") != std::string::npos);
  CHECK(rig.dev->health() == Health::kFault);
  // A FAULTed device must be reconfigured before it is driven again.
  REQUIRE(rig.dev->deactivate());
  CHECK(rig.dev->activate().error().code == Errc::kDeviceFault);
  REQUIRE(rig.dev->cleanup());
  rig.activate();
  CHECK(rig.dev->forward(x, theta));
  CHECK(rig.dev->health() == Health::kOk);
}

TEST_CASE(
    "scpi circuit driver: faults=drop and corrupt give retries, clean errors, never a crash") {
  Rig rig("sim://electronic-circuit?seed=7&slots=4&timeout_ms=20&faults=drop:0.01,corrupt:0.02");
  rig.activate();
  const Matrix x = test::random_matrix(4, 4, 0.5, 5);
  const Vector theta = test::random_matrix(4, 1, 0.5, 6);
  int ok = 0, failed = 0;
  for (int i = 0; i < 60; ++i) {
    auto y = rig.dev->forward(x, theta);
    if (y) {
      ++ok;
      CHECK(y.value().allFinite());
      CHECK(max_abs(y.value()) <= 5.01);
      continue;
    }
    ++failed;
    const auto code = y.error().code;
    INFO(y.error().message);
    CHECK((code == Errc::kTimeout || code == Errc::kIo || code == Errc::kDeviceFault ||
           code == Errc::kNonFiniteReading));
    CHECK_FALSE(y.error().message.empty());
    CHECK(rig.dev->health() != Health::kOk);
    auto back = rig.dev->recover();  // a FAULTed device refuses forward until recovered
    REQUIRE_MESSAGE(back, why(back));
    REQUIRE(rig.dev->activate());
  }
  const auto stats = rig.instrument->fault_stats();
  INFO(ok << " ok, " << failed << " failed; dropped " << stats.dropped << ", corrupted "
          << stats.corrupted);
  CHECK(stats.dropped > 0);
  CHECK(stats.corrupted > 0);
  CHECK(ok >= 48);  // most faults are recovered by the one retry (54 of 60 with these seeds)
  CHECK(failed >= 1);
  CHECK(rig.instrument->status().out_of_range == 0);
}

TEST_CASE("scpi circuit driver: NaN readings are kNonFinite with health WARNING") {
  Rig rig("sim://electronic-circuit?seed=1&slots=4&faults=nan:1");
  rig.activate();
  auto y = rig.dev->forward(Matrix::Constant(2, 4, 0.3), Vector::Zero(4));
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kNonFiniteReading);
  CHECK(rig.dev->health() == Health::kWarning);
  CHECK(rig.instrument->fault_stats().nans >= 1);
}

TEST_CASE("scpi circuit driver: an instrument reset mid-batch is detected and reported") {
  // Configure and activate take 24 commands and a forward 11, so this lands in the second batch.
  Rig rig("sim://electronic-circuit?seed=3&slots=4&faults=reset_after:40");
  rig.activate();
  const Matrix x = test::random_matrix(2, 4, 0.5, 7);
  const Vector theta = Vector::Zero(4);
  int good = 0;
  Result<Matrix> y = make_error(Errc::kOk, "not run");
  for (int i = 0; i < 10; ++i) {
    y = rig.dev->forward(x, theta);
    if (!y) break;
    ++good;
  }
  REQUIRE_FALSE(y);
  INFO(y.error().message);
  CHECK(good >= 1);
  CHECK(y.error().code == Errc::kDeviceFault);
  CHECK(y.error().message.find("reset itself") != std::string::npos);
  CHECK(rig.dev->health() == Health::kFault);
  CHECK_FALSE(rig.instrument->status().output_on);
  CHECK(rig.instrument->fault_stats().resets == 1);
  // Recovery: deactivate, cleanup, configure (which restores the limits), activate.
  REQUIRE(rig.dev->deactivate());
  REQUIRE(rig.dev->cleanup());
  rig.activate();
  CHECK(rig.instrument->status().limits_on);
  CHECK(rig.dev->forward(x, theta));
}

TEST_CASE(
    "scpi circuit driver: unplugged is kIo, no false safe state, recover lands INACTIVE") {
  Rig rig(
      "sim://electronic-circuit?seed=4&slots=4&timeout_ms=100&faults=unplug_after:40,"
      "unplug_ms:300");
  rig.activate();
  const Matrix x = test::random_matrix(2, 4, 0.5, 8);
  const Vector theta = Vector::Zero(4);
  Result<Matrix> y = make_error(Errc::kOk, "not run");
  for (int i = 0; i < 10; ++i) {
    y = rig.dev->forward(x, theta);
    if (!y) break;
  }
  REQUIRE_FALSE(y);
  INFO(y.error().message);
  CHECK(y.error().code == Errc::kIo);
  CHECK(y.error().message.find("disconnected") != std::string::npos);
  CHECK(rig.dev->health() == Health::kFault);
  // The output cannot be switched off over a lost link: deactivate says so instead of claiming
  // a safe state, and the device stays ACTIVE with health FAULT (forward refused).
  auto d = rig.dev->deactivate();
  REQUIRE_FALSE(d);
  CHECK(d.error().code == Errc::kIo);
  CHECK(d.error().message.find("could not be switched off") != std::string::npos);
  CHECK(rig.dev->state() == Lifecycle::kActive);
  CHECK(rig.dev->health() == Health::kFault);
  CHECK_FALSE(rig.dev->forward(x, theta));
  auto c = rig.dev->recover();  // still unplugged
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::kIo);
  CHECK(rig.dev->state() == Lifecycle::kUnconfigured);
  for (int i = 0; i < 300 && !c; ++i) {
    std::this_thread::sleep_for(10ms);
    c = rig.dev->configure();
  }
  REQUIRE_MESSAGE(c, why(c));
  CHECK(rig.dev->state() == Lifecycle::kInactive);
  CHECK(rig.dev->spec().serial == "SIM-RLC-4");
  CHECK_FALSE(rig.instrument->status().output_on);  // it came back power-cycled
  CHECK(rig.instrument->num_power_ons() == 2);
  REQUIRE(rig.dev->activate());
  CHECK(rig.dev->forward(x, theta));
}

TEST_CASE("scpi circuit driver over TCP: same readings as the loopback, late replies resynced") {
  auto instrument = make_simulated_instrument("sim://electronic-circuit?seed=9&slots=4");
  auto flaky = std::make_shared<Flaky>(instrument);
  fw::TcpDeviceServer server(flaky, {});
  auto tcp = make_physical_system("tcp://" + server.address() +
                                  "?kind=electronic-circuit&slots=4&timeout_ms=500");
  auto local = make_physical_system("sim://electronic-circuit?seed=9&slots=4");
  for (auto* dev : {&tcp, &local}) {
    REQUIRE((*dev)->configure());
    REQUIRE((*dev)->activate());
  }
  CHECK(tcp->spec().serial == "SIM-RLC-9");
  const Matrix x = test::random_matrix(6, 4, 0.5, 9);
  const Vector theta = test::random_matrix(4, 1, 0.5, 10);
  const Matrix a = tcp->forward(x, theta).value();
  const Matrix b = local->forward(x, theta).value();
  CHECK(max_abs(a - b) == 0.0);

  // A reply that comes after the timeout: the retry must not take it for the next answer.
  flaky->late_by = 750ms;  // after the 500 ms timeout, well before the resync gives up
  flaky->late_replies = 1;
  auto late = tcp->forward(x, theta);
  REQUIRE_MESSAGE(late, why(late));
  CHECK(tcp->health() == Health::kWarning);
  (void)local->forward(x, theta);  // the lost acquisition, on the twin bench
  CHECK(max_abs(late.value() - local->forward(x, theta).value()) == 0.0);
  REQUIRE(tcp->deactivate());
  REQUIRE(tcp->cleanup());
  CHECK(server.num_connections() == 1);
}

TEST_CASE("scpi circuit driver over TCP: another instrument at the address is kIdentityMismatch") {
  auto first = std::make_unique<fw::TcpDeviceServer>(
      make_simulated_instrument("sim://electronic-circuit?seed=1"), fw::TcpDeviceServer::Options{});
  const std::uint16_t port = first->port();
  const std::string address =
      "tcp://127.0.0.1:" + std::to_string(port) + "?kind=electronic-circuit&slots=4";
  auto dev = make_physical_system(address);
  REQUIRE(dev->configure());
  CHECK(dev->spec().serial == "SIM-RLC-1");
  REQUIRE(dev->cleanup());
  first.reset();
  fw::TcpDeviceServer second(make_simulated_instrument("sim://electronic-circuit?seed=2"),
                             {.port = port});
  auto r = dev->configure();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == fw::Errc::kIdentityMismatch);
  CHECK(r.error().message.find("SIM-RLC-1") != std::string::npos);
  CHECK(r.error().message.find("SIM-RLC-2") != std::string::npos);
  CHECK(dev->state() == Lifecycle::kUnconfigured);
  auto accepted = make_physical_system(address + "&serial=SIM-RLC-2");
  CHECK(accepted->configure());
}

TEST_CASE("scpi circuit driver: addresses, and no instrument listening") {
  CHECK_THROWS_WITH_AS(make_physical_system("tcp://127.0.0.1?kind=electronic-circuit"),
                       doctest::Contains("no port"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("tcp://127.0.0.1:70000?kind=electronic-circuit"),
                       doctest::Contains("1..65535"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("tcp://127.0.0.1:5025?kind=optical-sgh"),
                       doctest::Contains("unknown kind 'optical-sgh'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      make_physical_system("tcp://127.0.0.1:5025?kind=electronic-circuit&faults=drop:1"),
      doctest::Contains("unknown option 'faults'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://electronic-circuit?timeout_ms=0"),
                       doctest::Contains("timeout_ms"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("usb://1234:5678?kind=electronic-circuit"),
                       doctest::Contains("usbtmc://"), std::invalid_argument);
  CHECK(make_simulated_instrument("sim://mechanical-oscillators?seed=1")->name() == "SIM-OSC-1");
  CHECK_THROWS_WITH_AS(make_simulated_instrument("tcp://127.0.0.1:1?kind=electronic-circuit"),
                       doctest::Contains("not a simulated instrument"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_simulated_instrument("sim://electronic-circuit?timeout_ms=3"),
                       doctest::Contains("unknown option 'timeout_ms'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_simulated_instrument("sim://electronic-circuit?faults=jam:1"),
                       doctest::Contains("unknown key 'jam'"), std::invalid_argument);

  std::uint16_t port = 0;
  {
    fw::TcpDeviceServer probe(make_simulated_instrument("sim://electronic-circuit"), {});
    port = probe.port();
  }
  auto dev = make_physical_system("tcp://127.0.0.1:" + std::to_string(port) +
                                  "?kind=electronic-circuit&slots=2");
  auto r = dev->configure();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kIo);
  CHECK(r.error().message.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  CHECK(r.error().message.find("configure again") != std::string::npos);
}

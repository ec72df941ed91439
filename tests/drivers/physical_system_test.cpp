#include "pnn/drivers/physical_system.hpp"

#include <doctest/doctest.h>

#include <future>

#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::drivers;

namespace {
using test::active_device;
PhysicalSystemPtr active(const std::string& address) { return active_device(address); }
Vector valid_theta(const PhysicalSystem& dev, double v = 0.1) {
  return Vector::Constant(dev.spec().num_params(), v);
}
}  // namespace

TEST_CASE("lifecycle: outputs only when ACTIVE, misuse is refused with the state named") {
  auto dev = make_physical_system("sim://mechanical-oscillators?seed=1&n=4");
  CHECK(dev->state() == Lifecycle::kUnconfigured);
  const Matrix x = Matrix::Constant(2, 4, 0.3);
  auto r = dev->forward(x, valid_theta(*dev));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kWrongState);
  CHECK(r.error().message.find("UNCONFIGURED") != std::string::npos);

  auto act = dev->activate();
  REQUIRE_FALSE(act);
  CHECK(act.error().code == Errc::kWrongState);

  REQUIRE(dev->configure());
  CHECK(dev->state() == Lifecycle::kInactive);
  CHECK_FALSE(dev->forward(x, valid_theta(*dev)));
  CHECK_FALSE(dev->configure());  // already configured
  REQUIRE(dev->activate());
  CHECK(dev->forward(x, valid_theta(*dev)));
  REQUIRE(dev->deactivate());
  CHECK_FALSE(dev->forward(x, valid_theta(*dev)));
  REQUIRE(dev->cleanup());
  CHECK(dev->state() == Lifecycle::kUnconfigured);
  dev->shutdown();
  CHECK(dev->state() == Lifecycle::kFinalized);
  CHECK_FALSE(dev->configure());
}

TEST_CASE("hard limits: out-of-limit θ is rejected, named, and never reaches the device") {
  auto dev = active("sim://mechanical-oscillators?seed=5&n=4");
  auto twin = active("sim://mechanical-oscillators?seed=5&n=4");  // same serial, same reality
  const Matrix x = Matrix::Constant(3, 4, 0.2);
  Vector bad = valid_theta(*dev);
  bad[6] = 1.5;  // coupling[6], limit [-1, 1]
  auto r = dev->forward(x, bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("coupling[6] = 1.5") != std::string::npos);
  CHECK(r.error().message.find("[-1, 1]") != std::string::npos);
  // The rejected call left the device untouched: its noise stream did not advance, so the next
  // valid call returns exactly what an identical fresh device returns.
  auto a = dev->forward(x, valid_theta(*dev));
  auto b = twin->forward(x, valid_theta(*twin));
  REQUIRE(a);
  REQUIRE(b);
  CHECK((a.value() - b.value()).norm() == 0.0);
  CHECK(dev->health() == Health::kOk);
}

TEST_CASE("hard limits: a value just outside a limit prints every digit that tells them apart") {
  auto dev = active("sim://mechanical-oscillators?seed=5&n=4");
  const Matrix x = Matrix::Constant(3, 4, 0.2);
  Vector bad = valid_theta(*dev);
  bad[2] = -1.0000001;  // coupling[2], limit [-1, 1]: six significant digits would print -1
  auto r = dev->forward(x, bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  INFO(r.error().message);
  CHECK(r.error().message.find("coupling[2] = -1.0000001 ") != std::string::npos);
  CHECK(r.error().message.find("outside the hard limit [-1, 1]") != std::string::npos);

  // Inputs: the actuator limit is ±π, printed so that it reads back as exactly that double.
  Matrix over = x;
  over(1, 3) = 3.1415927;  // π = 3.14159265358979..., so this is just outside
  r = dev->forward(over, valid_theta(*dev));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::kOutOfLimits);
  INFO(r.error().message);
  CHECK(r.error().message.find("input range [0.2, 3.1415927]") != std::string::npos);
  CHECK(r.error().message.find("[-3.141592653589793, 3.141592653589793]") != std::string::npos);
}

TEST_CASE("bad requests: NaN, wrong shapes, input beyond the actuator range") {
  auto dev = active("sim://mechanical-oscillators?seed=2&n=3");
  const Vector theta = valid_theta(*dev);
  Matrix x = Matrix::Constant(2, 3, 0.1);
  CHECK(dev->forward(Matrix::Zero(2, 4), theta).error().code == Errc::kShapeMismatch);
  CHECK(dev->forward(x, Vector::Zero(5)).error().code == Errc::kShapeMismatch);
  Vector nan_theta = theta;
  nan_theta[0] = std::nan("");
  CHECK(dev->forward(x, nan_theta).error().code == Errc::kNonFiniteRequest);
  x(1, 2) = std::numeric_limits<double>::infinity();
  CHECK(dev->forward(x, theta).error().code == Errc::kNonFiniteRequest);
  x(1, 2) = 4.0;  // beyond ±π rad
  auto r = dev->forward(x, theta);
  CHECK(r.error().code == Errc::kOutOfLimits);
  CHECK(r.error().message.find("actuator limit") != std::string::npos);
  CHECK(dev->forward(Matrix::Zero(5000, 3), theta).error().code == Errc::kBatchTooLarge);
}

TEST_CASE("simulated oscillators: reality differs from the twin, more at the large gap") {
  // Uniform inputs would hide the coupling error (rows of Q sum to zero), so use varied ones.
  const Matrix x = Matrix::Random(64, 16);
  double gap_small = 0, gap_large = 0;
  for (const char* gap : {"small", "large"}) {
    auto dev = active(std::string("sim://mechanical-oscillators?seed=3&n=16&gap=") + gap);
    const Vector theta = dev->nominal_twin()->initial_params(1);
    const Matrix y_twin = dev->nominal_twin()->forward(x, theta);
    const Matrix y_real = dev->forward(x, theta).value();
    const double rms = std::sqrt((y_real - y_twin).squaredNorm() / y_twin.size());
    (std::string(gap) == "small" ? gap_small : gap_large) = rms;
  }
  CHECK(gap_small > 0.01);
  CHECK(gap_large > 2.0 * gap_small);
}

TEST_CASE("simulated devices are seeded by serial: same serial same reality, other serial differs") {
  const Matrix x = Matrix::Constant(4, 8, 0.4);
  auto run = [&](const std::string& addr) {
    auto dev = active(addr);
    return dev->forward(x, valid_theta(*dev, 0.05)).value();
  };
  const Matrix a = run("sim://mechanical-oscillators?seed=7&n=8");
  const Matrix b = run("sim://mechanical-oscillators?seed=7&n=8");
  const Matrix c = run("sim://mechanical-oscillators?seed=8&n=8");
  CHECK((a - b).norm() == 0.0);
  CHECK((a - c).norm() > 1e-3);
}

TEST_CASE("device addresses: unknown scheme, kind or option gives a clear error") {
  CHECK_THROWS_WITH_AS(make_physical_system("mechanical-oscillators"), doctest::Contains("no scheme"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://laser"), doctest::Contains("known: mechanical-oscillators"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-oscillators?sead=3"),
                       doctest::Contains("unknown option 'sead'"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-oscillators?n=abc"),
                       doctest::Contains("not an integer"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-oscillators?gap=huge"),
                       doctest::Contains("small, large"), std::invalid_argument);
  const auto spec = make_physical_system("sim://mechanical-oscillators?seed=4&n=5")->spec();
  CHECK(spec.num_params() == 30);
  CHECK(spec.param_name(26) == "drive[1]");
  CHECK(spec.describe().find("coupling") != std::string::npos);
}

namespace {

// A driver whose hooks throw on demand: stands for a driver bug or an allocation failure.
class ThrowingDevice final : public pnn::drivers::PhysicalSystem {
 public:
  ThrowingDevice() : PhysicalSystem(spec()) {}
  pnn::digital_twin::ModelPtr nominal_twin() const override { return nullptr; }
  bool throw_forward = false, throw_configure = false, throw_safe_state = false;
  int cleanups = 0;

 private:
  static pnn::drivers::DeviceSpec spec() {
    pnn::drivers::DeviceSpec s;
    s.kind = "test";
    s.model = "THROWER";
    s.serial = "T-1";
    s.num_inputs = 1;
    s.num_outputs = 1;
    s.input_min = -1.0;
    s.input_max = 1.0;
    s.max_batch = 16;
    return s;
  }
  pnn::drivers::Result<void> do_configure() override {
    if (throw_configure) throw std::runtime_error("configure blew up");
    return {};
  }
  pnn::drivers::Result<void> do_safe_state() override {
    if (throw_safe_state) throw std::runtime_error("safe state blew up");
    return {};
  }
  pnn::drivers::Result<void> do_cleanup() override {
    ++cleanups;
    return {};
  }
  pnn::drivers::Result<pnn::Matrix> do_forward(const pnn::MatrixRef& x,
                                               const pnn::VectorRef&) override {
    if (throw_forward) throw std::runtime_error("forward blew up");
    return pnn::Matrix(x);
  }
};

}  // namespace

TEST_CASE("physical system: a driver that throws is a device fault and never escapes") {
  using pnn::drivers::Errc;
  using pnn::drivers::Health;
  using pnn::drivers::Lifecycle;
  ThrowingDevice dev;
  dev.throw_configure = true;
  auto c = dev.configure();
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::kDeviceFault);
  CHECK(c.error().message.find("configure blew up") != std::string::npos);
  CHECK(dev.health() == Health::kFault);
  CHECK(dev.state() == Lifecycle::kUnconfigured);
  dev.throw_configure = false;
  REQUIRE(dev.configure());
  REQUIRE(dev.activate());
  const pnn::Matrix x = pnn::Matrix::Constant(2, 1, 0.5);
  const pnn::Vector theta(0);
  REQUIRE(dev.forward(x, theta));
  dev.throw_forward = true;
  auto y = dev.forward(x, theta);
  REQUIRE_FALSE(y);
  CHECK(y.error().code == Errc::kDeviceFault);
  CHECK(y.error().message.find("forward blew up") != std::string::npos);
  CHECK(dev.health() == Health::kFault);
  CHECK_FALSE(dev.forward(x, theta));  // FAULT: refused until recovered
  // Recovery goes on when the safe state throws, and still cleans up before configuring.
  dev.throw_forward = false;
  dev.throw_safe_state = true;
  const int cleanups = dev.cleanups;
  REQUIRE(dev.recover());
  CHECK(dev.cleanups == cleanups + 1);
  CHECK(dev.state() == Lifecycle::kInactive);
  CHECK(dev.health() == Health::kOk);
  REQUIRE(dev.activate());
  dev.shutdown();  // the safe state throws again: shutdown still cleans up and finalizes
  CHECK(dev.cleanups == cleanups + 2);
  CHECK(dev.state() == Lifecycle::kFinalized);
}

namespace {
// A driver whose forward blocks until released, to watch the device from another thread.
class GatedDevice final : public PhysicalSystem {
 public:
  GatedDevice() : PhysicalSystem(spec()) {}
  static DeviceSpec spec() {
    DeviceSpec s;
    s.kind = "gated";
    s.serial = "GATE-1";
    s.num_inputs = 1;
    s.num_outputs = 1;
    s.input_min = -1;
    s.input_max = 1;
    s.params = {{"g", 1, "", -1, 1, ""}};
    return s;
  }
  digital_twin::ModelPtr nominal_twin() const override { return nullptr; }
  std::promise<void> entered, release;

 private:
  Result<Matrix> do_forward(const MatrixRef&, const VectorRef&) override {
    entered.set_value();
    release.get_future().wait();
    return make_error(Errc::kIo, "link lost during the run");
  }
};
}  // namespace

TEST_CASE("status: read while a forward holds the device, and updated when the call ends") {
  GatedDevice dev;
  REQUIRE(dev.configure());
  REQUIRE(dev.activate());
  CHECK(dev.status().state == Lifecycle::kActive);
  REQUIRE(dev.status().spec);
  CHECK(dev.status().spec->serial == "GATE-1");
  auto entered = dev.entered.get_future();
  auto call = std::async(std::launch::async, [&] { return dev.forward(Matrix::Zero(1, 1), Vector::Zero(1)); });
  REQUIRE(entered.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  // The device mutex is held by the forward: the snapshot answers at once, as of before it.
  const DeviceStatus during = dev.status();
  CHECK(during.state == Lifecycle::kActive);
  CHECK(during.health == Health::kOk);
  CHECK(dev.health() == Health::kOk);
  dev.release.set_value();
  const auto r = call.get();
  REQUIRE_FALSE(r);
  const DeviceStatus after = dev.status();
  CHECK(after.health == Health::kFault);
  CHECK(after.health_message.find("link lost") != std::string::npos);
}

TEST_CASE("sim oscillators: compute=float32 simulates in float32, other values are refused") {
  auto dev64 = active("sim://mechanical-oscillators?seed=1&n=8");
  auto dev32 = active("sim://mechanical-oscillators?seed=1&n=8&compute=float32");
  const Matrix x = Matrix::Constant(3, 8, 0.4);
  const auto y64 = dev64->forward(x, valid_theta(*dev64)), y32 = dev32->forward(x, valid_theta(*dev32));
  REQUIRE(y64);
  REQUIRE(y32);
  // Same device (serial, hidden coupling, noise streams): the readings differ by float rounding.
  CHECK((y32.value() - y64.value()).cwiseAbs().maxCoeff() < 1e-5);
  CHECK_THROWS_WITH_AS(make_physical_system("sim://mechanical-oscillators?n=8&compute=half"),
                       doctest::Contains("compute 'half' is not one of float64, float32"),
                       std::invalid_argument);
}

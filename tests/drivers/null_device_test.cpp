// sim://null: the identity device used to measure overheads.
#include <doctest/doctest.h>

#include <limits>

#include "pnn/digital_twin/gradcheck.hpp"
#include "pnn/drivers/registry.hpp"
#include "test_util.hpp"

namespace pnn::drivers {
namespace {

TEST_CASE("null device: returns its input exactly, has no parameters, and is listed") {
  auto dev = test::active_device("sim://null?inputs=784");
  const DeviceSpec& spec = dev->spec();
  CHECK(spec.kind == "null");
  CHECK(spec.serial == "SIM-NULL-1");
  CHECK(spec.num_inputs == 784);
  CHECK(spec.num_outputs == 784);
  CHECK(spec.num_params() == 0);
  const Matrix x = test::random_matrix(5, 784, 1e3, 7);
  auto y = dev->forward(x, Vector());
  REQUIRE(y);
  CHECK(y.value() == x);
  // Extreme but finite values pass; NaN and a parameter do not.
  Matrix edge = Matrix::Constant(1, 784, std::numeric_limits<float>::max());
  CHECK(dev->forward(edge, Vector()));
  edge(0, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK(dev->forward(edge, Vector()).error().code == Errc::kNonFiniteRequest);
  CHECK(dev->forward(x, Vector::Zero(1)).error().code == Errc::kShapeMismatch);

  bool listed = false;
  for (const auto& s : known_setups()) listed |= s.kind == "null";
  CHECK(listed);
  CHECK(make_physical_system("sim://null?serial=BENCH-7")->spec().serial == "BENCH-7");
  CHECK(make_physical_system("sim://null")->spec().num_inputs == 1);
}

TEST_CASE("null device: its twin is the identity, with exact gradients") {
  auto dev = make_physical_system("sim://null?inputs=6");
  const auto twin = dev->nominal_twin();
  CHECK(twin->num_inputs() == 6);
  CHECK(twin->num_outputs() == 6);
  CHECK(twin->num_params() == 0);
  const Matrix x = test::random_matrix(4, 6, 1.0, 3);
  CHECK(twin->forward(x, Vector()) == x);
  const auto report = digital_twin::check_gradients(*twin, x, Vector());
  CHECK_MESSAGE(report.max_rel_error() < 1e-6, report.summary());
}

TEST_CASE("null device: bad options are refused naming the option and the fix") {
  auto message = [](const std::string& address) {
    try {
      (void)make_physical_system(address);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  CHECK(message("sim://null?inputs=0").find("outside 1..1048576") != std::string::npos);
  CHECK(message("sim://null?inputs=two").find("not an integer") != std::string::npos);
  CHECK(message("sim://null?gain=2").find("allowed: inputs, serial") != std::string::npos);
}

}  // namespace
}  // namespace pnn::drivers

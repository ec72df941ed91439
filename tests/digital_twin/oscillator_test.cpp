#include "pnn/digital_twin/oscillator.hpp"

#include <doctest/doctest.h>


#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

#include <thread>
#include <vector>

using namespace pnn;
using namespace pnn::digital_twin;
using pnn::test::random_matrix;


TEST_CASE("coupling_to_q is symmetric with zero row sums") {
  const Matrix c = random_matrix(5, 5, 1.0, 3);
  const Matrix q = coupling_to_q(c);
  CHECK(q.isApprox(q.transpose()));
  CHECK(q.rowwise().sum().cwiseAbs().maxCoeff() < 1e-12);
  CHECK(q(0, 1) == doctest::Approx(0.5 * (c(0, 1) + c(1, 0))));
}

TEST_CASE("oscillator vjp matches central differences (5 RK4 steps)") {
  OscillatorModel model({.num_oscillators = 6, .dt = 0.1, .num_steps = 5});
  const Matrix x = random_matrix(4, 6, 0.7, 1);
  Vector theta = model.initial_params(2);
  theta.tail(6) = random_matrix(6, 1, 0.3, 5);
  const auto report = check_gradients(model, x, theta);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("oscillator vjp matches central differences at a batch that fills the SIMD row blocks") {
  // 26 rows × 11 oscillators, in shards of 13 rows (or one of 26 on one thread): the stage
  // product's two-vector, one-vector and single-row blocks (4 doubles per vector) and its 6-, 4-
  // and 1-column blocks all take part.
  OscillatorModel model({.num_oscillators = 11, .dt = 0.1, .num_steps = 4,
                         .q_extra = coupling_to_q(random_matrix(11, 11, 0.2, 31))});
  const Matrix x = random_matrix(26, 11, 0.8, 32);
  Vector theta = model.initial_params(33);
  theta.tail(11) = random_matrix(11, 1, 0.3, 34);
  const auto report = check_gradients(model, x, theta);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-5);
}

TEST_CASE("oscillator vjp matches central differences over a long integration") {
  // 200 steps of dt = 0.05 (t_end = 10): exercises the reverse sweep through many stages.
  OscillatorModel model({.num_oscillators = 4, .dt = 0.05, .num_steps = 200,
                         .kappa = 1.2, .q_extra = coupling_to_q(random_matrix(4, 4, 0.3, 9))});
  const Matrix x = random_matrix(3, 4, 1.0, 7);
  const Vector theta = random_matrix(20, 1, 0.4, 8);
  GradCheckOptions options;
  options.eps = 1e-6;
  const auto report = check_gradients(model, x, theta, options);
  INFO(report.summary());
  CHECK(report.max_rel_error() < 1e-4);
}

TEST_CASE("oscillator batch rows are independent and sharding does not change results") {
  OscillatorModel model({.num_oscillators = 8});
  const Matrix x = random_matrix(64, 8, 0.5, 11);
  const Vector theta = model.initial_params(3);
  const Matrix y = model.forward(x, theta);
  for (Index r : {0, 17, 63}) {
    CHECK((model.forward(x.row(r), theta) - y.row(r)).norm() < 1e-12);
  }
  const Matrix y_bar = random_matrix(64, 8, 1.0, 12);
  const Cotangents full = model.vjp(x, theta, y_bar);
  Vector theta_bar = Vector::Zero(model.num_params());
  for (Index r = 0; r < 64; ++r) theta_bar += model.vjp(x.row(r), theta, y_bar.row(r)).theta_bar;
  CHECK((full.theta_bar - theta_bar).norm() < 1e-9 * (1.0 + theta_bar.norm()));
}

TEST_CASE("oscillator stiffness cache follows theta: alternating theta matches fresh models") {
  // The model keeps the last θ's stiffness; a changed θ (even in one entry, or of C's diagonal,
  // which Q ignores) must never reuse a stale one, and a copy must not share it.
  const OscillatorConfig config{.num_oscillators = 6};
  OscillatorModel model(config);
  const Matrix x = random_matrix(32, 6, 0.5, 21);
  const Matrix y_bar = random_matrix(32, 6, 1.0, 22);
  const Vector a = model.initial_params(4);
  Vector b = a;
  b[1] += 0.25;  // C_01: changes Q
  for (const Vector* theta : std::initializer_list<const Vector*>{&a, &b, &a, &b}) {
    const OscillatorModel fresh(config);
    CHECK((model.forward(x, *theta) - fresh.forward(x, *theta)).norm() == 0.0);
    CHECK((model.vjp(x, *theta, y_bar).theta_bar - fresh.vjp(x, *theta, y_bar).theta_bar).norm() == 0.0);
  }
  CHECK((model.forward(x, a) - model.forward(x, b)).norm() > 1e-6);
  const OscillatorModel copy = model;
  CHECK((copy.forward(x, b) - model.forward(x, b)).norm() == 0.0);
}

TEST_CASE("oscillator with no coupling and no drive follows the pendulum equation") {
  // Small-angle pendulum: q(t) ≈ q0 cos t.
  OscillatorModel model({.num_oscillators = 1, .dt = 0.01, .num_steps = 100});
  const Matrix x = Matrix::Constant(1, 1, 1e-3);
  const Matrix y = model.forward(x, Vector::Zero(2));
  CHECK(y(0, 0) == doctest::Approx(1e-3 * std::cos(1.0)).epsilon(1e-6));
}

TEST_CASE("oscillator rejects wrong shapes with a message naming them") {
  OscillatorModel model({.num_oscillators = 3});
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 4), Vector::Zero(12)),
                       doctest::Contains("takes 3"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(model.forward(Matrix::Zero(2, 3), Vector::Zero(5)),
                       doctest::Contains("has 12"), std::invalid_argument);
  CHECK_THROWS_AS(OscillatorModel({.num_oscillators = 3, .kappa = std::nan("")}),
                  std::invalid_argument);
}

TEST_CASE("oscillator float32 compute: forward and vjp agree with float64 to float precision") {
  // A grey-box model (per-oscillator κ, stray coupling): every part of the config carries over.
  OscillatorModel model64({.num_oscillators = 40,
                           .kappas = (Vector::Random(40).array() * 0.1 + 1.0).matrix(),
                           .q_extra = coupling_to_q(random_matrix(40, 40, 0.2, 21)),
                           .phi = OscillatorPhi::kGreyBox});
  const auto model32 = model64.copy_with_compute(Precision::kFloat32);
  REQUIRE(model32 != nullptr);
  CHECK(model32->compute() == Precision::kFloat32);
  CHECK(std::string(precision_name(model32->compute())) == "float32");
  const Matrix x = random_matrix(37, 40, 1.0, 22);  // odd rows: the shards of either size
  const Vector theta = model64.initial_params(23);
  const Matrix y64 = model64.forward(x, theta), y32 = model32->forward(x, theta);
  CHECK((y32 - y64).cwiseAbs().maxCoeff() < 1e-5);
  CHECK((y32 - y64).cwiseAbs().maxCoeff() > 0.0);  // it really ran in float
  const Matrix y_bar = random_matrix(37, 40, 1.0, 24);
  const Cotangents g64 = model64.vjp(x, theta, y_bar), g32 = model32->vjp(x, theta, y_bar);
  CHECK((g32.x_bar - g64.x_bar).norm() < 1e-5 * g64.x_bar.norm());
  CHECK((g32.theta_bar - g64.theta_bar).norm() < 1e-5 * g64.theta_bar.norm());
  const Vector phi_bar64 = model64.physical_vjp(x, theta, y_bar);
  CHECK((model32->physical_vjp(x, theta, y_bar) - phi_bar64).norm() < 1e-4 * phi_bar64.norm());
  // Calibrated copies keep the precision; with_compute returns the model itself when it already
  // computes so, and a model with no float32 kernel gives null.
  CHECK(model32->with_physical_params(model32->physical_params())->compute() == Precision::kFloat32);
  CHECK(with_compute(model32, Precision::kFloat32) == model32);
  CHECK(with_compute(model32, Precision::kFloat64)->compute() == Precision::kFloat64);
  CHECK(with_compute(std::make_shared<PadModel>(3, 2), Precision::kFloat32) == nullptr);
}

TEST_CASE("oscillator float32 compute: the float32 vjp is the gradient of the float64 model") {
  // Gradient checks stay in float64: central differences of the float64 model against the
  // float32 vjp, to float32's precision.
  OscillatorModel model64({.num_oscillators = 6});
  const auto model32 = model64.copy_with_compute(Precision::kFloat32);
  const Matrix x = random_matrix(4, 6, 0.7, 31);
  Vector theta = model64.initial_params(32);
  theta.tail(6) = random_matrix(6, 1, 0.3, 33);
  const Matrix y_bar = random_matrix(4, 6, 1.0, 34);
  const Vector g32 = model32->vjp(x, theta, y_bar).theta_bar;
  const double eps = 1e-6;
  for (Index k : {Index{0}, Index{7}, Index{20}, Index{37}}) {
    Vector plus = theta, minus = theta;
    plus[k] += eps;
    minus[k] -= eps;
    const double fd = ((model64.forward(x, plus) - model64.forward(x, minus)).cwiseProduct(y_bar)).sum() / (2 * eps);
    CAPTURE(k);
    CHECK(g32[k] == doctest::Approx(fd).epsilon(1e-4).scale(1e-3));
  }
}

TEST_CASE("oscillator forward and vjp are bit-identical whichever thread runs them") {
  // The integrator's scratch arena is per thread; Eigen's vectorised reductions peel to the
  // data's alignment, so arenas aligned differently would sum in a different order. Threads
  // that hold other allocations first (shifting where their arena lands) must agree exactly.
  for (auto compute : {Precision::kFloat64, Precision::kFloat32}) {
    OscillatorModel model({.num_oscillators = 13, .num_steps = 3, .compute = compute});
    const Matrix x = random_matrix(7, 13, 0.6, 41);  // one shard: the calling thread runs it
    const Vector theta = model.initial_params(42);
    const Matrix y_bar = random_matrix(7, 13, 1.0, 43);
    const Matrix y = model.forward(x, theta);
    const Cotangents g = model.vjp(x, theta, y_bar);
    for (std::size_t shift : {8u, 24u, 40u, 56u}) {
      Matrix y_t;
      Cotangents g_t;
      std::thread t([&] {
        std::vector<char*> held;
        for (std::size_t i = 0; i < shift / 8; ++i) held.push_back(new char[shift]);
        y_t = model.forward(x, theta);
        g_t = model.vjp(x, theta, y_bar);
        for (char* h : held) delete[] h;
      });
      t.join();
      CHECK((y_t - y).cwiseAbs().maxCoeff() == 0.0);
      CHECK((g_t.x_bar - g.x_bar).cwiseAbs().maxCoeff() == 0.0);
      CHECK((g_t.theta_bar - g.theta_bar).cwiseAbs().maxCoeff() == 0.0);
    }
  }
}

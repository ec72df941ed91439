// The resistive network's physics: the settle finds the minimum of the co-content, the twin's
// implicit-function vjp agrees with finite differences, and the EP contrast of ∂E/∂θ between two
// nudged equilibria is the gradient of the cost.
#include "pnn/digital_twin/resistive_network.hpp"

#include <doctest/doctest.h>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {

ResistiveNetworkConfig small_network() {
  ResistiveNetworkConfig c;
  c.num_inputs = 12;
  c.num_hidden = 16;
  c.num_outputs = 3;
  c.diode_threshold_volts = 0.05;
  c.readout_gain = 20.0;
  return c;
}

Matrix inputs(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 1.0, seed).cwiseAbs().cwiseMin(1.0);
}

// A θ with a few strong conductances per hidden node, so that part of the diodes conduct.
Vector spread_theta(const ResistiveNetworkModel& m, std::uint64_t seed) {
  Vector theta = m.initial_params(seed);
  const Matrix r = test::random_matrix(theta.size(), 1, 1.0, seed + 7);
  for (Index i = 0; i < theta.size(); i += 5)
    theta[i] = std::min(1.0, 0.4 + 0.5 * std::abs(r(i, 0)));
  return theta;
}

Index conducting(const ResistiveNetworkConfig& c, const Matrix& nodes) {
  Index n = 0;
  for (Index r = 0; r < nodes.rows(); ++r)
    for (Index j = 0; j < c.num_hidden; ++j) n += std::abs(nodes(r, j)) > c.diode_threshold_volts;
  return n;
}

}  // namespace

TEST_CASE("resistive network: the settle reaches the minimum of the co-content (first order)") {
  const ResistiveNetworkConfig c = small_network();
  const ResistiveNetworkModel m(c);
  const Matrix x = inputs(8, c.num_inputs, 1);
  const Vector theta = spread_theta(m, 2);
  Matrix target = Matrix::Zero(8, c.num_outputs);
  target.col(1).setOnes();
  const SettleBoundary free = SettleBoundary::free();
  const SettleBoundary nudged = SettleBoundary::nudged(0.01, target);
  const SettleOutcome f = settle_network(c, m.thresholds(), x, theta, free, nullptr);
  REQUIRE(f.converged);
  const Index on = conducting(c, f.nodes);
  CAPTURE(on);
  CHECK(on > 0);                 // the diodes take part ...
  CHECK(on < 8 * c.num_hidden);  // ... and not all of them
  const Matrix clamp = f.nodes.rightCols(c.num_output_nodes()).array() + 0.01;
  const SettleBoundary clamped = SettleBoundary::clamped(clamp);
  for (const SettleBoundary* b : {&free, &nudged, &clamped}) {
    CAPTURE(to_string(b->kind));
    const SettleOutcome s = settle_network(c, m.thresholds(), x, theta, *b, &f.nodes);
    REQUIRE(s.converged);
    const Matrix g = network_energy_grad(c, m.thresholds(), x, theta, *b, s.nodes);
    // Stationary in every free node (the hidden ones, and the outputs unless clamped).
    const Index free_nodes =
        b->kind == SettleBoundary::Kind::kClamped ? c.num_hidden : c.num_nodes();
    CHECK(g.leftCols(free_nodes).cwiseAbs().maxCoeff() < 1e-9);
    if (b->kind == SettleBoundary::Kind::kClamped) {
      CHECK((s.nodes.rightCols(c.num_output_nodes()) - clamp).cwiseAbs().maxCoeff() == 0.0);
    }
    // A minimum: every perturbation of the free nodes raises E.
    const Vector e = network_energy(c, m.thresholds(), x, theta, *b, s.nodes);
    for (std::uint64_t k = 0; k < 5; ++k) {
      Matrix moved = s.nodes;
      moved.leftCols(free_nodes) += test::random_matrix(8, free_nodes, 1e-3, 10 + k);
      const Vector e1 = network_energy(c, m.thresholds(), x, theta, *b, moved);
      CHECK((e1 - e).minCoeff() > 0.0);
    }
  }
  // A warm start from the equilibrium needs one Newton step.
  CHECK(settle_network(c, m.thresholds(), x, theta, free, &f.nodes).iterations == 1);
}

TEST_CASE("resistive network: the twin's implicit-function vjp agrees with finite differences") {
  const ResistiveNetworkConfig c = small_network();
  const ResistiveNetworkModel m(c);
  const Matrix x = inputs(6, c.num_inputs, 3);
  const Vector theta = spread_theta(m, 4);
  GradCheckOptions o;
  o.eps = 1e-7;
  o.num_directions = 8;
  o.num_coordinates = 8;
  const GradCheckReport r = check_gradients(m, x, theta, o);
  INFO(r.summary());
  CHECK(r.max_rel_error_theta < 1e-4);
  CHECK(r.max_rel_error_x < 1e-4);
}

TEST_CASE("resistive network: centred EP's contrast at small beta is the gradient of the cost") {
  const ResistiveNetworkConfig c = small_network();
  const ResistiveNetworkModel m(c);
  const Matrix x = inputs(10, c.num_inputs, 5);
  const Vector theta = spread_theta(m, 6);
  Matrix target = Matrix::Zero(10, c.num_outputs);
  for (Index r = 0; r < 10; ++r) target(r, r % c.num_outputs) = 1.0;
  const SettleOutcome f =
      settle_network(c, m.thresholds(), x, theta, SettleBoundary::free(), nullptr);
  // ∂/∂θ Σ_rows ½‖logits − target‖² through the twin.
  const Vector exact = m.vjp(x, theta, readout(c, f.nodes) - target).theta_bar;
  auto contrast = [&](double beta) {
    const SettleOutcome p =
        settle_network(c, m.thresholds(), x, theta, SettleBoundary::nudged(beta, target), &f.nodes);
    const SettleOutcome n = settle_network(c, m.thresholds(), x, theta,
                                           SettleBoundary::nudged(-beta, target), &f.nodes);
    REQUIRE(p.converged);
    REQUIRE(n.converged);
    return Vector((energy_theta_grad(c, x, p.nodes) - energy_theta_grad(c, x, n.nodes)) /
                  (2.0 * beta));
  };
  for (double beta : {1e-5, 1e-4}) {
    const Vector g = contrast(beta);
    const double cosine = g.dot(exact) / (g.norm() * exact.norm());
    CAPTURE(beta);
    CHECK(cosine > 0.999);
    CHECK(g.norm() == doctest::Approx(exact.norm()).epsilon(0.02));
  }
}

TEST_CASE("resistive network: bad boundaries are named") {
  const ResistiveNetworkConfig c = small_network();
  CHECK(boundary_problem(3, 6, SettleBoundary::free(), 4).empty());
  CHECK(boundary_problem(3, 6, SettleBoundary::nudged(0.1, Matrix::Zero(4, 2)), 4)
            .find("expected 4x3 (batch × outputs)") != std::string::npos);
  CHECK(
      boundary_problem(3, 6, SettleBoundary::nudged(0.0, Matrix::Zero(4, 3)), 4).find("non-zero") !=
      std::string::npos);
  CHECK(boundary_problem(3, 6, SettleBoundary::clamped(Matrix::Zero(4, 3)), 4)
            .find("expected 4x6 (batch × output nodes)") != std::string::npos);
  Matrix nan = Matrix::Zero(4, 6);
  nan(1, 1) = std::nan("");
  CHECK(boundary_problem(3, 6, SettleBoundary::clamped(nan), 4).find("not finite") !=
        std::string::npos);
  SettleBoundary unknown;
  unknown.kind = static_cast<SettleBoundary::Kind>(7);
  CHECK(boundary_problem(3, 6, unknown, 4).find("unknown boundary kind 7") != std::string::npos);
  ResistiveNetworkConfig bad = c;
  bad.g_min_ms = 0.0;
  CHECK_THROWS_AS(ResistiveNetworkModel{bad}, std::invalid_argument);
}

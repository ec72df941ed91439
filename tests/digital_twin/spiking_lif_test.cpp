// The spiking chip's twin: event encoding, the exact discrete adjoint of the smooth network
// against finite differences, the surrogate BPTT against an independent forward-mode
// implementation, and the measured-record backward (hxtorch pattern) at the twin's own record.
#include "pnn/digital_twin/spiking_lif.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include "pnn/digital_twin/gradcheck.hpp"
#include "test_util.hpp"

using namespace pnn;
using namespace pnn::digital_twin;

namespace {

SpikingLifConfig small_chip(Surrogate s, bool smooth) {
  SpikingLifConfig c;
  c.num_features = 3;
  c.num_bias = 1;
  c.num_hidden = 7;
  c.num_outputs = 2;
  c.num_steps = 16;
  c.t_early = 1;
  c.t_late = 9;
  c.bias_step = 4;
  c.weight_scale_in = 0.06;
  c.weight_scale_out = 0.05;
  c.surrogate = s;
  c.surrogate_slope = 3.0;
  c.smooth = smooth;
  return c;
}

Matrix features(Index rows, Index cols, std::uint64_t seed) {
  return test::random_matrix(rows, cols, 1.0, seed).cwiseAbs().cwiseMin(1.0);
}

// Independent implementation: scalar loops, forward-mode tangents of every θ entry, surrogate
// σ′ in place of H′ (the same definition as the header's, written out again).
Vector naive_gradient(const SpikingLifConfig& c, const Matrix& x, const Vector& theta,
                      const Matrix& y_bar, Matrix& y_out) {
  const Index C = c.num_channels(), H = c.num_hidden, O = c.num_outputs, T = c.num_steps;
  const Index P = theta.size();
  const double a = std::exp(-c.dt_us / c.tau_syn_us), b = std::exp(-c.dt_us / c.tau_mem_us);
  const auto w_in = [&](Index h, Index ch) { return theta[h * C + ch]; };
  const auto w_out = [&](Index o, Index h) { return theta[H * C + o * H + h]; };
  const auto sprime = [&](double u) {
    const double k = c.surrogate_slope;
    if (c.surrogate == Surrogate::kFastSigmoid) return 0.5 * k / std::pow(1 + k * std::abs(u), 2);
    return 0.5 * k / (1 + std::pow(std::numbers::pi * k * u / 2, 2));
  };
  Vector grad = Vector::Zero(P);
  y_out.resize(x.rows(), O);
  for (Index r = 0; r < x.rows(); ++r) {
    Matrix s = Matrix::Zero(T, C);
    for (const auto& e : encode_events(c, x.row(r).transpose())) s(e.step, e.channel) = 1;
    std::vector<double> I(H, 0), V(H, 0), Z(H, 0), J(O, 0), U(O, 0);
    Matrix dI = Matrix::Zero(H, P), dV = Matrix::Zero(H, P), dZ = Matrix::Zero(H, P);
    Matrix dJ = Matrix::Zero(O, P), dU = Matrix::Zero(O, P);
    std::vector<double> best(O, -1e300);
    Matrix dbest = Matrix::Zero(O, P);
    for (Index t = 0; t < T; ++t) {
      for (Index h = 0; h < H; ++h) {
        double in = 0;
        dI.row(h) *= a;
        for (Index ch = 0; ch < C; ++ch) {
          in += w_in(h, ch) * s(t, ch);
          dI(h, h * C + ch) += c.weight_scale_in * s(t, ch);
        }
        I[h] = a * I[h] + c.weight_scale_in * in;
      }
      for (Index h = 0; h < H; ++h) {
        const double vn = b * V[h] * (1 - Z[h]) + (1 - b) * I[h];
        for (Index p = 0; p < P; ++p)
          dV(h, p) = b * (dV(h, p) * (1 - Z[h]) - V[h] * dZ(h, p)) + (1 - b) * dI(h, p);
        V[h] = vn;
        Z[h] = V[h] >= c.threshold ? 1.0 : 0.0;
        for (Index p = 0; p < P; ++p) dZ(h, p) = sprime(V[h] - c.threshold) * dV(h, p);
      }
      for (Index o = 0; o < O; ++o) {
        double in = 0;
        for (Index h = 0; h < H; ++h) in += w_out(o, h) * Z[h];
        J[o] = a * J[o] + c.weight_scale_out * in;
        for (Index p = 0; p < P; ++p) {
          double d = 0;
          for (Index h = 0; h < H; ++h) d += w_out(o, h) * dZ(h, p);
          dJ(o, p) = a * dJ(o, p) + c.weight_scale_out * d;
        }
        for (Index h = 0; h < H; ++h) dJ(o, H * C + o * H + h) += c.weight_scale_out * Z[h];
        U[o] = b * U[o] + (1 - b) * J[o];
        for (Index p = 0; p < P; ++p) dU(o, p) = b * dU(o, p) + (1 - b) * dJ(o, p);
        if (U[o] > best[o]) {
          best[o] = U[o];
          dbest.row(o) = dU.row(o);
        }
      }
    }
    for (Index o = 0; o < O; ++o) {
      y_out(r, o) = c.readout_scale * best[o];
      grad += c.readout_scale * y_bar(r, o) * dbest.row(o).transpose();
    }
  }
  return grad;
}

}  // namespace

TEST_CASE("spiking LIF: latency and rate encodings give sorted events in the window") {
  SpikingLifConfig c = small_chip(Surrogate::kFastSigmoid, false);
  Vector x(3);
  x << 0.0, 1.0, 0.5;
  const auto lat = encode_events(c, x);
  REQUIRE(lat.size() == 4);
  CHECK(lat[0] == InputEvent{0, 1});
  CHECK(lat[1] == InputEvent{3, 4});  // bias
  CHECK(lat[2] == InputEvent{2, 5});
  CHECK(lat[3] == InputEvent{1, 9});
  c.encoding = SpikeEncoding::kRate;
  c.max_rate_spikes = 4;
  const auto rate = encode_events(c, x);
  int per_channel[4] = {0, 0, 0, 0};
  for (std::size_t i = 0; i < rate.size(); ++i) {
    ++per_channel[rate[i].channel];
    CHECK(rate[i].step >= c.t_early);
    CHECK(rate[i].step <= c.t_late);
    if (i > 0) {
      const bool sorted = rate[i - 1].step < rate[i].step ||
                          (rate[i - 1].step == rate[i].step && rate[i - 1].channel < rate[i].channel);
      CHECK(sorted);
    }
  }
  CHECK(per_channel[0] == 0);
  CHECK(per_channel[1] == 4);
  CHECK(per_channel[2] == 2);
  CHECK(per_channel[3] == 1);
}

TEST_CASE("spiking LIF: the smooth network's discrete adjoint matches finite differences") {
  for (const Surrogate s : {Surrogate::kFastSigmoid, Surrogate::kArctan}) {
    CAPTURE(to_string(s));
    const SpikingLifModel m(small_chip(s, true));
    const Matrix x = features(5, 3, 3);
    const Vector theta = m.initial_params(4) * 1.5;
    const GradCheckReport rep = check_gradients(m, x, theta, {.eps = 1e-5});
    INFO(rep.summary());
    CHECK(rep.max_rel_error() < 1e-5);
    CHECK(rep.max_rel_error_phi < 1e-5);  // the global scales φ (calibration) as well
  }
}

TEST_CASE("spiking LIF: surrogate BPTT equals an independent forward-mode implementation") {
  for (const Surrogate s : {Surrogate::kFastSigmoid, Surrogate::kArctan}) {
    CAPTURE(to_string(s));
    const SpikingLifConfig c = small_chip(s, false);
    const SpikingLifModel m(c);
    const Matrix x = features(6, 3, 5);
    const Vector theta = m.initial_params(6) * 2.0;
    const Matrix y_bar = test::random_matrix(6, 2, 1.0, 7);
    Matrix y_naive;
    const Vector g_naive = naive_gradient(c, x, theta, y_bar, y_naive);
    const Matrix y = m.forward(x, theta);
    CHECK((y - y_naive).norm() < 1e-12 * (1.0 + y.norm()));
    const SpikeRecord rec = m.record(x, theta);
    CHECK(rec.hidden_spikes.sum() > 3.0);  // the case exercises spikes and resets
    const Vector g = m.vjp(x, theta, y_bar).theta_bar;
    CHECK(g.norm() > 0.0);
    CHECK((g - g_naive).norm() < 1e-10 * (1.0 + g_naive.norm()));
  }
}

TEST_CASE("spiking LIF: the backward at the twin's own spike record is its vjp") {
  const SpikingLifConfig c = small_chip(Surrogate::kArctan, false);
  const SpikingLifModel m(c);
  const Matrix x = features(9, 3, 8);
  const Vector theta = m.initial_params(9) * 2.0;
  const Matrix y_bar = test::random_matrix(9, 2, 1.0, 10);
  const SpikeRecord rec = m.record(x, theta);
  CHECK((max_over_time(c, rec.output_traces) - m.forward(x, theta)).norm() < 1e-12);
  const Vector g = m.vjp(x, theta, y_bar).theta_bar;
  const Vector g_rec = m.vjp_at_record(x, theta, rec, y_bar).theta_bar;
  CHECK((g - g_rec).norm() < 1e-10 * (1.0 + g.norm()));
  // A measured record that differs (the chip's outputs peaking at the last step) changes it.
  SpikeRecord other = rec;
  for (Index o = 0; o < c.num_outputs; ++o) {
    other.output_traces(0, (c.num_steps - 1) * c.num_outputs + o) = 100.0;
  }
  CHECK((m.vjp_at_record(x, theta, other, y_bar).theta_bar - g).norm() > 1e-9);
  SpikeRecord bad{Matrix::Zero(9, 3), rec.output_traces};
  CHECK_THROWS_AS(m.vjp_at_record(x, theta, bad, y_bar), std::invalid_argument);
  CHECK_THROWS_AS(m.with_physical_params(Vector{{0.0, 0.0}}), std::invalid_argument);
  const Vector phi{{std::log(0.1), std::log(0.05), std::log(8.0)}};
  const ModelPtr scaled = m.with_physical_params(phi);
  CHECK((scaled->physical_params() - phi).norm() < 1e-12);
  CHECK((scaled->forward(x, theta) - m.forward(x, theta)).norm() > 1e-6);
  SpikingLifConfig wrong = c;
  wrong.num_steps = 300;
  CHECK_THROWS_AS(SpikingLifModel{wrong}, std::invalid_argument);
}

namespace {

SpikingLifConfig with_corrections(SpikingLifConfig c) {
  c.channel_gain = Vector{{1.2, 0.8, 1.1, 0.9}};
  c.hidden_threshold = Vector::LinSpaced(c.num_hidden, 0.8, 1.3);
  c.output_gain = Vector{{1.3, 0.7}};
  c.output_offset = Vector{{0.1, -0.2}};
  return c;
}

}  // namespace

TEST_CASE("spiking LIF: the per-neuron corrections of a mock fit are in the forward and the adjoint") {
  // Exact gradients of the smooth network with every correction set, against finite differences.
  const SpikingLifModel smooth(with_corrections(small_chip(Surrogate::kFastSigmoid, true)));
  const Matrix x = features(5, 3, 13);
  const Vector theta = smooth.initial_params(14) * 1.5;
  const GradCheckReport rep = check_gradients(smooth, x, theta, {.eps = 1e-5});
  INFO(rep.summary());
  CHECK(rep.max_rel_error() < 1e-5);
  CHECK(rep.max_rel_error_phi < 1e-5);
  // The corrections change the network; the readout ones act as y = r·(a·max U + b).
  const SpikingLifConfig plain_c = small_chip(Surrogate::kArctan, false);
  SpikingLifConfig readout_c = plain_c;
  readout_c.output_gain = Vector{{1.3, 0.7}};
  readout_c.output_offset = Vector{{0.1, -0.2}};
  const SpikingLifModel plain(plain_c), readout(readout_c);
  const Vector t2 = plain.initial_params(15) * 2.0;
  const Matrix y0 = plain.forward(x, t2), y1 = readout.forward(x, t2);
  for (Index r = 0; r < x.rows(); ++r) {
    CHECK(y1(r, 0) == doctest::Approx(1.3 * y0(r, 0) + plain_c.readout_scale * 0.1));
    CHECK(y1(r, 1) == doctest::Approx(0.7 * y0(r, 1) - plain_c.readout_scale * 0.2));
  }
  SpikingLifConfig higher = plain_c;
  higher.hidden_threshold = Vector::Constant(plain_c.num_hidden, 1.5);
  CHECK(SpikingLifModel(higher).record(x, t2).hidden_spikes.sum() <
        plain.record(x, t2).hidden_spikes.sum());
  // Bad corrections are refused naming the field.
  SpikingLifConfig bad = plain_c;
  bad.hidden_threshold = Vector::Ones(3);
  CHECK_THROWS_WITH_AS(SpikingLifModel{bad}, doctest::Contains("hidden_threshold must be empty or have 7"),
                       std::invalid_argument);
  bad = plain_c;
  bad.channel_gain = Vector{{1.0, 1.0, -1.0, 1.0}};
  CHECK_THROWS_WITH_AS(SpikingLifModel{bad}, doctest::Contains("channel_gain[2] must be positive"),
                       std::invalid_argument);
  bad = plain_c;
  bad.output_offset = Vector{{0.0, std::nan("")}};
  CHECK_THROWS_WITH_AS(SpikingLifModel{bad}, doctest::Contains("output_offset[1] must be finite"),
                       std::invalid_argument);
}

TEST_CASE("spiking LIF: replay drives the readout from given hidden spikes") {
  const SpikingLifModel m(with_corrections(small_chip(Surrogate::kArctan, false)));
  const Matrix x = features(6, 3, 16);
  const Vector theta = m.initial_params(17) * 2.0;
  const SpikeRecord own = m.record(x, theta);
  const SpikeRecord again = m.replay(x, theta, own.hidden_spikes);
  CHECK(again.hidden_spikes == own.hidden_spikes);
  CHECK((again.output_traces - own.output_traces).norm() < 1e-12);
  CHECK((again.outputs - own.outputs).norm() < 1e-12);
  const SpikeRecord silent = m.replay(x, theta, Matrix::Zero(6, own.hidden_spikes.cols()));
  // No hidden spikes: every output trace stays at its offset b_o.
  CHECK(silent.output_traces.col(0).cwiseAbs().maxCoeff() == doctest::Approx(0.1));
  CHECK_THROWS_AS(m.replay(x, theta, Matrix::Zero(6, 5)), std::invalid_argument);
}

TEST_CASE("spiking LIF: the spike-train-level rule at a record") {
  const SpikingLifConfig c = small_chip(Surrogate::kFastSigmoid, false);
  const SpikingLifModel m(c);
  const Matrix x = features(40, 3, 21);
  const Vector theta = m.initial_params(22) * 2.0;
  const Matrix y_bar = test::random_matrix(40, 2, 1.0, 23);
  const SpikeRecord rec = m.record(x, theta);
  REQUIRE(rec.hidden_spikes.sum() > 20.0);
  const Vector st = m.vjp_spike_train(x, theta, rec, y_bar).theta_bar;
  const Vector bptt = m.vjp_at_record(x, theta, rec, y_bar).theta_bar;
  const Index n_in = c.num_in_weights();
  // Given the spikes the readout is linear in W_out: both rules give its exact gradient.
  CHECK((st.tail(st.size() - n_in) - bptt.tail(st.size() - n_in)).norm() <
        1e-12 * (1.0 + bptt.norm()));
  // The input synapses: a different approximation of the same descent direction.
  const Vector a = st.head(n_in), b = bptt.head(n_in);
  REQUIRE(a.norm() > 0.0);
  const double cosine = a.dot(b) / (a.norm() * b.norm());
  INFO("cosine of the input-synapse gradients " << cosine);
  CHECK(cosine > 0.3);
  // Silent neurons: one near threshold learns through its virtual spike; one with no input
  // (membrane flat at 0, its peak before any event) gets no input gradient.
  Vector quiet = theta;
  for (Index k = 0; k < c.num_channels(); ++k) {
    quiet[0 * c.num_channels() + k] = 8.0;
    quiet[1 * c.num_channels() + k] = 0.0;
  }
  const SpikeRecord part = m.record(x, quiet);
  const auto spikes_of = [&](Index j) {
    double n = 0.0;
    for (Index t = 0; t < c.num_steps; ++t) n += part.hidden_spikes.col(t * c.num_hidden + j).sum();
    return n;
  };
  REQUIRE(spikes_of(0) == 0.0);
  REQUIRE(spikes_of(1) == 0.0);
  REQUIRE(part.hidden_spikes.sum() > 0.0);
  const Vector g = m.vjp_spike_train(x, quiet, part, y_bar).theta_bar;
  const Eigen::Map<const Eigen::Matrix<double, -1, -1, Eigen::RowMajor>> g_in(g.data(), c.num_hidden,
                                                                            c.num_channels());
  CHECK(g_in.row(0).norm() > 0.0);
  CHECK(g_in.row(1).norm() == 0.0);
  SpikeRecord bad{Matrix::Zero(40, 3), rec.output_traces};
  CHECK_THROWS_AS(m.vjp_spike_train(x, theta, bad, y_bar), std::invalid_argument);
}

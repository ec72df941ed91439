// Uses the installed libraries the way a user's program would: a small network of pnn::training
// (one affine layer with known weights), a simulated device of pnn::drivers_sim, and a helper of
// pnn::client. tests/packaging/CMakeLists.txt asserts what it prints.
#include <cstdio>
#include <memory>
#include <string_view>

#include "pnn/client/export.hpp"
#include "pnn/common/version.hpp"
#include "pnn/digital_twin/digital_layers.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/network.hpp"

int main() {
  pnn::training::Network net;
  pnn::Vector theta(9);
  theta << 1, 2, 3, 4, 5, 6, 0.5, 0.5, 0.5;  // W (3 × 2, row-major), then b (3)
  net.add_digital("affine", std::make_shared<pnn::digital_twin::AffineModel>(2, 3), theta);
  pnn::Matrix x(1, 2);
  x << 1, 1;
  const auto trace = net.forward(x, pnn::training::Mode::kTwin);
  if (!trace) {
    std::fprintf(stderr, "forward failed\n");
    return 1;
  }
  const auto& y = trace->output;
  std::printf("pnn %s network output: %g %g %g\n", pnn::kVersion, y(0, 0), y(0, 1), y(0, 2));

  auto device = pnn::drivers::make_physical_system("sim://power-law?prefactor=2");
  std::printf("device: %s\n", device ? "made" : "none");

  constexpr std::string_view check = "123456789";
  const auto crc = pnn::client::masked_crc32c(
      {reinterpret_cast<const std::uint8_t*>(check.data()), check.size()});
  std::printf("masked crc32c: %08x\n", crc);
  return 0;
}

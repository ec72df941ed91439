// frame-codec: throughput of the binary frame protocol (encode + stream decode, one core).
// wire-overhead: the cost of driving simulated boards over the protocol (firmware emulator,
// loopback transport, framed-board driver) instead of calling the reality in-process.

#include <algorithm>
#include <random>

#include "bench_common.hpp"
#include "pnn/firmware_iface/frame.hpp"
#include "pnn/digital_twin/parallel.hpp"
#include "pnn/firmware_iface/messages.hpp"

namespace pnn::bench::detail {
namespace {

namespace fw = firmware_iface;
using nlohmann::json;

struct CodecFigures {
  double encode_gbps, decode_gbps, roundtrip_gbps;
  std::size_t frame_bytes;
};

// Encodes a LoadInputBatch of rows×cols doubles and decodes it back to doubles, for about
// `seconds` per figure. Bytes counted are whole frames (header + payload + check).
CodecFigures measure_codec(std::uint32_t rows, std::uint32_t cols, double seconds) {
  std::vector<double> data(static_cast<std::size_t>(rows) * cols);
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  for (auto& v : data) v = normal(rng);
  std::vector<std::uint8_t> frame;
  fw::encode_batch_message(fw::MessageType::kLoadInputBatch, 1, rows, cols, data, frame);
  const std::size_t bytes = frame.size();
  fw::FrameDecoder decoder({.max_payload_bytes = static_cast<std::uint32_t>(bytes)});
  std::vector<double> back;
  std::uint32_t r = 0, c = 0;
  auto timed = [&](auto&& body) {
    std::size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    do {
      for (int k = 0; k < 16; ++k) body(n++);
    } while (seconds_since(t0) < seconds);
    return static_cast<double>(n * bytes) / seconds_since(t0) / 1e9;
  };
  std::vector<std::uint8_t> out;
  out.reserve(bytes);
  const double enc = timed([&](std::size_t i) {
    out.clear();
    fw::encode_batch_message(fw::MessageType::kLoadInputBatch, static_cast<std::uint32_t>(i),
                             rows, cols, data, out);
  });
  auto decode = [&] {
    decoder.feed(out);
    auto f = decoder.next();
    if (!f || fw::decode_batch_payload(f->payload, r, c, back)) {
      throw std::runtime_error("frame-codec: a frame did not decode");
    }
  };
  const double dec = timed([&](std::size_t) { decode(); });
  const double both = timed([&](std::size_t i) {
    out.clear();
    fw::encode_batch_message(fw::MessageType::kLoadInputBatch, static_cast<std::uint32_t>(i),
                             rows, cols, data, out);
    decode();
  });
  if (back != data) throw std::runtime_error("frame-codec: decoded values differ");
  return {enc, dec, both, bytes};
}

}  // namespace

std::vector<json> frame_codec(const BenchOptions&) {
  struct Size {
    const char* what;
    std::uint32_t rows, cols;
  };
  const Size sizes[] = {{"batch 32x64 (oscillator training batch)", 32, 64},
                        {"batch 256x784 (MNIST-sized forward)", 256, 784},
                        {"batch 1x8 (small command)", 1, 8}};
  json by_size = json::array();
  double headline = 0.0;
  for (const auto& s : sizes) {
    const CodecFigures f = measure_codec(s.rows, s.cols, 0.25);
    by_size.push_back({{"payload", s.what},
                       {"frame_bytes", f.frame_bytes},
                       {"encode_gbytes_per_s", f.encode_gbps},
                       {"decode_gbytes_per_s", f.decode_gbps},
                       {"gbytes_per_s", f.roundtrip_gbps}});
    if (headline == 0.0) headline = f.roundtrip_gbps;
  }
  return {json{{"name", "frame-codec"},
               {"gbytes_per_s", headline},
               {"what", "encode + stream decode (CRC-32C both ways, payload back to doubles), "
                        "one core, frame bytes per second, 32x64 batch"},
               {"by_size", by_size},
               {"threads", 1}}};
}

std::vector<json> wire_overhead(const BenchOptions& options) {
  const int epochs = options.epochs > 0 ? options.epochs : 10;
  training::JobConfig frames =
      oscillator_job("wire-overhead", "digits", "large", epochs, options.seed, 8);
  frames.compare_in_silico = false;
  frames.digital_hidden = 0;
  training::JobConfig direct = frames;
  for (auto& d : direct.devices) d.address += "&link=direct";
  // Alternate the two and keep each one's best of `repeats`, so a busy machine hurts neither.
  const int repeats = 2;
  double wall_frames = 1e300, wall_direct = 1e300, cpu_frames = 1e300, cpu_direct = 1e300;
  double acc_frames = -1.0, acc_direct = -1.0;
  for (int k = 0; k < repeats; ++k) {
    for (bool wire : {true, false}) {
      const double c0 = process_cpu_seconds();
      const auto r = run_job_quietly(wire ? frames : direct, "large", options);
      const double cpu = process_cpu_seconds() - c0;
      const double acc = r.phase("pat")->acc_hardware;
      (wire ? wall_frames : wall_direct) = std::min(wire ? wall_frames : wall_direct, r.wall_seconds);
      (wire ? cpu_frames : cpu_direct) = std::min(wire ? cpu_frames : cpu_direct, cpu);
      (wire ? acc_frames : acc_direct) = acc;
    }
  }
  return {json{{"name", "wire-overhead"},
               {"dataset", "digits"},
               {"gap", "large"},
               {"seed", options.seed},
               {"epochs", epochs},
               {"wall_s_frames", wall_frames},
               {"wall_s_direct", wall_direct},
               {"wall_ratio", wall_frames / wall_direct},
               {"cpu_s_frames", cpu_frames},
               {"cpu_s_direct", cpu_direct},
               {"cpu_ratio", cpu_frames / cpu_direct},
               {"acc_pat_reality_frames", acc_frames},
               {"acc_pat_reality_direct", acc_direct},
               {"identical", acc_frames == acc_direct},
               {"threads", digital_twin::num_threads()}}};
}

}  // namespace pnn::bench::detail

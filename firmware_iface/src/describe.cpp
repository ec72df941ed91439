// The meaning of a DescribeReply (protocol 1.1): is the description usable, and if not, why.
#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>

#include "pnn/firmware_iface/messages.hpp"

namespace pnn::firmware_iface {
namespace {

constexpr std::array<std::string_view, 34> kUnits = {
    "1",  "a.u.", "V",   "mV",  "uV", "A",  "mA",  "uA", "W",  "mW",     "uW",      "nW",
    "dBm", "dB",  "Hz",  "kHz", "MHz", "GHz", "rad", "deg", "s",  "ms",     "us",      "ns",
    "K",  "m",    "mm",  "um",  "nm", "T",  "mT",  "%",  "counts", "kcounts"};

std::string quoted(std::string_view s) {
  std::string out(1, '\'');
  out.append(s);
  out.push_back('\'');
  return out;
}

std::string size_problem(const char* what, std::uint32_t n, std::uint32_t limit) {
  if (n >= 1 && n <= limit) return {};
  return std::string(what) + " is " + std::to_string(n) + ", outside 1.." + std::to_string(limit) +
         " (fix the spec the board serves)";
}

std::string range_problem(const std::string& what, double lo, double hi) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    return what + " limits [" + std::to_string(lo) + ", " + std::to_string(hi) +
           "] are not finite (every limit must be a finite number: fix the spec the board serves)";
  }
  if (lo > hi) {
    return what + " limits have min " + std::to_string(lo) + " > max " + std::to_string(hi) +
           " (swap them in the spec the board serves)";
  }
  return {};
}

std::string unit_problem(const std::string& what, const std::string& unit) {
  if (is_known_unit(unit)) return {};
  return what + " unit " + quoted(unit) +
         " is not a known unit (use one of 1, a.u., V, mV, A, W, mW, uW, Hz, rad, deg, s, K, "
         "counts, ...; docs/protocol.md lists them; '1' for dimensionless)";
}

}  // namespace

bool is_known_unit(std::string_view unit) {
  const std::size_t end = unit.find_first_of(" (");
  const std::string_view head = unit.substr(0, end);
  if (head.empty()) return false;
  for (std::string_view u : kUnits) {
    if (u == head) return true;
  }
  return head == "clicks";
}

std::string describe_problem(const DescribeReply& d) {
  if (d.protocol_minor < 1) {
    return "describe reply says protocol minor " + std::to_string(d.protocol_minor) +
           ", but describe exists from 1.1 on (fix the board's reply)";
  }
  for (const std::string& p : {size_problem("num_inputs", d.num_inputs, kMaxDescribedSize),
                               size_problem("num_outputs", d.num_outputs, kMaxDescribedSize),
                               size_problem("num_params", d.num_params, kMaxDescribedParams),
                               size_problem("max_batch", d.max_batch, kMaxDescribedBatch)}) {
    if (!p.empty()) return p;
  }
  const std::uint64_t cols = std::max(d.num_inputs, d.num_outputs);
  if (8 + 8 * cols * d.max_batch > kMaxDescribedBatchBytes) {
    return "max_batch " + std::to_string(d.max_batch) + " × " + std::to_string(cols) +
           " values makes a batch frame over " + std::to_string(kMaxDescribedBatchBytes >> 20) +
           " MiB (serve a smaller max_batch)";
  }
  if (auto p = range_problem("input", d.input_min, d.input_max); !p.empty()) return p;
  if (auto p = unit_problem("input", d.input_unit); !p.empty()) return p;
  if (auto p = unit_problem("output", d.output_unit); !p.empty()) return p;
  if (!std::isfinite(d.output_noise_std) || d.output_noise_std < 0) {
    return "output_noise_std " + std::to_string(d.output_noise_std) +
           " must be finite and >= 0 (fix the spec the board serves)";
  }
  if (d.blocks.empty()) return "no parameter blocks (a board needs at least one θ block)";
  std::uint64_t total = 0;
  std::set<std::string> names;
  for (std::size_t i = 0; i < d.blocks.size(); ++i) {
    const DescribedBlock& b = d.blocks[i];
    const std::string what = "parameter block " + std::to_string(i) + " " + quoted(b.name);
    if (b.name.empty()) return "parameter block " + std::to_string(i) + " has no name (name it)";
    if (!names.insert(b.name).second) {
      return what + " appears twice (block names must be unique)";
    }
    if (b.count == 0) return what + " has 0 entries (drop it or give it a count)";
    if (auto p = range_problem(what, b.min, b.max); !p.empty()) return p;
    if (auto p = unit_problem(what, b.unit); !p.empty()) return p;
    total += b.count;
  }
  if (total != d.num_params) {
    return "inconsistent sizes: the parameter blocks hold " + std::to_string(total) +
           " entries but num_params is " + std::to_string(d.num_params) +
           " (make the block counts add up to num_params)";
  }
  return {};
}

}  // namespace pnn::firmware_iface

// pnn-bench [NAME...]: runs the named benchmarks (all by default), one JSON line each.
#include <cstdio>
#include <exception>
#include <iostream>

#include "pnn/bench/benchmarks.hpp"
#include "pnn/digital_twin/memory.hpp"

int main(int argc, char** argv) {
  pnn::digital_twin::tune_allocator_for_batches();
  try {
    std::vector<std::string> names;
    for (int i = 1; i < argc; ++i) names.emplace_back(argv[i]);
    if (names.empty()) {
      for (const auto& b : pnn::bench::list_benchmarks()) names.push_back(b.name);
    }
    for (const auto& name : names) {
      for (const auto& line : pnn::bench::run_benchmark(name)) std::cout << line.dump() << std::endl;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnn-bench: %s\n", e.what());
    return 1;
  }
}

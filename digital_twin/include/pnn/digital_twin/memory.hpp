#pragma once
/// Process-wide allocator settings for batch work. Call once at the start of main() of a program
/// that runs models or simulators on large batches (pnnd, pnnctl, pnn-bench, pnn-siminst).
///
/// Why: a batch of 256 samples × 64 oscillators is a 128 KiB matrix, right at glibc's default
/// mmap threshold, and the RK4 integrators make several such temporaries per step on every pool
/// thread. glibc returns freed memory of thread arenas to the kernel eagerly (heap trimming), so
/// every reuse page-faults again: measured 4× slower batch-256 forward passes on the simulated
/// oscillator device (about 5000 page faults per batch). Raising the mmap and trim thresholds
/// keeps those pages in the process. The cost is that up to the trim threshold of freed memory
/// stays mapped per arena (bounded: 256 MiB).
namespace pnn::digital_twin {

/// Sets glibc's M_MMAP_THRESHOLD (32 MiB) and M_TRIM_THRESHOLD (256 MiB) unless the user set
/// them with GLIBC_TUNABLES. Does nothing on other C libraries. Never fails.
void tune_allocator_for_batches() noexcept;

}  // namespace pnn::digital_twin

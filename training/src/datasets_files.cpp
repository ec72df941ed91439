// Reading data set files: whole files and gzip streams into memory, bounded, with messages that
// name the file and the fix.
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "datasets_detail.hpp"

namespace pnn::training::detail {
namespace {

namespace fs = std::filesystem;

// Far above the largest file (47 MB of Fashion-MNIST training images), far below trouble: a
// corrupt or hostile gzip stream cannot make the loader allocate without bound.
constexpr std::size_t kMaxDecompressedBytes = std::size_t{512} << 20;
constexpr std::uintmax_t kMaxCompressedBytes = std::uintmax_t{512} << 20;

// Asks the kernel to back a freshly allocated, not yet touched buffer with huge pages. Filling
// the full Fashion-MNIST matrix (376 MB of doubles) otherwise takes one page fault per 4 KiB,
// which dominated the load time (about 1 s of 1.7 s in a VM); with huge pages it is ~0.05 s.
// Advisory only: any failure just leaves ordinary pages.
void advise_huge_pages(void* data, std::size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr std::size_t kMinBytes = std::size_t{8} << 20;
  if (bytes < kMinBytes) return;
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  const auto mask = static_cast<std::uintptr_t>(page) - 1;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + mask) & ~mask;
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~mask;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

}  // namespace

void fail(const std::string& file, const std::string& what, const char* fix) {
  throw DatasetError(file + ": " + what + ". Fix: " + fix);
}

// Reads a whole file into memory. Reading the compressed bytes first and inflating from memory
// keeps every failure (missing, unreadable, truncated) distinguishable and gives exact messages.
std::vector<unsigned char> read_file(const std::string& file, const PackageHint& hint) {
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (ec || !fs::exists(status)) {
    fail(file, "file not found", hint.install);
  }
  if (!fs::is_regular_file(status)) {
    fail(file, "not a regular file", hint.reinstall);
  }
  const std::uintmax_t size = fs::file_size(file, ec);
  if (ec) {
    fail(file, "cannot read the file size (" + ec.message() + ")", hint.reinstall);
  }
  if (size > kMaxCompressedBytes) {
    fail(file, "file is " + std::to_string(size) + " bytes, larger than any data set file",
         hint.reinstall);
  }
  std::vector<unsigned char> bytes(static_cast<std::size_t>(size));
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    fail(file, "cannot open the file for reading (check its permissions)", hint.reinstall);
  }
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::size_t>(in.gcount()) != bytes.size()) {
    fail(file, "read error (the file shrank or the disk failed while reading)", hint.reinstall);
  }
  return bytes;
}

std::vector<unsigned char> read_gzip(const std::string& file, const PackageHint& hint) {
  const std::vector<unsigned char> compressed = read_file(file, hint);
  if (compressed.empty()) {
    fail(file, "file is empty, expected gzip data", hint.reinstall);
  }
  if (compressed.size() < 2 || compressed[0] != 0x1f || compressed[1] != 0x8b) {
    fail(file, "not a gzip file (wrong magic bytes)", hint.reinstall);
  }

  z_stream zs{};
  // 16 + MAX_WBITS: accept the gzip wrapper only and verify its CRC-32 and length trailer.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
    fail(file, "zlib could not be initialised (out of memory?)", hint.reinstall);
  }
  struct InflateEnd {
    z_stream* zs;
    ~InflateEnd() { inflateEnd(zs); }
  } guard{&zs};

  // The gzip trailer holds the uncompressed size mod 2^32: a good first guess for the buffer.
  const std::size_t n = compressed.size();
  std::size_t guess = 0;
  if (n >= 4) {
    guess = std::size_t{compressed[n - 4]} | (std::size_t{compressed[n - 3]} << 8) |
            (std::size_t{compressed[n - 2]} << 16) | (std::size_t{compressed[n - 1]} << 24);
  }
  guess = std::clamp<std::size_t>(guess, 4096, std::min(kMaxDecompressedBytes, n * 1032 + 4096));
  std::vector<unsigned char> out(guess);
  std::size_t produced = 0;
  std::size_t consumed = 0;

  for (;;) {
    if (produced == out.size()) {
      if (out.size() >= kMaxDecompressedBytes) {
        fail(file,
             "decompresses to more than " + std::to_string(kMaxDecompressedBytes) +
                 " bytes, more than any data set file holds",
             hint.reinstall);
      }
      out.resize(std::min(out.size() * 2, kMaxDecompressedBytes));
    }
    const std::size_t in_chunk = std::min<std::size_t>(n - consumed, UINT_MAX);
    const std::size_t out_chunk = std::min<std::size_t>(out.size() - produced, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(compressed.data() + consumed);
    zs.avail_in = static_cast<uInt>(in_chunk);
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    consumed += in_chunk - zs.avail_in;
    produced += out_chunk - zs.avail_out;

    if (rc == Z_STREAM_END) {
      if (consumed == n) break;
      // gzip allows several members back to back; anything else after a member is corruption.
      if (n - consumed >= 2 && compressed[consumed] == 0x1f && compressed[consumed + 1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      fail(file, std::to_string(n - consumed) + " bytes of garbage after the gzip data",
           hint.reinstall);
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      if (consumed == n) {
        fail(file, "truncated gzip data (the file ends before the compressed stream does)",
             hint.reinstall);
      }
      continue;  // the output buffer was full: grow it
    }
    if (rc == Z_MEM_ERROR) {
      fail(file, "out of memory while decompressing", hint.reinstall);
    }
    fail(file,
         std::string("corrupt gzip data (zlib: ") + (zs.msg != nullptr ? zs.msg : "unknown") + ")",
         hint.reinstall);
  }
  out.resize(produced);
  out.shrink_to_fit();
  return out;
}

Dataset make_dataset(const std::string& name, Index rows, Index features) {
  Dataset d;
  d.name = name;
  d.x.resize(rows, features);
  advise_huge_pages(d.x.data(), static_cast<std::size_t>(d.x.size()) * sizeof(double));
  d.labels.resize(rows);
  d.num_classes = kNumClasses;
  return d;
}

}  // namespace pnn::training::detail

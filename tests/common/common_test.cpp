// pnn::common: hex text and the atomic file write (its options and structured errors).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "pnn/common/atomic_write.hpp"
#include "pnn/common/hex.hpp"

namespace fs = std::filesystem;

namespace {
std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST_CASE("common: hex of bytes, of one byte and of a u32") {
  using namespace pnn::common;
  CHECK(to_hex(std::string("\x00\xff\x10", 3)) == "00ff10");
  CHECK(to_hex("") == "");
  CHECK(hex_byte(0x0a) == "0a");
  CHECK(hex_byte(0x1ff) == "ff");  // only the low byte
  CHECK(hex_u32(0xabcd) == "0x0000abcd");
  CHECK(hex_u32(0xffffffffu) == "0xffffffff");
}

TEST_CASE("common: write_file_atomic creates, replaces, leaves no temporary, and names its failure") {
  const fs::path dir = fs::temp_directory_path() / ("pnn-common-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path file = dir / "sub" / "plot.svg";
  pnn::common::write_file_atomic(file, "first");  // creates the missing directories
  CHECK(read_all(file) == "first");
  pnn::common::write_file_atomic(file, std::string(100000, 'x'));
  CHECK(read_all(file) == std::string(100000, 'x'));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "sub")) ++entries;
  CHECK(entries == 1);  // no temporary file left behind

  // A path whose parent is a regular file cannot be written: the error names the file.
  const fs::path bad = file / "child.txt";
  try {
    pnn::common::write_file_atomic(bad, "x");
    FAIL("expected an error");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find(bad.string()) != std::string::npos);
    CHECK(what.find("cannot write") != std::string::npos);
  }
  fs::remove_all(dir);
}

namespace {
int count_entries(const fs::path& dir) {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}
}  // namespace

TEST_CASE("common: write_file_atomic with an injected fault keeps the old file and says where") {
  using pnn::common::AtomicWriteError;
  const fs::path dir =
      fs::temp_directory_path() / ("pnn-common-fault-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path file = dir / "state.bin";
  pnn::common::write_file_atomic(file, "old content");
  for (const std::int64_t after : {std::int64_t{0}, std::int64_t{1}, std::int64_t{5}}) {
    CAPTURE(after);
    try {
      pnn::common::write_file_atomic(file, "new content", {.fail_after_bytes = after});
      FAIL("expected an injected fault");
    } catch (const AtomicWriteError& e) {
      CHECK(e.step() == AtomicWriteError::Step::kWrite);
      CHECK(e.injected());
      CHECK(e.bytes_written() == static_cast<std::size_t>(after));
      CHECK(e.temp_path().string().find(file.string() + ".tmp.") == 0);
      CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
      CHECK(std::string(e.what()).find("stopped after " + std::to_string(after) + " bytes") !=
            std::string::npos);
    }
    CHECK(read_all(file) == "old content");
    CHECK(count_entries(dir) == 1);  // the temporary file is gone
  }
  // A fault point at or beyond the end never triggers.
  pnn::common::write_file_atomic(file, "new content", {.fail_after_bytes = 11});
  CHECK(read_all(file) == "new content");

  // Without create_directories a missing directory fails when creating the temporary file.
  const fs::path nested = dir / "missing" / "f.txt";
  try {
    pnn::common::write_file_atomic(nested, "x", {.create_directories = false});
    FAIL("expected an error");
  } catch (const AtomicWriteError& e) {
    CHECK(e.step() == AtomicWriteError::Step::kCreateTemp);
    CHECK(e.os_error() == ENOENT);
    CHECK(!e.injected());
  }
  CHECK(!fs::exists(dir / "missing"));
  fs::remove_all(dir);
}

TEST_CASE("common: concurrent write_file_atomic calls to one path never share a temporary") {
  const fs::path dir =
      fs::temp_directory_path() / ("pnn-common-race-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const fs::path file = dir / "shared.txt";
  std::vector<std::thread> writers;
  std::vector<std::string> failures(4);
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      try {
        for (int i = 0; i < 25; ++i) {
          pnn::common::write_file_atomic(file, std::string(4096, static_cast<char>('a' + t)));
        }
      } catch (const std::exception& e) {
        failures[static_cast<std::size_t>(t)] = e.what();
      }
    });
  }
  for (auto& w : writers) w.join();
  for (const auto& f : failures) CHECK(f == "");
  const std::string content = read_all(file);
  REQUIRE(content.size() == 4096);
  CHECK(content == std::string(4096, content[0]));  // one writer's whole content, never a mix
  CHECK(count_entries(dir) == 1);
  fs::remove_all(dir);
}

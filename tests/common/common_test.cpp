// pnn::common: hex text and the atomic file write.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

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

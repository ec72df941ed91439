#include "pnn/firmware_iface/scpi.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream>  // doctest prints std::error_code with operator<<
#include <string>
#include <vector>

using namespace pnn::firmware_iface;
using namespace pnn::firmware_iface::scpi;
using Kind = Argument::Kind;

namespace {

// Messages from a splitter; errors become "<error>".
std::vector<std::string> split(const std::string& stream, std::size_t chunk,
                               LineSplitterOptions options = {}) {
  LineSplitter s(options);
  std::vector<std::string> out;
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    s.feed(std::string_view(stream).substr(at, chunk));
    // (append, not "<" + string: GCC 12 -O3 warns falsely on that, -Wrestrict.)
    while (auto m = s.next()) {
      out.push_back(*m ? m->value() : std::string("<").append(m->error().message()).append(">"));
    }
  }
  return out;
}

Command parse(std::string_view line) {
  auto r = parse_command(line);
  REQUIRE_MESSAGE(r, "parse_command(\"", std::string(line), "\"): ", r.error().message());
  return std::move(r).value();
}

std::error_code parse_error_of(std::string_view line) { return parse_command(line).error(); }

}  // namespace

TEST_CASE("scpi: stream split into newline-terminated messages, CR and empty lines dropped") {
  const std::string stream = "*IDN?\nSYST:ERR?\r\n\n\r\nVOLT 1.5\nPART";
  const std::vector<std::string> want = {"*IDN?", "SYST:ERR?", "VOLT 1.5"};
  for (const std::size_t chunk : {1u, 2u, 5u, 100u}) CHECK(split(stream, chunk) == want);
  LineSplitter s;
  s.feed(stream);
  while (s.next()) {
  }
  CHECK(s.partial_bytes() == 4);
  s.feed("IAL\n");
  auto m = s.next();
  REQUIRE(m);
  CHECK(m->value() == "PARTIAL");
  s.feed("X");
  s.reset();
  CHECK(s.partial_bytes() == 0);
  CHECK(!s.next());
}

TEST_CASE("scpi: a newline inside definite-length block data does not end the message") {
  const std::string stream =
      std::string("DATA #15a\nb\ncd\n") + "#212\n\n\n\n\n\n\n\n\n\n\n\n\n" + "CURV? 1,#13\r\nX\n";
  const std::vector<std::string> want = {"DATA #15a\nb\ncd", "#212\n\n\n\n\n\n\n\n\n\n\n\n",
                                         "CURV? 1,#13\r\nX"};
  for (const std::size_t chunk : {1u, 3u, 1000u}) CHECK(split(stream, chunk) == want);
  // Without block tracking the same stream falls apart at every newline.
  CHECK(split(stream, 1000, {.binary_blocks = false}).size() > 3);
  // '#' inside a word is not a block, nor is a quoted one; #0 runs to the newline.
  CHECK(split("MODEL#12\nX \"#15\"\nA #0xy\nB\n", 1) ==
        std::vector<std::string>{"MODEL#12", "X \"#15\"", "A #0xy", "B"});
}

TEST_CASE("scpi: an overlong message is reported once and skipped to its terminator") {
  const std::string stream = "0123456789\nOK\nDATA #220" + std::string(20, '\n') + "\nEND\n";
  const auto got = split(stream, 3, {.max_message_bytes = 8});
  REQUIRE(got.size() == 4);
  CHECK(got[0] == "<SCPI message too long>");
  CHECK(got[1] == "OK");
  CHECK(got[2] == "<SCPI message too long>");
  CHECK(got[3] == "END");
  CHECK(split("12345678\n", 1, {.max_message_bytes = 8}) == std::vector<std::string>{"12345678"});
}

TEST_CASE("scpi: headers, queries and common commands") {
  Command c = parse("SYST:ERR?");
  CHECK(c.header == "SYST:ERR");
  CHECK(c.query);
  CHECK(c.args.empty());
  CHECK(!c.common());
  c = parse("  :SOURce1:FREQuency:CW 1.5E3  ");
  CHECK(c.header == "SOURce1:FREQuency:CW");
  CHECK(!c.query);
  REQUIRE(c.args.size() == 1);
  CHECK(c.args[0].number == 1500.0);
  c = parse("*IDN?");
  CHECK(c.common());
  CHECK(c.query);
  CHECK(c.header == "*IDN");
  c = parse("*rst");
  CHECK(c.header == "*rst");

  auto program = parse_program("*RST;*CLS; VOLT 5 ;OUTP ON;");
  REQUIRE(program);
  REQUIRE(program->size() == 4);
  CHECK((*program)[2].header == "VOLT");
  CHECK((*program)[3].args[0].text == "ON");
  CHECK(parse_program("   ")->empty());
  CHECK(parse_error_of("*RST;*CLS") == Errc::kSyntax);
}

TEST_CASE("scpi: numeric, string, character, expression and block arguments") {
  const Command c = parse(
      "CONF 1,-2.5e-3,+.5, 7. ,1E+2,3 MV,2.5khz,#HFF,#q17,#B101,"
      "'it''s',\"say \"\"hi\"\"\",MAX,(@1,3:5),#15a,b\nc,#0tail, with commas");
  REQUIRE(c.args.size() == 16);
  const double expect[] = {1, -2.5e-3, 0.5, 7, 100, 3, 2.5, 255, 15, 5};
  for (int i = 0; i < 10; ++i) {
    CHECK(c.args[i].kind == Kind::kNumber);
    CHECK(c.args[i].number == doctest::Approx(expect[i]));
  }
  CHECK(c.args[1].text == "-2.5e-3");
  CHECK(c.args[5].suffix == "MV");
  CHECK(c.args[6].suffix == "khz");
  CHECK(c.args[7].text == "#HFF");
  CHECK(c.args[10].kind == Kind::kString);
  CHECK(c.args[10].text == "it's");
  CHECK(c.args[11].text == "say \"hi\"");
  CHECK(c.args[12].kind == Kind::kCharacter);
  CHECK(c.args[12].text == "MAX");
  CHECK(c.args[13].kind == Kind::kExpression);
  CHECK(c.args[13].text == "(@1,3:5)");
  CHECK(c.args[14].kind == Kind::kBlock);
  CHECK(c.args[14].text == "a,b\nc");
  CHECK(!c.args[14].indefinite_block);
  CHECK(c.args[15].kind == Kind::kBlock);
  CHECK(c.args[15].indefinite_block);
  CHECK(c.args[15].text == "tail, with commas");
  // A zero-length definite block.
  CHECK(parse("DATA #10").args.at(0).text.empty());
}

TEST_CASE("scpi: malformed blocks are rejected, never over-read") {
  CHECK(parse_error_of("DATA #") == Errc::kBadBlock);
  CHECK(parse_error_of("DATA #x12") == Errc::kBadBlock);
  CHECK(parse_error_of("DATA #5123") == Errc::kBadBlock);      // fewer length digits than 5
  CHECK(parse_error_of("DATA #2a5hello") == Errc::kBadBlock);  // non-digit length
  CHECK(parse_error_of("DATA #15hel") == Errc::kBadBlock);     // fewer data bytes than 5
  CHECK(parse_error_of("DATA #9999999999") == Errc::kBadBlock);
  CHECK(parse_error_of("DATA #13abcd") == Errc::kSyntax);  // data longer than declared
}

TEST_CASE("scpi: malformed commands are syntax errors") {
  for (const char* line :
       {"", ":", "*", "SYST::ERR", "SYST:ERR?x", "SYST:", "VOLT 1,,2", "VOLT 1,", "VOLT ,1",
        "DISP \"unterminated", "VOLT 1e999", "ROUT (@1", "VOLT 1 2", "VOLT #H",
        "VOLT #HFFFFFFFFFFFFFFFFF", "VOLT -", "VOLT .", "1VOLT", "VOLT @"}) {
    INFO("line: " << line);
    CHECK(parse_error_of(line) == Errc::kSyntax);
  }
  CHECK(parse_arguments("1;2").error() == Errc::kSyntax);
}

TEST_CASE("scpi: long and short forms match case-insensitively, and nothing in between") {
  const auto matches = [](std::string_view pattern, std::string_view line) {
    return header_matches(pattern, parse(line));
  };
  CHECK(matches("SYSTem:ERRor?", "SYST:ERR?"));
  CHECK(matches("SYSTem:ERRor?", "system:error?"));
  CHECK(matches("SYSTem:ERRor?", ":SyStEm:ErR?"));
  CHECK(!matches("SYSTem:ERRor?", "SYSTE:ERR?"));
  CHECK(!matches("SYSTem:ERRor?", "SYST:ERR"));
  CHECK(!matches("SYSTem:ERRor", "SYST:ERR?"));
  CHECK(!matches("SYSTem:ERRor?", "SYST:ERR:NEXT?"));
  CHECK(matches("SYSTem:ERRor[:NEXT]?", "SYST:ERR:NEXT?"));
  CHECK(matches("SYSTem:ERRor[:NEXT]?", "SYST:ERR?"));
  CHECK(matches("[SOURce:]FREQuency", "FREQ 1"));
  CHECK(matches("[SOURce:]FREQuency", "sour:frequency 1"));
  CHECK(matches("OUTPut1:STATe", "OUTP1:STAT ON"));
  CHECK(!matches("OUTPut1:STATe", "OUTP2:STAT ON"));
  CHECK(matches("*IDN?", "*idn?"));
  CHECK(!matches("*IDN?", "*IDN"));
  CHECK(!matches("*IDN?", "IDN?"));
  CHECK_THROWS_AS(header_matches("SYST[:ERR", parse("SYST")), std::invalid_argument);
  CHECK_THROWS_AS(header_matches("", parse("SYST")), std::invalid_argument);
}

TEST_CASE("scpi: quote and format_block round-trip through the argument parser") {
  const std::string binary = std::string("a\"b\n\0c", 6);
  const std::vector<std::uint8_t> raw(binary.begin(), binary.end());
  const std::string line = quote("he said \"no\"") + "," + format_block(raw);
  CHECK(format_block(raw).substr(0, 3) == "#16");
  auto args = parse_arguments(line);
  REQUIRE(args);
  REQUIRE(args->size() == 2);
  CHECK((*args)[0].text == "he said \"no\"");
  CHECK((*args)[1].text == binary);
  CHECK(parse_arguments(" ")->empty());
}

TEST_CASE("scpi: error-queue entries format and parse") {
  CHECK(format_error({-113, "Undefined header"}) == "-113,\"Undefined header\"");
  CHECK(format_error({5, "say \"x\""}) == "5,\"say \"\"x\"\"\"");
  CHECK(*parse_error("+0,\"No error\"") == ErrorEntry{0, "No error"});
  CHECK(*parse_error("0,\"No error\"\n") == ErrorEntry{0, "No error"});
  CHECK(*parse_error(" -222 , \"Data out of range;VOLT 100\"\r\n") ==
        ErrorEntry{-222, "Data out of range;VOLT 100"});
  CHECK(*parse_error("-350,Queue overflow") == ErrorEntry{-350, "Queue overflow"});
  const ErrorEntry tricky{-100, "a \"quoted\", text"};
  CHECK(*parse_error(format_error(tricky)) == tricky);
  for (const char* bad : {"", "0", "abc", ",\"x\"", "+,\"x\"", "99999999999,\"x\"",
                          "-1,\"unterminated", "-1,\"x\" junk", "1.5,\"x\""}) {
    INFO("entry: " << bad);
    CHECK(parse_error(bad).error() == Errc::kSyntax);
  }
}

TEST_CASE("scpi: ErrorQueue is FIFO and replaces the newest entry with -350 on overflow") {
  ErrorQueue q(3);
  CHECK(q.pop() == ErrorEntry{0, "No error"});
  for (int i = 1; i <= 5; ++i) q.push({-100 - i, std::string("e").append(std::to_string(i))});
  CHECK(q.size() == 3);
  CHECK(q.pop() == ErrorEntry{-101, "e1"});
  CHECK(q.pop() == ErrorEntry{-102, "e2"});
  CHECK(q.pop() == ErrorEntry{-350, "Queue overflow"});
  CHECK(q.empty());
  CHECK(q.pop().code == 0);
  q.push({-200, "x"});
  q.push({-201, "y"});
  q.clear();
  CHECK(q.empty());
  CHECK(ErrorQueue().capacity() == 30);
  ErrorQueue one(1);
  one.push({1, "a"});
  one.push({2, "b"});
  CHECK(one.pop() == ErrorEntry{-350, "Queue overflow"});
  CHECK_THROWS_AS(ErrorQueue(0), std::invalid_argument);
  CHECK_THROWS_AS(q.push({0, "No error"}), std::invalid_argument);
}

TEST_CASE("scpi: *IDN? responses") {
  auto id =
      parse_identity("Keysight Technologies,34461A,MY12345678,A.02.14-02.40-02.14-00.49-01-01\n");
  REQUIRE(id);
  CHECK(id->manufacturer == "Keysight Technologies");
  CHECK(id->model == "34461A");
  CHECK(id->serial == "MY12345678");
  CHECK(id->firmware == "A.02.14-02.40-02.14-00.49-01-01");
  id = parse_identity(" ACME , PNN-1 ,0, 1.2,build 7\r\n");
  REQUIRE(id);
  CHECK(*id == Identity{"ACME", "PNN-1", "0", "1.2,build 7"});
  CHECK(*parse_identity(format_identity(*id)) == *id);
  CHECK(parse_identity("A,B,C").error() == Errc::kSyntax);
  CHECK(parse_identity(",B,C,D").error() == Errc::kSyntax);
  CHECK(parse_identity("").error() == Errc::kSyntax);
}

// The SCPI parser: program messages, data elements, header patterns, error entries and *IDN?
// responses. The line framer is in scpi_line_splitter.cpp, the formatting in scpi_format.cpp.
#include "pnn/firmware_iface/scpi.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <system_error>

namespace pnn::firmware_iface::scpi {
namespace {

// IEEE-488.2 <white space>: 0x00–0x09 and 0x0B–0x20 (the newline is the terminator, already
// removed; inside a message it counts as white space too).
bool is_ws(char c) noexcept { return static_cast<unsigned char>(c) <= 0x20; }
bool is_alpha(char c) noexcept { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
char to_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = to_upper(c);
  return u;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ws(s.back())) s.remove_suffix(1);
  return s;
}

// Recursive-descent parser over one message.
class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  bool at_end() const noexcept { return pos_ >= s_.size(); }
  char peek() const noexcept { return at_end() ? '\0' : s_[pos_]; }
  void skip_ws() noexcept {
    while (!at_end() && is_ws(s_[pos_])) ++pos_;
  }
  bool consume(char c) noexcept {
    if (peek() != c || at_end()) return false;
    ++pos_;
    return true;
  }

  std::error_code command(Command& out) {
    skip_ws();
    if (peek() == '*' && !at_end()) {
      const std::size_t star = pos_++;
      while (!at_end() && is_alpha(s_[pos_])) ++pos_;
      if (pos_ == star + 1) return Errc::kSyntax;
      out.header = std::string(s_.substr(star, pos_ - star));
    } else {
      consume(':');
      const std::size_t start = pos_;
      for (;;) {
        if (at_end() || !is_alpha(s_[pos_])) return Errc::kSyntax;  // empty node
        while (!at_end() && (is_alpha(s_[pos_]) || is_digit(s_[pos_]) || s_[pos_] == '_')) ++pos_;
        if (!consume(':')) break;
      }
      out.header = std::string(s_.substr(start, pos_ - start));
    }
    out.query = consume('?');
    if (at_end() || peek() == ';') return {};
    if (!is_ws(peek())) return Errc::kSyntax;
    return elements(out.args);
  }

  // Comma-separated elements up to the end or a ';' (left unconsumed).
  std::error_code elements(std::vector<Argument>& out) {
    skip_ws();
    if (at_end() || peek() == ';') return {};
    for (;;) {
      Argument a;
      if (const std::error_code ec = element(a)) return ec;
      out.push_back(std::move(a));
      skip_ws();
      if (at_end() || peek() == ';') return {};
      if (!consume(',')) return Errc::kSyntax;
      skip_ws();
      if (at_end() || peek() == ';' || peek() == ',') return Errc::kSyntax;  // empty element
    }
  }

 private:
  std::error_code element(Argument& a) {
    const char c = peek();
    if (c == '"' || c == '\'') return string(a);
    if (c == '#') return hash(a);
    if (c == '(') return expression(a);
    if (c == '+' || c == '-' || c == '.' || is_digit(c)) return decimal(a);
    if (is_alpha(c)) {
      const std::size_t start = pos_;
      while (!at_end() && (is_alpha(s_[pos_]) || is_digit(s_[pos_]) || s_[pos_] == '_')) ++pos_;
      a.kind = Argument::Kind::kCharacter;
      a.text = std::string(s_.substr(start, pos_ - start));
      return {};
    }
    return Errc::kSyntax;
  }

  std::error_code string(Argument& a) {
    const char q = s_[pos_++];
    a.kind = Argument::Kind::kString;
    for (;;) {
      if (at_end()) return Errc::kSyntax;  // unterminated
      const char c = s_[pos_++];
      if (c == q) {
        if (!consume(q)) return {};
      }
      a.text.push_back(c);
    }
  }

  std::error_code expression(Argument& a) {
    const std::size_t start = pos_;
    int depth = 0;
    char quote = 0;
    while (!at_end()) {
      const char c = s_[pos_++];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '(') {
        ++depth;
      } else if (c == ')' && --depth == 0) {
        a.kind = Argument::Kind::kExpression;
        a.text = std::string(s_.substr(start, pos_ - start));
        return {};
      }
    }
    return Errc::kSyntax;  // unbalanced
  }

  std::error_code decimal(Argument& a) {
    const std::size_t start = pos_;
    if (peek() == '+' || peek() == '-') ++pos_;
    std::size_t digits = 0;
    while (is_digit(peek()) && !at_end()) ++pos_, ++digits;
    if (consume('.')) {
      while (is_digit(peek()) && !at_end()) ++pos_, ++digits;
    }
    if (digits == 0) return Errc::kSyntax;
    if (peek() == 'e' || peek() == 'E') {
      // An exponent only if digits follow; otherwise the E starts a suffix (e.g. "1EV" is not
      // SCPI, but must not be misread).
      std::size_t p = pos_ + 1;
      if (p < s_.size() && (s_[p] == '+' || s_[p] == '-')) ++p;
      if (p < s_.size() && is_digit(s_[p])) {
        pos_ = p;
        while (is_digit(peek()) && !at_end()) ++pos_;
      }
    }
    std::string_view token = s_.substr(start, pos_ - start);
    std::string_view digits_view = token.front() == '+' ? token.substr(1) : token;
    double value = 0.0;
    const auto [end, ec] =
        std::from_chars(digits_view.data(), digits_view.data() + digits_view.size(), value);
    if (ec != std::errc{} || end != digits_view.data() + digits_view.size()) {
      return Errc::kSyntax;  // e.g. an exponent beyond the range of double
    }
    a.kind = Argument::Kind::kNumber;
    a.text = std::string(token);
    a.number = value;
    // Optional suffix (unit), possibly after blanks: letters and '/'.
    const std::size_t before_ws = pos_;
    skip_ws();
    const std::size_t suffix_start = pos_;
    while (!at_end() && (is_alpha(s_[pos_]) || s_[pos_] == '/')) ++pos_;
    if (pos_ == suffix_start) {
      pos_ = before_ws;
    } else {
      a.suffix = std::string(s_.substr(suffix_start, pos_ - suffix_start));
    }
    return {};
  }

  // '#': a block (#<digit>…) or a non-decimal number (#H, #Q, #B).
  std::error_code hash(Argument& a) {
    ++pos_;
    if (at_end()) return Errc::kBadBlock;
    const char c = s_[pos_];
    const char u = to_upper(c);
    if (u == 'H' || u == 'Q' || u == 'B') return non_decimal(a, u);
    if (!is_digit(c)) return Errc::kBadBlock;
    ++pos_;
    a.kind = Argument::Kind::kBlock;
    if (c == '0') {
      // Indefinite length: the data run to the end of the message.
      a.indefinite_block = true;
      a.text = std::string(s_.substr(pos_));
      pos_ = s_.size();
      return {};
    }
    const std::size_t n = static_cast<std::size_t>(c - '0');
    if (s_.size() - pos_ < n) return Errc::kBadBlock;
    std::size_t length = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const char d = s_[pos_ + i];
      if (!is_digit(d)) return Errc::kBadBlock;
      length = length * 10 + static_cast<std::size_t>(d - '0');  // ≤ 999 999 999
    }
    pos_ += n;
    if (s_.size() - pos_ < length) return Errc::kBadBlock;  // fewer data bytes than declared
    a.text = std::string(s_.substr(pos_, length));
    pos_ += length;
    return {};
  }

  std::error_code non_decimal(Argument& a, char radix_letter) {
    const std::size_t start = pos_ - 1;  // at '#'
    ++pos_;
    const unsigned radix = radix_letter == 'H' ? 16 : radix_letter == 'Q' ? 8 : 2;
    std::uint64_t value = 0;
    std::size_t digits = 0;
    for (; !at_end(); ++pos_, ++digits) {
      const char c = to_upper(s_[pos_]);
      unsigned d;
      if (is_digit(c)) {
        d = static_cast<unsigned>(c - '0');
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<unsigned>(c - 'A' + 10);
      } else {
        break;
      }
      if (d >= radix) break;
      if (value > (std::numeric_limits<std::uint64_t>::max() - d) / radix) return Errc::kSyntax;
      value = value * radix + d;
    }
    if (digits == 0) return Errc::kSyntax;
    a.kind = Argument::Kind::kNumber;
    a.text = std::string(s_.substr(start, pos_ - start));
    a.number = static_cast<double>(value);
    return {};
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

struct PatternNode {
  std::string long_form;
  std::string short_form;
  bool optional = false;
};

struct Pattern {
  bool query = false;
  bool common = false;
  std::string common_name;  // upper case, without '?'
  std::vector<PatternNode> nodes;
};

Pattern parse_pattern(std::string_view p) {
  const auto bad = [&](const char* why) {
    return std::invalid_argument("SCPI pattern \"" + std::string(p) + "\": " + why);
  };
  Pattern out;
  std::string_view s = trim(p);
  if (!s.empty() && s.back() == '?') {
    out.query = true;
    s.remove_suffix(1);
  }
  if (!s.empty() && s.front() == '*') {
    out.common = true;
    out.common_name = upper(s);
    return out;
  }
  bool in_optional = false;
  PatternNode current;
  const auto flush = [&] {
    if (current.long_form.empty()) return;
    for (char& c : current.long_form) {
      if ((c >= 'A' && c <= 'Z') || is_digit(c)) current.short_form.push_back(c);
      c = to_upper(c);
    }
    if (current.short_form.empty()) current.short_form = current.long_form;
    out.nodes.push_back(std::move(current));
    current = {};
  };
  for (const char c : s) {
    if (c == '[') {
      if (in_optional) throw bad("nested '['");
      flush();
      in_optional = true;
    } else if (c == ']') {
      if (!in_optional) throw bad("']' without '['");
      flush();
      in_optional = false;
    } else if (c == ':') {
      flush();
    } else if (is_alpha(c) || is_digit(c) || c == '_') {
      if (current.long_form.empty()) current.optional = in_optional;
      current.long_form.push_back(c);
    } else {
      throw bad("unexpected character");
    }
  }
  if (in_optional) throw bad("unclosed '['");
  flush();
  if (out.nodes.empty()) throw bad("no nodes");
  return out;
}

bool match_nodes(const std::vector<PatternNode>& p, std::size_t pi,
                 const std::vector<std::string>& c, std::size_t ci) {
  if (pi == p.size()) return ci == c.size();
  if (p[pi].optional && match_nodes(p, pi + 1, c, ci)) return true;
  return ci < c.size() && (c[ci] == p[pi].long_form || c[ci] == p[pi].short_form) &&
         match_nodes(p, pi + 1, c, ci + 1);
}

}  // namespace

// --- commands ------------------------------------------------------------------------------------

Result<std::vector<Command>> parse_program(std::string_view message) {
  Parser p(message);
  std::vector<Command> commands;
  p.skip_ws();
  while (!p.at_end()) {
    Command c;
    if (const std::error_code ec = p.command(c)) return ec;
    commands.push_back(std::move(c));
    p.skip_ws();
    if (p.at_end()) break;
    if (!p.consume(';')) return Errc::kSyntax;
    p.skip_ws();  // a trailing ';' is tolerated
  }
  return commands;
}

Result<Command> parse_command(std::string_view message) {
  auto commands = parse_program(message);
  if (!commands) return commands.error();
  if (commands->size() != 1) return Errc::kSyntax;
  return std::move(commands->front());
}

Result<std::vector<Argument>> parse_arguments(std::string_view text) {
  Parser p(text);
  std::vector<Argument> out;
  if (const std::error_code ec = p.elements(out)) return ec;
  if (!p.at_end()) return Errc::kSyntax;  // a ';'
  return out;
}

bool header_matches(std::string_view pattern, const Command& command) {
  const Pattern p = parse_pattern(pattern);
  if (p.query != command.query) return false;
  if (p.common) return command.common() && upper(command.header) == p.common_name;
  if (command.common()) return false;
  std::vector<std::string> nodes;
  std::string_view h = command.header;
  for (;;) {
    const std::size_t colon = h.find(':');
    nodes.push_back(upper(h.substr(0, colon)));
    if (colon == std::string_view::npos) break;
    h.remove_prefix(colon + 1);
  }
  return match_nodes(p.nodes, 0, nodes, 0);
}

// --- error queue entries -------------------------------------------------------------------------

Result<ErrorEntry> parse_error(std::string_view text) {
  std::string_view s = trim(text);
  std::size_t pos = 0;
  if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) ++pos;
  const std::size_t digits_start = pos;
  while (pos < s.size() && is_digit(s[pos])) ++pos;
  if (pos == digits_start) return Errc::kSyntax;
  ErrorEntry e;
  const std::size_t number_start = s[0] == '+' ? 1 : 0;
  const auto [end, ec] = std::from_chars(s.data() + number_start, s.data() + pos, e.code);
  if (ec != std::errc{} || end != s.data() + pos) return Errc::kSyntax;
  std::string_view rest = trim(s.substr(pos));
  if (rest.empty() || rest.front() != ',') return Errc::kSyntax;
  rest = trim(rest.substr(1));
  if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
    auto args = parse_arguments(rest);
    if (!args || args->size() != 1 || args->front().kind != Argument::Kind::kString) {
      return Errc::kSyntax;
    }
    e.message = std::move(args->front().text);
  } else {
    e.message = std::string(rest);  // some instruments omit the quotes
  }
  return e;
}

// --- identification ------------------------------------------------------------------------------

Result<Identity> parse_identity(std::string_view response) {
  std::string_view s = trim(response);
  std::string_view fields[4];
  for (int i = 0; i < 3; ++i) {
    const std::size_t comma = s.find(',');
    if (comma == std::string_view::npos) return Errc::kSyntax;
    fields[i] = trim(s.substr(0, comma));
    s.remove_prefix(comma + 1);
  }
  fields[3] = trim(s);
  if (fields[0].empty() || fields[1].empty()) return Errc::kSyntax;
  return Identity{std::string(fields[0]), std::string(fields[1]), std::string(fields[2]),
                  std::string(fields[3])};
}

}  // namespace pnn::firmware_iface::scpi

#include "scpi_instrument.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pnn::drivers::sim {
namespace {

using firmware_iface::Clock;
using firmware_iface::Errc;

unsigned esr_bit(int code) {
  if (code <= -100 && code > -200) return kEsrCommandError;
  if (code <= -200 && code > -300) return kEsrExecutionError;
  if (code <= -400 && code > -500) return kEsrQueryError;
  return kEsrDeviceError;  // -3xx and device-specific (positive) codes
}

bool matches(std::string_view pattern, const scpi::Command& command) {
  return scpi::header_matches(pattern, command);
}

}  // namespace

ScpiInstrument::ScpiInstrument(Options options)
    : options_(std::move(options)),
      faults_(options_.faults),
      splitter_({.max_message_bytes = options_.max_message_bytes}) {}

std::string ScpiInstrument::name() const {
  return options_.identity.model + " " + options_.identity.serial;
}

bool ScpiInstrument::connected(Clock::time_point now) { return faults_.connected(now); }

void ScpiInstrument::on_open(Clock::time_point) {
  std::lock_guard lock(mutex_);
  splitter_.reset();  // a new connection starts a new message
}

void ScpiInstrument::on_clear() {
  std::lock_guard lock(mutex_);
  splitter_.reset();
}

std::uint64_t ScpiInstrument::num_errors(int code) const {
  std::lock_guard lock(mutex_);
  const auto it = error_counts_.find(code);
  return it == error_counts_.end() ? 0 : it->second;
}

std::uint64_t ScpiInstrument::num_errors() const {
  std::lock_guard lock(mutex_);
  std::uint64_t n = 0;
  for (const auto& [code, count] : error_counts_) n += count;
  return n;
}

std::uint64_t ScpiInstrument::num_power_ons() const {
  std::lock_guard lock(mutex_);
  return power_ons_;
}

void ScpiInstrument::power_on() {
  reset_settings();
  clear_volatile_memory();
  queue_.clear();
  splitter_.reset();
  esr_ = kEsrPowerOn;
  ese_ = sre_ = 0;
  ++power_ons_;
}

void ScpiInstrument::error(int code, std::string_view text) {
  queue_.push({code, std::string(text)});
  esr_ |= esr_bit(code);
  ++error_counts_[code];
}

void ScpiInstrument::receive(std::span<const std::uint8_t> bytes, Clock::time_point now,
                             std::deque<firmware_iface::DeviceOutput>& out) {
  std::lock_guard lock(mutex_);
  splitter_.feed(bytes);
  while (auto message = splitter_.next()) {
    if (!*message) {
      error(-223, "Too much data; message longer than the input buffer");
      continue;
    }
    run_message(message->value(), now, out);
    if (!faults_.connected(now)) {
      splitter_.reset();  // unplugged: whatever else was in flight is lost
      return;
    }
  }
}

void ScpiInstrument::run_message(const std::string& message, Clock::time_point now,
                                 std::deque<firmware_iface::DeviceOutput>& out) {
  auto program = scpi::parse_program(message);
  if (!program) {
    if (program.error() == Errc::kBadBlock) {
      error(-161, "Invalid block data");
    } else {
      error(-102, "Syntax error");
    }
    return;
  }
  Context context;
  bool drop = false, corrupt = false;
  Clock::time_point ready = now;
  for (const scpi::Command& command : program.value()) {
    const FaultInjector::Decision d = faults_.on_command(now);
    if (!faults_.connected(now)) {  // unplugged: it comes back power-cycled
      power_on();
      return;
    }
    if (d.reset) power_on();
    drop = drop || d.drop;
    corrupt = corrupt || d.corrupt;
    ready = std::max(ready, d.ready_at);
    context.nan = d.nan;
    if (!common(command, context) && !execute(command, context)) {
      error(-113, "Undefined header");
      break;  // a command error ends the message
    }
  }
  if (context.responses.empty() || drop) return;
  std::vector<std::uint8_t> bytes;
  for (std::size_t i = 0; i < context.responses.size(); ++i) {
    if (i > 0) bytes.push_back(';');
    bytes.insert(bytes.end(), context.responses[i].begin(), context.responses[i].end());
  }
  bytes.push_back('\n');
  if (corrupt) faults_.corrupt_reply(bytes);
  out.push_back({std::move(bytes), ready});
}

bool ScpiInstrument::common(const scpi::Command& c, Context& context) {
  const auto reg_arg = [&](unsigned& reg) {
    if (!expect_args(c, 1)) return;
    if (const auto v = number_arg(c.args[0], 0, 255)) reg = static_cast<unsigned>(std::lround(*v));
  };
  if (c.common()) {
    if (matches("*IDN?", c)) {
      if (expect_args(c, 0)) context.respond(scpi::format_identity(options_.identity));
    } else if (matches("*RST", c)) {
      if (expect_args(c, 0)) reset_settings();
    } else if (matches("*CLS", c)) {
      if (expect_args(c, 0)) {
        queue_.clear();
        esr_ = 0;
      }
    } else if (matches("*OPC", c)) {
      if (expect_args(c, 0)) esr_ |= kEsrOperationComplete;  // every operation is sequential
    } else if (matches("*OPC?", c)) {
      if (expect_args(c, 0)) context.respond("1");
    } else if (matches("*WAI", c)) {
      (void)expect_args(c, 0);
    } else if (matches("*ESR?", c)) {
      if (expect_args(c, 0)) {
        context.respond(std::to_string(esr_));
        esr_ = 0;
      }
    } else if (matches("*ESE", c)) {
      reg_arg(ese_);
    } else if (matches("*ESE?", c)) {
      if (expect_args(c, 0)) context.respond(std::to_string(ese_));
    } else if (matches("*SRE", c)) {
      reg_arg(sre_);
    } else if (matches("*SRE?", c)) {
      if (expect_args(c, 0)) context.respond(std::to_string(sre_));
    } else if (matches("*STB?", c)) {
      if (expect_args(c, 0)) {
        unsigned stb = (queue_.empty() ? 0u : 0x04u) | ((esr_ & ese_) != 0 ? 0x20u : 0u);
        if ((stb & sre_) != 0) stb |= 0x40;  // master summary
        context.respond(std::to_string(stb));
      }
    } else if (matches("*TST?", c)) {
      if (expect_args(c, 0)) context.respond("0");
    } else if (matches("*TRG", c)) {
      if (expect_args(c, 0)) trigger();
    } else {
      return false;
    }
    return true;
  }
  if (matches("SYSTem:ERRor[:NEXT]?", c)) {
    if (expect_args(c, 0)) context.respond(scpi::format_error(queue_.pop()));
  } else if (matches("SYSTem:ERRor:COUNt?", c)) {
    if (expect_args(c, 0)) context.respond(std::to_string(queue_.size()));
  } else if (matches("SYSTem:VERSion?", c)) {
    if (expect_args(c, 0)) context.respond("1999.0");
  } else {
    return false;
  }
  return true;
}

bool ScpiInstrument::expect_args(const scpi::Command& command, std::size_t n) {
  if (command.args.size() < n) {
    error(-109, "Missing parameter");
    return false;
  }
  if (command.args.size() > n) {
    error(-108, "Parameter not allowed");
    return false;
  }
  return true;
}

std::optional<double> ScpiInstrument::number_arg(const scpi::Argument& arg, double lo, double hi) {
  using Kind = scpi::Argument::Kind;
  if (arg.kind == Kind::kCharacter) {
    const scpi::Command as_header{arg.text, false, {}};
    if (matches("MINimum", as_header)) return lo;
    if (matches("MAXimum", as_header)) return hi;
  }
  if (arg.kind != Kind::kNumber) {
    error(-104, "Data type error; a number was expected");
    return std::nullopt;
  }
  if (!arg.suffix.empty()) {
    error(-131, "Invalid suffix; give the value in base units without a suffix");
    return std::nullopt;
  }
  if (!(arg.number >= lo && arg.number <= hi)) {
    error(-222, "Data out of range; allowed " + format_number(lo) + " to " + format_number(hi));
    return std::nullopt;
  }
  return arg.number;
}

std::optional<bool> ScpiInstrument::bool_arg(const scpi::Argument& arg) {
  using Kind = scpi::Argument::Kind;
  if (arg.kind == Kind::kNumber && arg.suffix.empty() && (arg.number == 0 || arg.number == 1)) {
    return arg.number == 1;
  }
  if (arg.kind == Kind::kCharacter) {
    const scpi::Command as_header{arg.text, false, {}};
    if (matches("ON", as_header)) return true;
    if (matches("OFF", as_header)) return false;
  }
  error(arg.kind == Kind::kNumber || arg.kind == Kind::kCharacter ? -224 : -104,
        "Illegal parameter value; ON, OFF, 1 or 0 expected");
  return std::nullopt;
}

std::optional<std::size_t> ScpiInstrument::choice_arg(
    const scpi::Argument& arg, std::initializer_list<std::string_view> patterns) {
  if (arg.kind == scpi::Argument::Kind::kCharacter) {
    const scpi::Command as_header{arg.text, false, {}};
    std::size_t i = 0;
    for (const std::string_view p : patterns) {
      if (matches(p, as_header)) return i;
      ++i;
    }
  }
  std::string allowed;
  for (const std::string_view p : patterns) {
    if (!allowed.empty()) allowed += ", ";
    allowed += p;
  }
  error(-224, "Illegal parameter value; expected one of " + allowed);
  return std::nullopt;
}

std::string ScpiInstrument::format_number(double value) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::general);
  return std::string(buf, r.ptr);
}

}  // namespace pnn::drivers::sim

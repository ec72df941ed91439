#pragma once
/// Numbers in messages about limits: the shortest decimal text that reads back as exactly the
/// same double (std::to_chars), so a value just outside a limit never prints as the limit itself
/// ("-1.0000001 ... outside [-1, 1]", where six significant digits would print "-1"). ±inf and
/// nan print as "inf", "-inf", "nan". Thread-safe.
#include <string>

namespace pnn::drivers {

std::string format_shortest(double value);

/// The same in %g style (std::chars_format::general: "100000" rather than "1e+05"), for SCPI
/// program messages and the values they echo in messages.
std::string format_decimal(double value);

}  // namespace pnn::drivers

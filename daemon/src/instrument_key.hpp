#pragma once
/// Which instrument a device address reaches, as a canonical text: two addresses with equal keys
/// name the same instrument, so pnnd refuses to give it two device names (each name would get
/// its own limits, lease and worker: a second name with wider limits could drive it past the
/// first one's). Used by parse_daemon_config and on reload.
///
///   sim://KIND?...            "sim://KIND?serial=S" with the serial= option, else
///                             "sim://KIND?seed=N" (seed= as a number, default 1): a simulated
///                             instrument is its kind and its serial, which the seed makes
///   tcp://HOST:PORT?...       "tcp://HOST:PORT": one endpoint is one instrument (its query only
///                             configures the driver). HOST lower-cased; localhost, 127.0.0.1
///                             and ::1 are the same host; PORT as a number
///   usb://VID:PID?serial=S    "usb://vvvv:pppp?serial=S" (hex, lower case, 4 digits); usbtmc://
///                             gives the same key (one USB device, whichever class driver)
///   anything else             the address as written (also a malformed one)
///
/// Syntactic: nothing is opened or resolved (tcp://lab-pc:5025 and tcp://10.0.0.5:5025 differ
/// even when they are one machine), and a sim:// seed= is not matched against an explicit
/// serial= (seed=1 vs serial=SIM-OSC-1); the serial a device reports when it is configured is
/// the final check. Thread-safe, never throws except std::bad_alloc.
#include <string>

namespace pnn::daemon {

std::string instrument_key(const std::string& address);

}  // namespace pnn::daemon

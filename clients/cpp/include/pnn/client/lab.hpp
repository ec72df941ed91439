#pragma once
/// The lab registry (docs/lab.md): which daemons a lab has, where they listen and which CURVE key
/// each presents, so that a device is named `DAEMON/DEVICE` anywhere a client names a device
/// (Tango's device database, without a database server: one YAML file the lab keeps in its
/// repository). The file comes from `--lab FILE` or the environment variable PNN_LAB.
///
///   daemons:
///     - name: optics                     # [A-Za-z0-9._-]+, unique in the file
///       rpc: tcp://optics-pc:7700        # tcp://HOST:PORT or ipc://PATH
///       telemetry: tcp://optics-pc:7701  # optional: else the one the daemon announces
///       server_key: "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"   # optional: CURVE, Z85
///       description: SHG table, room 2.14                       # optional
///
/// Every error names the file and line, the problem and the fix. Thread rule: a Lab is immutable
/// once loaded; use it from any thread.
#include <stdexcept>
#include <string>
#include <vector>

namespace pnn::client {

/// A registry that cannot be read, or a name it cannot resolve; the message says which.
class LabError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LabDaemon {
  std::string name;
  std::string rpc;
  std::string telemetry;   ///< "" = the one the daemon announces in Hello
  std::string server_key;  ///< Z85 CURVE public key ("" = plain, loopback or a trusted net)
  std::string description;
  int line = 0;  ///< where the entry starts in the file (1-based), for messages
};

/// A device name resolved through the registry.
struct LabTarget {
  const LabDaemon* daemon = nullptr;
  std::string device;
};

class Lab {
 public:
  /// Reads and checks the registry at `path`. Throws LabError.
  static Lab load(const std::string& path);
  /// The same from text; `source` names it in messages.
  static Lab parse(const std::string& yaml_text, const std::string& source);

  const std::string& source() const { return source_; }
  const std::vector<LabDaemon>& daemons() const { return daemons_; }
  /// The daemon called `name`; LabError naming the file and the daemons it lists otherwise.
  const LabDaemon& daemon(const std::string& name) const;
  /// "DAEMON/DEVICE" → that daemon and DEVICE. LabError for a name without exactly one '/', an
  /// empty part or an unknown daemon.
  LabTarget resolve(const std::string& qualified) const;
  /// "optics (lab.yaml line 4)": the registry entry of `daemon` as messages name it.
  std::string entry(const LabDaemon& daemon) const;

 private:
  std::string source_;
  std::vector<LabDaemon> daemons_;
};

/// What a no-reply error adds for a daemon of the registry (`entry` as Lab::entry gives it): the
/// daemon is down, or its registry entry is wrong.
inline std::string unreachable_hint(const std::string& entry) {
  return "the lab registry's daemon " + entry +
         " is down, or its rpc endpoint or server_key there is wrong";
}

/// Whether `name` is of the form DAEMON/DEVICE (device names themselves contain no '/').
inline bool is_lab_name(const std::string& name) { return name.find('/') != std::string::npos; }

/// The DAEMON/DEVICE a job config's device address names: `pnnd://DAEMON/DEVICE`, or
/// `DAEMON/DEVICE` without a scheme; "" for any other address (sim://, usb://, ...).
inline std::string lab_device_name(const std::string& address) {
  constexpr const char* kScheme = "pnnd://";
  if (address.rfind(kScheme, 0) == 0) return address.substr(7);
  if (address.find("://") == std::string::npos && is_lab_name(address)) return address;
  return "";
}

}  // namespace pnn::client

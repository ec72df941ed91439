#pragma once
/// A device of another daemon, as a local PhysicalSystem (docs/lab.md, "Jobs across daemons"):
/// a job that runs in this process (pnnctl train) uses it like any device. It is a client of
/// that daemon: configure leases the device, a keep-alive thread renews the lease at a third of
/// its TTL, cleanup (and so every way the job ends: shutdown, the destructor) releases it.
/// forward is the daemon's Forward with the lease; the daemon de-duplicates a retried request,
/// so a retry after a lost reply never runs the hardware twice.
///
/// The twin is the nominal twin of the device's address (its kind's datasheet), built here: a
/// calibration or learned twin the remote daemon keeps is not carried over (the job calibrates
/// its own when its config asks for it).
///
/// Thread rule: as PhysicalSystem (calls serialized by its mutex); the keep-alive thread has its
/// own connection with the same client id.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "pnn/client/client.hpp"
#include "pnn/drivers/physical_system.hpp"

namespace pnn::client {

struct RemoteDeviceOptions {
  std::string label;     ///< how messages name it, e.g. "bench/osc"
  std::string device;    ///< its name on that daemon
  ClientOptions client;  ///< endpoint, CURVE, timeout, retries; client_id "" = generated
  std::string hint;      ///< appended to "did not answer" errors (which registry entry to check)
  std::uint32_t lease_ttl_ms = 30000;
  /// The nominal twin of the address the daemon drives the device at (e.g. from its kind's
  /// datasheet: the caller's device registry). Throws std::invalid_argument when it has none.
  /// Not called for a device the daemon describes as having no twin.
  std::function<digital_twin::ModelPtr(const std::string& address)> twin_for;
  /// Called, on a thread of its own, with the device's state as its daemon publishes it
  /// (telemetry state/DEVICE) each time its state, health or health message changes; empty: no
  /// subscription. `telemetry`: that daemon's PUB endpoint ("" = the one it announces in Hello).
  std::function<void(const v1::DeviceInfo&)> on_state;
  std::string telemetry;
};

/// The PUB endpoint a daemon announces in its Hello capabilities (telemetry=...), a wildcard host
/// replaced by the host of `rpc`; "" if it announces none.
std::string announced_telemetry(const v1::HelloReply& hello, const std::string& rpc);

class RemoteDevice final : public drivers::PhysicalSystem {
 public:
  /// Describes the device (spec and address) and builds its nominal twin. Throws
  /// std::invalid_argument naming the device and the fix when the daemon does not answer, does
  /// not know the device, or the address's kind has no datasheet here.
  static std::unique_ptr<RemoteDevice> open(RemoteDeviceOptions options);
  ~RemoteDevice() override;

  digital_twin::ModelPtr nominal_twin() const override { return twin_; }
  /// The address the remote daemon drives the device at.
  const std::string& remote_address() const { return address_; }

 private:
  struct KeepAlive;
  struct StateWatch;
  RemoteDevice(RemoteDeviceOptions options, drivers::DeviceSpec spec, std::string address,
               digital_twin::ModelPtr twin);
  drivers::Result<void> do_configure() override;
  drivers::Result<void> do_activate() override;
  drivers::Result<void> do_cleanup() override;
  drivers::Result<Matrix> do_forward(const MatrixRef& x, const VectorRef& theta) override;
  /// The daemon's reply to `request`, or the error (no reply, or an error status) as a driver
  /// error naming the device.
  drivers::Result<v1::Reply> call(v1::Request request);

  RemoteDeviceOptions options_;
  std::string address_;
  digital_twin::ModelPtr twin_;
  std::unique_ptr<Client> client_;
  std::string lease_token_;
  std::unique_ptr<KeepAlive> keep_alive_;
  std::unique_ptr<StateWatch> state_watch_;
};

/// The spec of a device as the daemon describes it. The input range is the float32 one inside
/// the hard limits (the wire carries inputs as float32), so what passes the local checks is what
/// the daemon accepts.
drivers::DeviceSpec spec_from_proto(const v1::DeviceSpec& spec);

}  // namespace pnn::client

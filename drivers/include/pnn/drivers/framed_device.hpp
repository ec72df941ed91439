#pragma once
/// The driver of a lab-built instrument board that speaks the binary frame protocol v1
/// (docs/protocol.md) over any `firmware_iface::Transport`: USB bulk endpoints for a real board,
/// the in-process loopback for a simulated one. One driver code path for both.
///
/// What it does on the wire:
///   configure   open the transport; Identify (serial, model, firmware into the spec; after a
///               reconnect the serial must be the one first seen, else kIo "identity mismatch");
///               GetCapabilities (sizes must match the spec; hard limits become the tighter of
///               the board's and the datasheet's); Abort (start from the safe state)
///   activate    GetStatus (a board reporting FAULT is not activated)
///   forward     SetParameters (only when θ changed since the board last confirmed it),
///               LoadInputBatch, GetStatus (a reset since θ was confirmed: send θ again before
///               Run), Run, ReadOutputs
///   settle      (energy-based boards) SetParameters if θ changed, LoadInputBatch, Settle →
///               SettleReply (node voltages); "not settled" is returned as kTimeout
///   spike_run   (spiking boards) SetParameters if θ changed, SpikeRun (the batch as input event
///               lists) → SpikeRunReply (outputs, hidden spikes, 8-bit output traces),
///               GetStatus (a reset in between: θ again, run again); a reply cut off mid-batch is
///               asked again within the retry budget, then kTimeout with nothing kept
///   deactivate  Abort: the board drives its outputs safe
///   cleanup     close the transport
///
/// Faults. Every command has a deadline. Idempotent commands (everything but Run) are retried
/// after a timeout or a corrupted reply, up to `retries` times, with the link cleared first so
/// a late reply is never taken for the answer to the next command (each reply must echo its
/// command's sequence number). Run is never blindly repeated: after a lost Run reply the driver
/// asks the board's status and reads the outputs if the run happened, so a batch whose outputs
/// were delivered is never executed twice; after a firmware reset (the board answers "no batch
/// loaded" / "no outputs") θ and the batch are sent again. A forward that still fails returns
/// kTimeout, kIo (disconnected, corrupted beyond the retry budget) or kDeviceFault (the board's
/// own error, with its text), and the PhysicalSystem base sets health FAULT.
#include <chrono>
#include <string>

#include "pnn/drivers/address.hpp"
#include "pnn/drivers/physical_system.hpp"
#include "pnn/firmware_iface/messages.hpp"
#include "pnn/firmware_iface/transport.hpp"

namespace pnn::drivers {

struct FramedDeviceOptions {
  std::chrono::milliseconds command_timeout{1000};  ///< per attempt, every command but Run
  std::chrono::milliseconds run_timeout{30000};     ///< per attempt, Run (the physics runs)
  int retries = 3;                                  ///< extra attempts per command
};

/// Reads and removes a board address's driver options: `timeout_ms=T` (1..600000, the per-command
/// timeout; a Run gets 10·T) and `retries=N` (0..100). Throws std::invalid_argument naming the
/// option and its range.
FramedDeviceOptions take_framed_device_options(DeviceAddress& address);

/// Largest frame payload a link to a board with `spec` must carry (its largest batch or θ), at
/// least the protocol's default 1 MiB. Both ends size their decoders with it.
std::uint32_t max_frame_payload(const DeviceSpec& spec);

/// The driver for `transport` (not yet open). `spec` is the datasheet view (units, limits,
/// sizes); the board's identity and its own limits refine it at configure. `twin` is the
/// setup's nominal digital twin, or nullptr for a board without one (a described board): rules
/// that need a vjp are then refused, SPSA and MGD train it.
PhysicalSystemPtr make_framed_device(DeviceSpec spec, digital_twin::ModelPtr twin,
                                     firmware_iface::TransportPtr transport,
                                     FramedDeviceOptions options = {});

// --- boards that describe themselves (protocol 1.1) ---------------------------------------------

/// The spec a DescribeReply gives (no identity yet). Throws std::invalid_argument naming the
/// problem and the fix when `firmware_iface::describe_problem` finds one; `where` is the address.
DeviceSpec spec_from_description(const firmware_iface::DescribeReply& description,
                                 const std::string& where);

/// Opens `link`, asks identify and describe, closes it, and returns the board's spec with its
/// identity. Throws std::invalid_argument, naming the fix, when the link cannot be opened or
/// times out, the board does not know describe (a 1.0 board: "add kind="), or the description
/// does not decode or is refused.
DeviceSpec describe_board(firmware_iface::Transport& link, const FramedDeviceOptions& options,
                          const std::string& where);

/// describe_board, then the framed driver with that spec and no twin.
PhysicalSystemPtr make_described_device(firmware_iface::TransportPtr transport,
                                        FramedDeviceOptions options, const std::string& where);

}  // namespace pnn::drivers

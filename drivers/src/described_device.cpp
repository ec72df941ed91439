// A board that describes itself (protocol 1.1, `describe`): its spec comes from the board, so a
// new setup needs no datasheet and no C++ (docs/protocol.md §2, "describe").
#include <sstream>
#include <stdexcept>

#include "pnn/drivers/framed_device.hpp"
#include "pnn/firmware_iface/frame.hpp"
#include "pnn/firmware_iface/messages.hpp"

namespace pnn::drivers {
namespace {

namespace fw = firmware_iface;

// One command and its reply (the one echoing its seq), or a link error.
fw::Result<fw::Message> ask(fw::Transport& link, fw::FrameDecoder& decoder,
                            const fw::Message& command, std::uint32_t seq,
                            std::chrono::milliseconds timeout) {
  const fw::Deadline deadline = fw::deadline_after(timeout);
  std::vector<std::uint8_t> bytes;
  fw::encode_message(command, seq, bytes);
  if (auto ec = link.write(bytes, deadline)) return ec;
  std::vector<std::uint8_t> rx(64 * 1024);
  for (;;) {
    while (auto frame = decoder.next()) {
      if (frame->header.seq != seq) continue;  // a late reply to something else
      auto reply = fw::decode_message(*frame);
      if (!reply) return reply.error();
      return std::move(reply).value();
    }
    auto n = link.read_some(rx, deadline);
    if (!n) return n.error();
    decoder.feed(std::span<const std::uint8_t>(rx.data(), *n));
  }
}

[[noreturn]] void refuse(const std::string& where, const std::string& text) {
  throw std::invalid_argument("device address '" + where + "': " + text);
}

const char* kAddKind =
    "add kind=KIND to the address (the setup kind whose datasheet describes the board)";

}  // namespace

DeviceSpec spec_from_description(const fw::DescribeReply& d, const std::string& where) {
  if (const std::string problem = fw::describe_problem(d); !problem.empty()) {
    refuse(where, "the board's describe reply is refused before the device is configured: " +
                      problem);
  }
  DeviceSpec s;
  s.kind = d.kind.empty() ? "described" : d.kind;
  s.num_inputs = static_cast<Index>(d.num_inputs);
  s.num_outputs = static_cast<Index>(d.num_outputs);
  s.input_unit = d.input_unit;
  s.output_unit = d.output_unit;
  s.input_min = d.input_min;
  s.input_max = d.input_max;
  s.output_noise_std = d.output_noise_std;
  s.max_batch = static_cast<Index>(d.max_batch);
  for (const fw::DescribedBlock& b : d.blocks) {
    s.params.push_back(
        {b.name, static_cast<Index>(b.count), b.unit, b.min, b.max, b.description});
  }
  return s;
}

DeviceSpec describe_board(fw::Transport& link, const FramedDeviceOptions& options,
                          const std::string& where) {
  auto fail_link = [&](const char* what, std::error_code ec) -> DeviceSpec {
    link.close();
    refuse(where, std::string(what) + " over " + link.describe() + " failed: " + ec.message() +
                      (ec == fw::Errc::kTimeout || ec == fw::Errc::kDisconnected
                           ? " (is the device server running and reachable?)"
                           : "") +
                      "; without kind= the board must answer when the address is read, to "
                      "describe itself");
  };
  if (auto ec = link.open(fw::deadline_after(options.command_timeout))) {
    return fail_link("opening the link", ec);
  }
  // Describe replies are small; a board that claims more is refused as oversize.
  fw::FrameDecoder decoder(fw::FrameDecoderOptions{.max_payload_bytes = fw::kDefaultMaxPayloadBytes});
  auto id = ask(link, decoder, fw::IdentifyRequest{}, 1, options.command_timeout);
  if (!id) return fail_link("identify", id.error());
  const auto* ident = std::get_if<fw::IdentifyReply>(&*id);
  if (!ident) {
    link.close();
    refuse(where, "the device did not answer identify with identify_reply (is it a frame-protocol "
                  "board?)");
  }
  if (ident->serial.empty()) {
    link.close();
    refuse(where, "the board's identify reply has an empty serial (the serial binds checkpoints "
                  "and calibrations to the device: give the board one)");
  }
  auto reply = ask(link, decoder, fw::DescribeRequest{}, 2, options.command_timeout);
  link.close();
  if (!reply && reply.error() == fw::Errc::kTimeout) {
    refuse(where, "board " + ident->serial + " did not answer describe within " +
                      std::to_string(options.command_timeout.count()) +
                      " ms (a protocol 1.0 board?): " + kAddKind);
  }
  if (!reply) {
    refuse(where, "board " + ident->serial + ": its describe reply does not decode (" +
                      reply.error().message() + "); fix the board's describe, or " + kAddKind);
  }
  if (const auto* e = std::get_if<fw::ErrorReply>(&*reply)) {
    refuse(where, "board " + ident->serial + " does not support describe (it answered: " +
                      e->message + "; a protocol 1.0 board): " + kAddKind);
  }
  const auto* d = std::get_if<fw::DescribeReply>(&*reply);
  if (!d) {
    refuse(where, "board " + ident->serial + " answered describe with " +
                      std::string(fw::to_string(fw::message_type(*reply))) + ": " + kAddKind);
  }
  DeviceSpec spec = spec_from_description(*d, where);
  spec.serial = ident->serial;
  spec.model = ident->model;
  spec.firmware = ident->firmware_version;
  return spec;
}

PhysicalSystemPtr make_described_device(fw::TransportPtr transport, FramedDeviceOptions options,
                                        const std::string& where) {
  if (!transport) throw std::invalid_argument("make_described_device: null transport");
  DeviceSpec spec = describe_board(*transport, options, where);
  return make_framed_device(std::move(spec), nullptr, std::move(transport), options);
}

}  // namespace pnn::drivers

#include "pnn/drivers/setups.hpp"

#include "pnn/drivers/setups/electronic_circuit.hpp"
#include "pnn/drivers/setups/mechanical_oscillators.hpp"
#include "pnn/drivers/setups/mechanical_plate.hpp"
#include "pnn/drivers/setups/mtj_rf.hpp"
#include "pnn/drivers/setups/null.hpp"
#include "pnn/drivers/setups/optical_shg.hpp"
#include "pnn/drivers/setups/optical_spd.hpp"
#include "pnn/drivers/setups/power_law.hpp"
#include "pnn/drivers/setups/resistive_network.hpp"
#include "pnn/drivers/setups/spiking_chip.hpp"
#include "pnn/drivers/setups/stno_rnn.hpp"

namespace pnn::drivers {
namespace {

// The table holds plain datasheets; kinds whose reality needs more (the twin's config) return a
// struct derived from Datasheet, sliced here.
template <auto F>
Datasheet sliced(const DeviceAddress& address) {
  return F(address);
}

}  // namespace

const std::vector<SetupKind>& setup_kinds() {
  using enum InstrumentDriver;
  static const std::vector<SetupKind> kinds = {
      {{"mechanical-oscillators", "coupled nonlinear oscillators (pendula / plate modes)",
        "sim://mechanical-oscillators?seed=1&n=64&gap=small"},
       kFramedBoard, setups::mechanical_oscillators},
      {{"power-law", "toy device y = a·x^θ (the pat-toy benchmark)", "sim://power-law?prefactor=2"},
       kFramedBoard, setups::power_law},
      {{"optical-shg", "pulse shaper, chi(2) crystal (SHG) and spectrometer",
        "sim://optical-shg?seed=1&inputs=64&params=64&outputs=64&gap=large"},
       kFramedBoard, sliced<setups::optical_shg>},
      {{"optical-spd", "optical matrix-vector product read by single-photon detectors",
        "sim://optical-spd?seed=1&inputs=64&outputs=100&photons=1"},
       kFramedBoard, sliced<setups::optical_spd>},
      {{"stno-rnn", "spin-torque nano-oscillator recurrent network (sequences, 8 inputs per period)",
        "sim://stno-rnn?seed=1&neurons=64&steps=8&inputs=8"},
       kFramedBoard, sliced<setups::stno_rnn>},
      {{"mtj-rf", "spin-diode MTJ synapse chains on an RF comb, STNO neurons",
        "sim://mtj-rf?seed=1&inputs=64&chains=64&offset_mhz=8"},
       kFramedBoard, sliced<setups::mtj_rf>},
      {{"electronic-circuit", "series RLC circuit with a junction diode, drive time-multiplexed",
        "sim://electronic-circuit?seed=1&slots=32"},
       kScpiCircuit, setups::electronic_circuit},
      {{"mechanical-plate", "speaker-driven plate (modal), drive time-multiplexed, microphone",
        "sim://mechanical-plate?seed=1&slots=32"},
       kFramedBoard, setups::mechanical_plate},
      {{"resistive-network",
        "nonlinear resistive network (diodes, trainable conductances) that settles to minimum "
        "dissipation",
        "sim://resistive-network?seed=1&inputs=64&hidden=128&outputs=10"},
       kFramedBoard, sliced<setups::resistive_network>},
      {{"spiking-chip",
        "analog LIF spiking chip (6-bit synapses, fixed-pattern mismatch, 8-bit membrane "
        "readout), inputs as spike events",
        "sim://spiking-chip?seed=1&features=4&hidden=120&outputs=3"},
       kFramedBoard, sliced<setups::spiking_chip>},
      {{"null", "returns its input (y = x), no parameters: measures overheads", "sim://null?inputs=784"},
       kNone, setups::null},
  };
  return kinds;
}

const SetupKind* find_setup_kind(const std::string& kind) {
  for (const auto& k : setup_kinds()) {
    if (k.info.kind == kind) return &k;
  }
  return nullptr;
}

std::string setup_kind_names() {
  std::string names;
  for (const auto& k : setup_kinds()) names += (names.empty() ? "" : ", ") + k.info.kind;
  return names;
}

std::vector<SetupInfo> known_setups() {
  std::vector<SetupInfo> out;
  for (const auto& k : setup_kinds()) out.push_back(k.info);
  return out;
}

}  // namespace pnn::drivers

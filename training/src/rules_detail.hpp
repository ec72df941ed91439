#pragma once
// The factories of the rules outside learning_rule.cpp, for make_learning_rule.
#include <memory>
#include <random>

#include "pnn/digital_twin/resistive_network.hpp"
#include "pnn/training/learning_rule.hpp"

namespace pnn::training::detail {

/// The random stream of one step: a pure function of (seed, step, salt), so a rule's "RNG state"
/// is its step counter and a resumed run draws the same values (zeroth_order.cpp).
std::mt19937_64 stream(std::uint64_t seed, std::int64_t step, std::uint32_t salt);

std::unique_ptr<LearningRule> make_spsa(const SpsaConfig& config, std::uint64_t seed);
std::unique_ptr<LearningRule> make_mgd(const MgdConfig& config, std::uint64_t seed);
/// forward_forward.cpp: ff, scff and probe.
std::unique_ptr<LearningRule> make_forward_forward(const RuleConfig& config, std::uint64_t seed);
/// predictive_coding.cpp
std::unique_ptr<LearningRule> make_pc(const PcConfig& config);
/// equilibrium_propagation.cpp: ep and coupled-learning.
std::unique_ptr<LearningRule> make_ep(const EpConfig& config);
std::unique_ptr<LearningRule> make_coupled_learning(const CoupledLearningConfig& config);
/// The energy structure of a device's setup (its datasheet's resistive network, carried by the
/// device's nominal twin), or null when the setup is not energy-based.
const digital_twin::ResistiveNetworkModel* energy_structure(const drivers::PhysicalSystem& device);

}  // namespace pnn::training::detail

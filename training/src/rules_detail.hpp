#pragma once
// The factories of the rules outside learning_rule.cpp, for make_learning_rule.
#include <memory>

#include "pnn/training/learning_rule.hpp"

namespace pnn::training::detail {

std::unique_ptr<LearningRule> make_spsa(const SpsaConfig& config, std::uint64_t seed);
std::unique_ptr<LearningRule> make_mgd(const MgdConfig& config, std::uint64_t seed);
/// predictive_coding.cpp
std::unique_ptr<LearningRule> make_pc(const PcConfig& config);

}  // namespace pnn::training::detail

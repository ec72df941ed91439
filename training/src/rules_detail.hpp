#pragma once
// The zeroth-order rules' factories (zeroth_order.cpp), for make_learning_rule.
#include <memory>

#include "pnn/training/learning_rule.hpp"

namespace pnn::training::detail {

std::unique_ptr<LearningRule> make_spsa(const SpsaConfig& config, std::uint64_t seed);
std::unique_ptr<LearningRule> make_mgd(const MgdConfig& config, std::uint64_t seed);

}  // namespace pnn::training::detail

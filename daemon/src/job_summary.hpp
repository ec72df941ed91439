#pragma once
// The final result of a training job as JSON, with the keys of `pnnctl train --json`.
#include <string>

#include "pnn/training/job.hpp"

namespace pnn::daemon::detail {

std::string job_summary_json(const training::JobConfig& config, const training::JobResult& r);

}  // namespace pnn::daemon::detail

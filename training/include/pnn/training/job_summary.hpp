#pragma once
/// The final result of a training job as one JSON object, with the keys of `pnnctl train --json`
/// (docs/clients.md): name, dataset, split, seed, devices, epochs, wall_s, threads, checkpoint,
/// plot, acc_<rule>_reality (acc_pat_reality, acc_spsa_reality, acc_mgd_reality: the main
/// phase's accuracy on the hardware) with hardware_calls (its training's device calls),
/// acc_insilico_reality / acc_twin / acc_digital where the phase ran, calibration and phases
/// (with their per-epoch history and hardware calls). The daemon stores it as a run's
/// summary_json; pnnctl prints it for in-process runs, so both modes give the same keys.
/// Pure function, thread-safe.
#include <string>

#include "pnn/training/job.hpp"

namespace pnn::training {

std::string job_summary_json(const JobConfig& config, const JobResult& r);

}  // namespace pnn::training

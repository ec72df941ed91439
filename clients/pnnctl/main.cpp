// pnnctl: the command-line client of pnn-hil (docs/clients.md).
//   daemon-free:  train CONFIG [--resume CKPT] · bench NAME · describe [sim://ADDRESS ...]
//   with pnnd:    hello · devices · describe NAME · lifecycle · acquire · renew · release ·
//                 forward · calibrate · twin fit|list|show|use · train CONFIG --remote · jobs · runs [show|export] · watch
//   sweeps:       sweep PLAN [--jobs N | --slurm] · sweep run|status|merge|show DIR
//   --version:    project and protocol version
// Exit codes: 0 success, 1 run failed or the daemon said no, 2 bad usage, config or input,
// 3 daemon unreachable, 130 interrupted.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "errors.hpp"
#include "pnn/common/version.hpp"
#include "pnn/proto/wire.hpp"
#include "pnn/training/checkpoint.hpp"
#include "pnn/training/job.hpp"
#include "verbs.hpp"
#include "pnn/digital_twin/memory.hpp"

int main(int argc, char** argv) {
  pnn::digital_twin::tune_allocator_for_batches();
  namespace tr = pnn::training;
  using namespace pnnctl;
  CLI::App app{"pnnctl: train physical neural networks with the hardware in the loop"};
  app.set_version_flag("--version", std::string("pnnctl ") + pnn::kVersion + " (protocol " +
                                        std::to_string(pnn::wire::kProtocolMajor) + "." +
                                        std::to_string(pnn::wire::kProtocolMinor) + ")");
  app.require_subcommand(1);
  app.fallthrough();  // connection options may follow the verb
  RemoteOptions remote;
  Action action;
  add_remote_options(app, remote);
  add_local_verbs(app, remote, action);
  add_device_verbs(app, remote, action);
  add_job_verbs(app, remote, action);
  add_twin_verbs(app, remote, action);
  add_watch_verb(app, remote, action);
  add_sweep_verbs(app, remote, action);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  try {
    return action ? action() : kExitUsage;
  } catch (const DaemonError& e) {
    std::fprintf(stderr, "pnnctl: %s: %s%s%s\n", e.code_name().c_str(), e.what(),
                 e.origin().empty() ? "" : " [",
                 e.origin().empty() ? "" : (e.origin() + "]").c_str());
    return e.exit_code();
  } catch (const Unreachable& e) {
    std::fprintf(stderr, "pnnctl: daemon unreachable: %s\n", e.what());
    return kExitUnreachable;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "pnnctl: %s\n", e.what());
    return kExitUsage;
  } catch (const tr::ConfigError& e) {
    std::fprintf(stderr, "pnnctl: config error: %s\n", e.what());
    return kExitUsage;
  } catch (const tr::DatasetError& e) {
    std::fprintf(stderr, "pnnctl: data error: %s\n", e.what());
    return kExitUsage;
  } catch (const tr::CheckpointError& e) {
    std::fprintf(stderr, "pnnctl: checkpoint error: %s\n", e.what());
    return kExitUsage;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "pnnctl: %s\n", e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pnnctl: error: %s\n", e.what());
    return kExitFailed;
  }
}

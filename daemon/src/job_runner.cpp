// The job runner: SubmitJob (a training job on this daemon's devices, owned by lease for the
// whole run), its thread, whose device calls all run on the devices' workers, the run store's
// record of it; JobStatus, CancelJob, ListRuns/GetRun and Snapshot.
#include <filesystem>
#include <map>
#include <set>

#include "pnn/client/lab.hpp"
#include "pnn/client/remote_device.hpp"
#include "pnn/drivers/registry.hpp"
#include "pnn/training/job_summary.hpp"
#include "proto_fill.hpp"
#include "server_impl.hpp"

namespace pnn::daemon {

namespace fs = std::filesystem;
using detail::fill_metric;
using detail::fill_run;
using detail::set_status;
using detail::to_proto;

void Server::Impl::publish_job(const JobSlot& j) {
  v1::Event e;
  *e.mutable_job() = j.info;
  telemetry.publish("job/" + std::to_string(j.id), e);
}

void Server::Impl::submit_job(const Call& call, const v1::SubmitJobRequest& r) {
  std::string yaml = r.config_yaml();
  std::optional<RunRecord> resumed;
  if (r.resume_run_id() != 0) {
    resumed = store->get_run(r.resume_run_id());
    if (!resumed) {
      send_error(call, v1::UNKNOWN_RUN, "no run " + std::to_string(r.resume_run_id()));
      return;
    }
    if (!may_control(call, resumed->owner)) {
      send_error(call, v1::PERMISSION_DENIED,
                 "run " + std::to_string(resumed->run_id) + " belongs to another client; "
                 "only its owner or an admin (security.clients role: admin) may resume it",
                 "run " + std::to_string(resumed->run_id));
      return;
    }
    for (const auto& [id, j] : jobs) {
      if (!j->finished && j->run_id == resumed->run_id) {
        send_error(call, v1::INVALID_ARGUMENT, "run " + std::to_string(resumed->run_id) +
                                                   " is running as job " + std::to_string(id));
        return;
      }
    }
    if (resumed->state == RunState::kSucceeded) {
      send_error(call, v1::INVALID_ARGUMENT,
                 "run " + std::to_string(resumed->run_id) + " already succeeded; nothing to resume");
      return;
    }
    if (yaml.empty()) yaml = resumed->config_yaml;
  }
  const std::string source = r.config_name().empty() ? "job.yaml" : r.config_name();
  training::JobConfig job_config;
  try {
    job_config = training::parse_job_config(yaml, source);
  } catch (const training::ConfigError& e) {
    send_error(call, v1::INVALID_ARGUMENT, e.what(), source);
    return;
  } catch (const std::exception& e) {  // e.g. a YAML conversion the reader did not name
    send_error(call, v1::INVALID_ARGUMENT, source + ": " + e.what(), source);
    return;
  }
  auto job = std::make_unique<JobSlot>();
  job->owner = call.identity;
  std::set<DeviceSlot*> unique;
  std::map<std::string, DeviceSlot*> slot_of;  // by the config's device name
  for (const auto& entry : job_config.devices) {
    DeviceSlot* s = find_device(entry.address);
    if (!s) {
      for (auto& [name, slot] : devices) {
        if (slot->config.address == entry.address) s = slot.get();
      }
    }
    if (const std::string lab_name = client::lab_device_name(entry.address); !s && !lab_name.empty()) {
      if (config.lab.empty()) {
        send_error(call, v1::UNKNOWN_DEVICE,
                   source + ": devices." + entry.name + ": '" + entry.address +
                       "' is a device of another daemon, and this daemon has no lab registry "
                       "(lab: in its config, docs/lab.md); its own devices: " + device_names());
        return;
      }
      // Checked now, so that a wrong name fails the submission rather than the run; the device
      // itself is leased when the job starts.
      try {
        if (!job->lab) job->lab = client::Lab::load(config.lab);
        (void)job->lab->resolve(lab_name);
      } catch (const client::LabError& e) {
        send_error(call, v1::INVALID_ARGUMENT,
                   source + ": devices." + entry.name + ": " + e.what(), source);
        return;
      }
      job->remote[entry.name] = lab_name;
      continue;
    }
    if (!s) {
      send_error(call, v1::UNKNOWN_DEVICE,
                 source + ": devices." + entry.name + ": '" + entry.address +
                     "' is neither the name nor the address of a device of this daemon "
                     "(devices: " + device_names() + ")");
      return;
    }
    if (auto f = check_lease(*s, ""); f && f->code != v1::LEASE_REQUIRED) {
      send_error(call, f->code, f->message + "; release it before submitting the job", origin(*s));
      return;
    }
    slot_of[entry.name] = s;
    job->external[entry.name] = s->device.get();
    // The job's calls on the device run on its worker, like every RPC's.
    job->executors[entry.name] = [this, s](const std::function<void()>& fn) { call_on_worker(*s, fn); };
    if (unique.insert(s).second) job->devices.push_back(s);
  }
  // twin: learned:<id>: the stored twin, checked against the device it will serve.
  for (const auto& layer : job_config.network) {
    if (layer.learned_twin == 0) continue;
    if (job->remote.count(layer.device)) {
      return send_error(call, v1::INVALID_ARGUMENT,
                        source + ": network: physical " + layer.device +
                            ": twin: learned:N names a twin of this daemon's store, and " +
                            layer.device + " is a device of another daemon",
                        source);
    }
    const std::string where = source + ": network: physical " + layer.device + ": twin: learned:" +
                              std::to_string(layer.learned_twin);
    std::string data_hash;
    if (auto problem = stored_twin(*slot_of.at(layer.device), layer.learned_twin,
                                   job->twins[layer.device], &data_hash)) {
      return send_error(call, problem->code, where + ": " + problem->message, source);
    }
    job->twin_provenance[layer.device] = {"learned:" + std::to_string(layer.learned_twin), data_hash};
  }
  std::vector<std::string> serials;
  for (auto* s : job->devices) serials.push_back(s->serial());
  std::uint64_t run_id = 0;
  if (resumed) {
    run_id = resumed->run_id;
    store->reopen_run(run_id);
    if (!resumed->checkpoint_path.empty() && fs::exists(resumed->checkpoint_path)) {
      job->resume_checkpoint = resumed->checkpoint_path;
    }
  } else {
    run_id = store->create_run(job_config.name, yaml, serials, call.identity);
  }
  job->id = store->allocate_job_id();  // unique across restarts of this store
  job->run_id = run_id;
  job_config.output_dir = (fs::path(config.runs_dir) / ("run-" + std::to_string(run_id))).string();
  job->main_phase = training::to_string(job_config.training.method);
  job->config = std::move(job_config);
  job->info.set_job_id(job->id);
  job->info.set_run_id(run_id);
  job->info.set_name(job->config.name);
  job->info.set_state(v1::RUNNING);
  job->info.set_phase(job->main_phase);  // every event names its phase, the first one too
  job->info.set_epochs_total(static_cast<std::uint32_t>(job->config.training.epochs));
  if (resumed) {
    job->info.set_epochs_done(static_cast<std::uint32_t>(job->resume_checkpoint ? resumed->epochs_done : 0));
    job->info.set_message(job->resume_checkpoint ? "resuming from " + *job->resume_checkpoint
                                                 : "resuming from the start (no checkpoint)");
  }
  for (auto* s : job->devices) {
    s->job_id = job->id;
    publish_device(*s);
  }
  JobSlot& j = *job;
  jobs[j.id] = std::move(job);
  log("info", "job " + std::to_string(j.id) + " (" + j.config.name + ", run " +
                  std::to_string(run_id) + ") started" + (resumed ? " as a resume" : "") +
                  " for client '" + call.client_id + "'");
  publish_job(j);
  j.thread = std::thread([this, &j] { job_main(j); });
  v1::Reply reply;
  reply.mutable_submit_job()->set_job_id(j.id);
  reply.mutable_submit_job()->set_run_id(run_id);
  send_reply(call, reply);
}

// Opens a job's device of another daemon (JobSlot::remote) as a client of that daemon, with this
// daemon's key pair where the registry gives a server key, under a client id of this job; its
// state changes on that daemon go to the job's log. Other addresses: nullptr.
std::function<drivers::PhysicalSystemPtr(const std::string&)> Server::Impl::remote_device_opener(
    JobSlot& job) {
  return [this, &job](const std::string& address) -> drivers::PhysicalSystemPtr {
    const std::string name = client::lab_device_name(address);
    if (name.empty()) return nullptr;
    try {
      const client::Lab& lab = *job.lab;  // read when the job was submitted
      const client::LabTarget target = lab.resolve(name);
      const client::LabDaemon& d = *target.daemon;
      client::RemoteDeviceOptions o;
      o.label = name;
      o.device = target.device;
      o.client.endpoint = d.rpc;
      o.client.client_id = "pnnd-" + telemetry.instance_id() + "-job" + std::to_string(job.id);
      o.client.timeout = std::chrono::milliseconds(5000);
      o.client.retries = 1;
      if (!d.server_key.empty()) {
        const std::string& secret = config.security.server_secret_key;
        o.client.curve = {d.server_key, client::curve_public_key(secret), secret};
      }
      o.hint = "; " + client::unreachable_hint(lab.entry(d));
      o.telemetry = d.telemetry;
      o.twin_for = [](const std::string& a) { return drivers::make_physical_system(a)->nominal_twin(); };
      o.on_state = [this, &job, name](const v1::DeviceInfo& info) {
        log_async("info", "job " + std::to_string(job.id) + ": " + name + " (its daemon): " +
                              v1::Lifecycle_Name(info.state()) + " " +
                              v1::Health_Name(info.health()) +
                              (info.health_message().empty() ? "" : ": " + info.health_message()));
      };
      return client::RemoteDevice::open(std::move(o));
    } catch (const client::LabError& e) {
      throw std::invalid_argument(e.what());
    }
  };
}

// The job thread. Owns its devices by lease for the whole run; every call on them runs on their
// workers (call_on_worker), never on this thread.
void Server::Impl::job_main(JobSlot& job) {
  RunState state = RunState::kFailed;
  std::string summary, message;
  std::vector<std::pair<DeviceSlot*, Lifecycle>> found;
  auto post_info = [this, &job](auto update) {
    asio::post(io, [this, &job, update] {
      update(job.info);
      publish_job(job);
    });
  };
  try {
    // Bring the devices up as far as the job needs; they are put back as found at the end.
    for (auto* s : job.devices) {
      drivers::Result<void> up;
      call_on_worker(*s, [&] {
        found.emplace_back(s, s->device->state());
        if (s->device->state() == Lifecycle::kUnconfigured) up = s->device->configure();
        if (up && s->device->state() == Lifecycle::kInactive) up = s->device->activate();
      });
      if (!up) throw std::runtime_error(up.error().message);
    }
    training::JobCallbacks cb;
    cb.stop_requested = [&job] { return job.stop.load(); };
    cb.on_log = [this, &job](const std::string& m) {
      log_async("info", "job " + std::to_string(job.id) + ": " + m);
    };
    auto last_progress = Clock::now() - std::chrono::seconds(1);
    // `batch` is 1-based (1..num_batches), as the trainer reports it.
    cb.on_batch = [&, post_info](const std::string& phase, int epoch, int, Index batch, Index nb,
                                 double loss) {
      const auto now = Clock::now();
      if (now - last_progress < std::chrono::milliseconds(200) && batch < nb) return;
      last_progress = now;
      post_info([phase, epoch, batch, nb, loss](v1::JobInfo& info) {
        info.set_phase(phase);
        info.set_epoch(static_cast<std::uint32_t>(epoch));
        info.set_batch(static_cast<std::uint32_t>(batch));
        info.set_num_batches(static_cast<std::uint32_t>(nb));
        info.set_running_loss(loss);
      });
    };
    const std::string checkpoint = (fs::path(job.config.output_dir) / "checkpoint.pnnckpt").string();
    cb.on_epoch = [&, post_info, checkpoint](const std::string& phase, const training::EpochStats& e, int) {
      // Durable before it is announced: an event or JobStatus never shows a metric the store
      // could lose.
      MetricRecord m{phase, e.epoch, e.train_loss, e.train_accuracy, e.test_accuracy, e.seconds};
      store->add_metric(job.run_id, m);
      const bool main = phase == job.main_phase;
      if (main) store->set_checkpoint(job.run_id, checkpoint, e.epoch);
      post_info([m, main](v1::JobInfo& info) {
        fill_metric(m, info.add_metrics());
        info.set_phase(m.phase);
        info.set_epoch(static_cast<std::uint32_t>(m.epoch));
        if (main) info.set_epochs_done(static_cast<std::uint32_t>(m.epoch));
      });
    };
    training::JobOptions opts;
    if (!job.remote.empty()) opts.open_device = remote_device_opener(job);
    opts.external_devices = job.external;
    opts.device_executors = job.executors;
    opts.twins = job.twins;
    opts.twin_provenance = job.twin_provenance;
    opts.resume_checkpoint = job.resume_checkpoint;
    auto result = training::run_job(job.config, cb, opts);
    if (result) summary = training::job_summary_json(job.config, result.value());
    if (job.stop_for_shutdown) {
      state = RunState::kAborted;
      message = "stopped by a daemon shutdown; resume with SubmitJob resume_run_id=" +
                std::to_string(job.run_id);
    } else if (!result) {
      message = result.error().message;
    } else if (job.stop) {
      state = RunState::kCancelled;
      message = "cancelled by a client after the current batch";
    } else {
      state = RunState::kSucceeded;
    }
  } catch (const std::exception& e) {
    message = e.what();
    if (job.stop_for_shutdown) state = RunState::kAborted;
  }
  for (auto& [s, before] : found) {
    try {
      call_on_worker(*s, [s = s, before = before] {
        if (before != Lifecycle::kActive && s->device->state() == Lifecycle::kActive) {
          (void)s->device->deactivate();
        }
      });
    } catch (const std::exception&) {
      // The worker has stopped: cleanup() finalizes the device, which drives it safe.
    }
  }
  bool finished_in_store = true;
  try {
    store->finish_run(job.run_id, state, summary, message);
  } catch (const std::exception& e) {
    finished_in_store = false;
    log_async("error", "job " + std::to_string(job.id) + ": run " + std::to_string(job.run_id) +
                           " not finished in the store (" + e.what() +
                           "); retrying every 2 s until it is written");
  }
  asio::post(io, [this, &job, state, summary, message, finished_in_store] {
    if (!finished_in_store) {
      pending_finishes.push_back({job.run_id, state, summary, message});
      arm_finish_retry();
    }
    job_finished(job, state, summary, message);
  });
}

void Server::Impl::job_finished(JobSlot& job, RunState state, const std::string& summary,
                                const std::string& message) {
  job.finished = true;
  if (job.thread.joinable()) job.thread.join();
  job.info.set_state(to_proto(state));
  job.info.set_summary_json(summary);
  job.info.set_message(message);
  for (auto* s : job.devices) {
    if (s->job_id == job.id) s->job_id = 0;
    publish_device(*s);
    if (s->device->status().health == Health::kFault) schedule_recovery(*s);
  }
  publish_job(job);
  log(state == RunState::kFailed ? "error" : "info",
      "job " + std::to_string(job.id) + " " + v1::JobState_Name(to_proto(state)) +
          (message.empty() ? "" : ": " + message));
  if (phase == Phase::kStoppingJobs && running_jobs() == 0) drive_devices_safe();
}

// A run whose final state could not be written (disk full) is written once there is room, so
// it never stays RUNNING in the store (at the latest, the next start marks it ABORTED).
void Server::Impl::arm_finish_retry() {
  finish_retry_timer.expires_after(std::chrono::seconds(2));
  finish_retry_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    retry_pending_finishes();
    if (!pending_finishes.empty() && phase != Phase::kStopped) arm_finish_retry();
  });
}

void Server::Impl::retry_pending_finishes() {
  for (auto it = pending_finishes.begin(); it != pending_finishes.end();) {
    try {
      store->finish_run(it->run_id, it->state, it->summary, it->message);
      log("info", "run " + std::to_string(it->run_id) + " finished in the store as " +
                      v1::JobState_Name(to_proto(it->state)) + " now that it could be written");
      it = pending_finishes.erase(it);
    } catch (const std::exception&) {
      ++it;
    }
  }
}

// Who may cancel or resume a job or run: its owner, or an admin. Without CURVE every client is
// an admin (nothing authenticates one loopback client against another).
bool Server::Impl::may_control(const Call& call, const std::string& owner) const {
  const bool curve_on = config.security.curve_enabled();
  return call.role == Role::kAdmin || !curve_on || owner.empty() || owner == call.identity;
}

std::size_t Server::Impl::running_jobs() const {
  std::size_t n = 0;
  for (const auto& [id, j] : jobs) n += j->finished ? 0 : 1;
  return n;
}

void Server::Impl::job_status(const Call& call, const v1::JobStatusRequest& r) {
  v1::Reply reply;
  auto* out = reply.mutable_job_status();
  if (r.job_id() == 0) {
    for (const auto& [id, j] : jobs) *out->add_jobs() = j->info;
  } else {
    auto it = jobs.find(r.job_id());
    if (it == jobs.end()) {
      send_error(call, v1::UNKNOWN_JOB,
                 "no job " + std::to_string(r.job_id()) + " in this daemon instance (runs: ListRuns)",
                 kDaemon);
      return;
    }
    *out->add_jobs() = it->second->info;
  }
  send_reply(call, reply);
}

void Server::Impl::cancel_job(const Call& call, const v1::CancelJobRequest& r) {
  auto it = jobs.find(r.job_id());
  if (it == jobs.end()) {
    send_error(call, v1::UNKNOWN_JOB,
               "no job " + std::to_string(r.job_id()) + " in this daemon instance (JobStatus "
               "lists its jobs; earlier ones are runs: ListRuns)",
               kDaemon);
    return;
  }
  JobSlot& j = *it->second;
  const std::string where = "job " + std::to_string(j.id);
  if (!may_control(call, j.owner)) {
    send_error(call, v1::PERMISSION_DENIED,
               "job " + std::to_string(j.id) + " belongs to another client; only its owner "
               "or an admin (security.clients role: admin) may cancel it",
               where);
    return;
  }
  v1::Reply reply;
  if (j.finished) {
    set_status(reply, v1::JOB_FINISHED,
               "job " + std::to_string(j.id) + " had already ended (" +
                   v1::JobState_Name(j.info.state()) + "); nothing was cancelled",
               where);
  } else if (!j.stop.exchange(true)) {
    log("info", "job " + std::to_string(j.id) + ": cancel requested by '" + call.client_id +
                    "'; it stops after the current batch");
  }
  *reply.mutable_cancel_job()->mutable_job() = j.info;
  send_reply(call, reply);
}

void Server::Impl::runs(const Call& call, v1::Request& request) {
  auto req = std::make_shared<v1::Request>(std::move(request));
  on_compute(call, [this, req](v1::Reply& reply) {
    if (req->body_case() == v1::Request::kListRuns) {
      const std::size_t limit = req->list_runs().limit() == 0 ? 50 : req->list_runs().limit();
      for (const auto& run : store->list_runs(limit)) fill_run(run, reply.mutable_list_runs()->add_runs());
      return;
    }
    const auto run = store->get_run(req->get_run().run_id());
    if (!run) {
      return set_status(reply, v1::UNKNOWN_RUN,
                        "no run " + std::to_string(req->get_run().run_id()) +
                            " in the run store (ListRuns lists them)",
                        "pnnd run store");
    }
    fill_run(*run, reply.mutable_get_run()->mutable_run());
    for (const auto& m : store->metrics(run->run_id)) fill_metric(m, reply.mutable_get_run()->add_metrics());
  });
}

void Server::Impl::snapshot(const Call& call) {
  v1::Reply reply;
  auto* out = reply.mutable_snapshot();
  out->set_instance_id(telemetry.instance_id());
  out->set_seq(telemetry.seq());
  for (const auto& [name, s] : devices) fill_device(*s, out->add_devices());
  for (const auto& [id, j] : jobs) *out->add_jobs() = j->info;
  send_reply(call, reply);
}

}  // namespace pnn::daemon

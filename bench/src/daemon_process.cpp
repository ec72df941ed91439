#include "pnn/bench/daemon_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace pnn::bench {

namespace {

using Clock = std::chrono::steady_clock;

// The value of `key=` in a space-separated line, "" if absent.
std::string field(const std::string& line, const std::string& key) {
  std::istringstream in(line);
  std::string word;
  while (in >> word) {
    if (word.rfind(key + "=", 0) == 0) return word.substr(key.size() + 1);
  }
  return "";
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace

DaemonProcess::DaemonProcess(DaemonProcessOptions options) : options_(std::move(options)) {
  if (::access(options_.executable.c_str(), X_OK) != 0) {
    throw DaemonProcessError("cannot run pnnd at '" + options_.executable +
                             "': " + std::strerror(errno) + " (build the pnnd target first)");
  }
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    throw DaemonProcessError(std::string("pipe2 failed: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  if (!options_.log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, options_.log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  std::vector<std::string> args = {options_.executable, "--config", options_.config_path};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      ::posix_spawn(&pid, options_.executable.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    throw DaemonProcessError("cannot start " + options_.executable + ": " + std::strerror(rc));
  }
  pid_ = pid;
  stdout_fd_ = out[0];

  // Read stdout until the ready line, the child's exit (EOF), or the timeout.
  const auto deadline = Clock::now() + options_.ready_timeout;
  std::string buffer;
  for (;;) {
    const auto newline = buffer.find('\n');
    if (newline != std::string::npos) {
      const std::string line = buffer.substr(0, newline);
      buffer.erase(0, newline + 1);
      if (line.rfind("pnnd ready", 0) == 0) {
        rpc_endpoint_ = field(line, "rpc");
        telemetry_endpoint_ = field(line, "telemetry");
        instance_id_ = field(line, "instance");
        return;
      }
      continue;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      signal(SIGKILL);
      (void)wait(std::chrono::seconds(5));
      throw DaemonProcessError("pnnd (" + options_.config_path + ") was not ready within " +
                               std::to_string(options_.ready_timeout.count()) +
                               " ms; its log ends with:\n" + log_tail());
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n <= 0) continue;
    char chunk[512];
    const ssize_t got = ::read(stdout_fd_, chunk, sizeof chunk);
    if (got > 0) {
      buffer.append(chunk, static_cast<std::size_t>(got));
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    // EOF: pnnd exited (or closed stdout) before it was ready.
    const auto status = wait(std::chrono::seconds(10));
    throw DaemonProcessError("pnnd (" + options_.config_path + ") " +
                             (status ? describe_status(*status) : std::string("closed stdout")) +
                             " before it was ready; its log ends with:\n" + log_tail());
  }
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    signal(SIGKILL);
    (void)wait(std::chrono::seconds(10));
  }
  if (stdout_fd_ >= 0) ::close(stdout_fd_);
}

void DaemonProcess::signal(int signo) {
  if (pid_ > 0 && !status_) ::kill(pid_, signo);
}

std::optional<int> DaemonProcess::wait(std::chrono::milliseconds timeout) {
  if (status_ || pid_ <= 0) return status_;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = status;
      return status_;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;  // not our child (already reaped elsewhere)
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool DaemonProcess::running() { return pid_ > 0 && !wait(std::chrono::milliseconds(0)); }

std::string DaemonProcess::log_tail(std::size_t max_bytes) const {
  if (options_.log_path.empty()) return "(pnnd's log went to this process's stderr)";
  std::ifstream in(options_.log_path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() <= max_bytes ? all : all.substr(all.size() - max_bytes);
}

}  // namespace pnn::bench

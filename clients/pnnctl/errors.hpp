#pragma once
// The three ways a pnnctl verb fails, each with its exit code (main.cpp maps them):
// 1 the daemon or the run said no, 2 bad usage or input, 3 the daemon cannot be reached.
#include <stdexcept>
#include <string>

namespace pnnctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitInterrupted = 130;

/// Bad arguments or input files (exit 2). The message names the option or file and the fix.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The daemon answered with an error status (exit 1, or 2 for a rejected job config).
class DaemonError : public std::runtime_error {
 public:
  DaemonError(std::string code_name, const std::string& message, std::string origin,
              int exit_code = kExitFailed)
      : std::runtime_error(message),
        code_name_(std::move(code_name)),
        origin_(std::move(origin)),
        exit_code_(exit_code) {}
  const std::string& code_name() const { return code_name_; }
  const std::string& origin() const { return origin_; }
  int exit_code() const { return exit_code_; }

 private:
  std::string code_name_;
  std::string origin_;
  int exit_code_;
};

/// No connection or no reply within the timeout (exit 3).
class Unreachable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace pnnctl

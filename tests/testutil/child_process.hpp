// A program the test starts as a real process and stops by its PID, also when the test fails
// (the destructor kills what is still running).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace saga::testutil {

class ChildProcess {
 public:
  // Starts argv[0] with argv; its stdout and stderr go to `log_path` (appended) when given.
  ChildProcess(std::vector<std::string> argv, const std::string& log_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void kill(int signal);
  // The exit code once it exited (128 + signal when killed), or nullopt after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_;
};

}  // namespace saga::testutil

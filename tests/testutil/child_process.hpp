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
  // With `pipe_stdin`, write_line() feeds its standard input.
  ChildProcess(std::vector<std::string> argv, const std::string& log_path = "",
               bool pipe_stdin = false);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void kill(int signal);
  bool write_line(const std::string& line);
  // The exit code once it exited (128 + signal when killed), or nullopt after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  std::optional<int> exit_;
};

// The first line of the file at `path` that starts with `prefix`, waiting up to `timeout` for
// it to be written (a child's log).
std::optional<std::string> wait_for_line(const std::string& path, const std::string& prefix,
                                         std::chrono::milliseconds timeout);

}  // namespace saga::testutil

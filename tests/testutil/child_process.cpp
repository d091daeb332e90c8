#include "testutil/child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <thread>

namespace saga::testutil {

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::string& log_path,
                           bool pipe_stdin) {
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int fds[2] = {-1, -1};
  if (pipe_stdin && pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    if (pipe_stdin) dup2(fds[0], 0);
    if (!log_path.empty()) {
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
    }
    execv(args[0], args.data());
    _exit(127);
  }
  if (pipe_stdin) {
    close(fds[0]);
    stdin_ = fds[1];
    signal(SIGPIPE, SIG_IGN);  // a child that died makes write_line() fail, not the test
  }
}

ChildProcess::~ChildProcess() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
  if (stdin_ >= 0) close(stdin_);
}

bool ChildProcess::write_line(const std::string& line) {
  if (stdin_ < 0) return false;
  const std::string text = line + "\n";
  return ::write(stdin_, text.data(), text.size()) == static_cast<ssize_t>(text.size());
}

std::optional<std::string> wait_for_line(const std::string& path, const std::string& prefix,
                                         std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(prefix, 0) == 0) return line;
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool ChildProcess::running() {
  if (exit_ || pid_ <= 0) return false;
  return !wait(std::chrono::milliseconds(0)).has_value();
}

void ChildProcess::kill(int signal) {
  if (!exit_ && pid_ > 0) ::kill(pid_, signal);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_;
    }
    if (r < 0) {
      exit_ = -1;
      return exit_;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace saga::testutil

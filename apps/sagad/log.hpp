// sagad's log: spdlog to stderr, as text ("msg key=value ...") or one JSON object per line, with
// fields such as saga_id, command_id and trace_id. A line repeated within a minute is logged
// once, then once more with how many times it came ("repeated N times").
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace sagad {

using Fields = std::vector<std::pair<std::string, std::string>>;

class Log {
 public:
  // level: trace debug info warn error; format: text | json.
  Log(const std::string& level, const std::string& format);
  void write(spdlog::level::level_enum level, const std::string& msg, const Fields& fields = {});
  void info(const std::string& msg, const Fields& f = {}) { write(spdlog::level::info, msg, f); }
  void warn(const std::string& msg, const Fields& f = {}) { write(spdlog::level::warn, msg, f); }
  void error(const std::string& msg, const Fields& f = {}) { write(spdlog::level::err, msg, f); }
  void debug(const std::string& msg, const Fields& f = {}) { write(spdlog::level::debug, msg, f); }
  void flush() { logger_->flush(); }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  bool json_;
  struct Seen {
    std::chrono::steady_clock::time_point first;
    uint64_t repeats = 0;
  };
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // recent lines: a repeat is counted, not printed
};

}  // namespace sagad

// sagad's log: spdlog to stderr, as text ("msg key=value ...") or one JSON object per line, with
// fields such as saga_id, command_id and trace_id. A line repeated within a minute is logged
// once; when the minute is over, how many more times it came is logged with it (JSON: the
// field "repeats"). Only warnings and errors are de-duplicated, whichever saga, command or
// trace they name: the same failure for a thousand sagas is one line and a count.
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
  // level: trace debug info warn error; format: text | json. `window`: how long repeats of a
  // line are counted before their count is logged.
  Log(const std::string& level, const std::string& format,
      std::chrono::milliseconds window = std::chrono::minutes(1));
  ~Log();
  void write(spdlog::level::level_enum level, const std::string& msg, const Fields& fields = {});
  void info(const std::string& msg, const Fields& f = {}) { write(spdlog::level::info, msg, f); }
  void warn(const std::string& msg, const Fields& f = {}) { write(spdlog::level::warn, msg, f); }
  void error(const std::string& msg, const Fields& f = {}) { write(spdlog::level::err, msg, f); }
  void debug(const std::string& msg, const Fields& f = {}) { write(spdlog::level::debug, msg, f); }
  // Logs the counts of repeats whose minute is over (all of them when `all`), then flushes.
  void flush(bool all = true);
  // Call now and then (sagad: five times a second; it reports at most once a second): a count
  // is logged even when its line stops coming.
  void tick() { report_repeats(false); }

 private:
  struct Seen {
    std::chrono::steady_clock::time_point first;
    uint64_t repeats = 0;
    spdlog::level::level_enum level;
    std::string msg;
    // The line logged first, less its saga, command and trace: the count stands for lines
    // about other sagas too.
    Fields fields;
  };
  void emit_counts(const std::vector<Seen>& due);
  void emit(spdlog::level::level_enum level, const std::string& msg, const Fields& fields,
            uint64_t repeats);
  void report_repeats(bool all);

  std::shared_ptr<spdlog::logger> logger_;
  bool json_;
  std::chrono::milliseconds window_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // recent lines: a repeat is counted, not printed
  std::chrono::steady_clock::time_point last_report_{};
};

}  // namespace sagad

#include "log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace sagad {

Log::Log(const std::string& level, const std::string& format)
    : logger_(spdlog::stderr_logger_mt("sagad")), json_(format == "json") {
  logger_->set_level(spdlog::level::from_str(level));
  // The JSON line is built whole by write(); text gets a time and level in front.
  logger_->set_pattern(json_ ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger_->flush_on(spdlog::level::info);
}

void Log::write(spdlog::level::level_enum level, const std::string& msg, const Fields& fields) {
  if (!logger_->should_log(level)) return;
  std::string repeated;
  {
    // The same line (fields included) within a minute is counted; the count is logged with the
    // first occurrence after the minute.
    std::lock_guard l(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::string key = msg;
    for (const auto& [k, v] : fields) key += "\x1f" + k + "=" + v;
    if (seen_.size() > 10'000) seen_.clear();
    auto [it, fresh] = seen_.try_emplace(key, Seen{now, 0});
    if (!fresh) {
      if (now - it->second.first < std::chrono::minutes(1)) {
        ++it->second.repeats;
        return;
      }
      if (it->second.repeats > 0)
        repeated = std::to_string(it->second.repeats) + " more times in the last minute";
      it->second = Seen{now, 0};
    }
  }
  if (json_) {
    nlohmann::json j;
    j["time"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    j["level"] = spdlog::level::to_string_view(level).data();
    j["msg"] = msg;
    for (const auto& [k, v] : fields) j[k] = v;
    if (!repeated.empty()) j["repeated"] = repeated;
    logger_->log(level, "{}", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  std::string line;
  for (unsigned char c : msg) line += c < 0x20 ? ' ' : static_cast<char>(c);
  for (const auto& [k, v] : fields) {
    const bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](unsigned char c) {
      return c > 0x20 && c != 0x7f && c != '"' && c != '=' && c != '\\';
    });
    if (plain) {
      line += " " + k + "=" + v;
      continue;
    }
    std::string quoted;  // one line per entry: quotes and control characters escaped
    for (unsigned char c : v) {
      if (c == '"' || c == '\\') {
        quoted += '\\';
        quoted += static_cast<char>(c);
      } else if (c < 0x20 || c == 0x7f) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        quoted += buf;
      } else {
        quoted += static_cast<char>(c);
      }
    }
    line += " " + k + "=\"" + quoted + "\"";
  }
  if (!repeated.empty()) line += " (" + repeated + ")";
  logger_->log(level, "{}", line);
}

}  // namespace sagad

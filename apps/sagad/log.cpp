#include "log.hpp"

#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace sagad {

Log::Log(const std::string& level, const std::string& format, std::chrono::milliseconds window)
    : logger_(spdlog::stderr_logger_mt("sagad")), json_(format == "json"), window_(window) {
  logger_->set_level(spdlog::level::from_str(level));
  // The JSON line is built whole by write(); text gets a time and level in front.
  logger_->set_pattern(json_ ? "%v" : "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger_->flush_on(spdlog::level::info);
}

namespace {
// Fields that name what a line is about rather than what happened.
bool names_an_instance(const std::string& key) {
  return key == "saga_id" || key == "command_id" || key == "trace_id";
}

Fields without_instances(const Fields& fields) {
  Fields out;
  for (const auto& f : fields)
    if (!names_an_instance(f.first)) out.push_back(f);
  return out;
}
}  // namespace

Log::~Log() {
  report_repeats(true);
  logger_->flush();
  spdlog::drop(logger_->name());
}

// Warnings and errors are de-duplicated; info and debug lines are each printed.
void Log::write(spdlog::level::level_enum level, const std::string& msg, const Fields& fields) {
  if (!logger_->should_log(level)) return;
  if (level < spdlog::level::warn) return emit(level, msg, fields, 0);
  report_repeats(false);
  std::vector<Seen> due;  // counts to log before this line
  bool print = false;
  {
    std::lock_guard l(mu_);
    const auto now = std::chrono::steady_clock::now();
    std::string key = std::to_string(level) + "\x1f" + msg;
    for (const auto& [k, v] : fields)
      if (!names_an_instance(k)) key += "\x1f" + k + "=" + v;
    if (seen_.size() >= 10'000) {  // bounded: what is counted so far is logged, not dropped
      for (auto& [k, seen] : seen_)
        if (seen.repeats > 0) due.push_back(std::move(seen));
      seen_.clear();
    }
    auto [it, fresh] = seen_.try_emplace(key);
    if (!fresh && now - it->second.first < window_) {
      ++it->second.repeats;
    } else {
      if (!fresh && it->second.repeats > 0) due.push_back(std::move(it->second));
      it->second = Seen{now, 0, level, msg, without_instances(fields)};
      print = true;
    }
  }
  emit_counts(due);
  if (print) emit(level, msg, fields, 0);
}

void Log::report_repeats(bool all) {
  std::vector<Seen> due;
  {
    std::lock_guard l(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!all &&
        now - last_report_ < std::min<std::chrono::milliseconds>(window_, std::chrono::seconds(1)))
      return;
    last_report_ = now;
    for (auto it = seen_.begin(); it != seen_.end();) {
      if (all || now - it->second.first >= window_) {
        if (it->second.repeats > 0) due.push_back(std::move(it->second));
        it = seen_.erase(it);
      } else {
        ++it;
      }
    }
  }
  emit_counts(due);
}

void Log::emit_counts(const std::vector<Seen>& due) {
  for (const Seen& s : due) emit(s.level, s.msg, s.fields, s.repeats);
}

void Log::flush(bool all) {
  report_repeats(all);
  logger_->flush();
}

void Log::emit(spdlog::level::level_enum level, const std::string& msg, const Fields& fields,
               uint64_t repeats) {
  if (json_) {
    nlohmann::json j;
    j["time"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    j["level"] = spdlog::level::to_string_view(level).data();
    j["msg"] = msg;
    for (const auto& [k, v] : fields) j[k] = v;
    if (repeats > 0) j["repeats"] = repeats;  // more times than this line, since it first came
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
  if (repeats > 0)
    line += " (" + std::to_string(repeats) + " more times since this line first came)";
  logger_->log(level, "{}", line);
}

}  // namespace sagad

// sagactl list / show / replay / export: reading a saga log (a SqliteStore file) without an
// engine. The log describes itself: names come from the definition recorded beside each saga.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "commands.hpp"
#include "saga/dsl.hpp"
#include "saga/replay.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/timeline.hpp"
#include "saga_json.hpp"

namespace sagactl {

namespace {

using nlohmann::json;
using saga::apps::data_value;
using saga::apps::event_json;
using saga::apps::summary_json;

[[noreturn]] void fail(const std::string& msg, int code = kExitFailure) {
  std::cerr << "sagactl: " << msg << "\n";
  throw CLI::RuntimeError(code);
}

std::unique_ptr<saga::SqliteStore> open_log(const std::string& path) {
  auto store = saga::SqliteStore::open({.path = path, .read_only = true});
  if (!store.ok()) fail(store.status().message());
  return std::move(store.value());
}

std::vector<saga::Event> load_events(saga::SqliteStore& store, const std::string& id,
                                     const std::string& db) {
  auto events = store.events(id);
  if (!events.ok()) fail(events.status().message());
  if (events->empty()) fail("no saga '" + id + "' in " + db);
  return std::move(events.value());
}

// The definition a saga ran: the one its log recorded; `saga_file` checks the log against
// another one (and is the only source for logs written before definitions were recorded).
struct Resolved {
  std::optional<saga::Definition> recorded;
  std::optional<saga::Definition> file;
  const saga::Definition* use() const { return file ? &*file : recorded ? &*recorded : nullptr; }
};

Resolved resolve(saga::SqliteStore& store, const saga::Event& started, const std::string& saga_file,
                 bool quiet = false) {
  Resolved r;
  const std::string what = started.detail + " v" + std::to_string(started.attempt);
  if (!started.fingerprint.empty()) {
    auto rec = store.definition(started.fingerprint);
    if (!rec.ok()) fail(rec.status().message());
    if (rec->has_value()) {
      saga::dsl::ParseResult p = saga::dsl::parse((*rec)->text, "<recorded " + what + ">");
      if (!p.ok() || p.definitions.size() != 1)
        fail("the definition recorded for " + what + " does not parse:\n" +
             saga::dsl::format(p.errors));
      r.recorded = p.definitions.front();
    }
  }
  if (!saga_file.empty()) {
    saga::dsl::ParseResult p = saga::dsl::parse_file(saga_file);
    if (!p.ok()) fail("\n" + saga::dsl::format(p.errors) + saga_file + ": cannot be used");
    const saga::Definition* d = p.find(started.detail, started.attempt);
    if (!d) fail(saga_file + " has no saga " + what + ", which this saga ran");
    r.file = *d;
    const std::string fp = saga::fingerprint(*d);
    if (!started.fingerprint.empty() && fp != started.fingerprint && !quiet)
      std::cerr << "sagactl: " << saga_file << " defines " << what
                << " differently from the definition this saga ran (fingerprint " << fp
                << ", the log's " << started.fingerprint << ")"
                << (r.recorded ? "" : "; the log does not hold that definition") << "\n";
  } else if (!r.recorded && !quiet) {
    std::cerr << "sagactl: the log holds no definition for " << what
              << " (written before logs recorded them): steps are shown by number; pass "
                 "--saga-file FILE for names\n";
  }
  return r;
}

// "1h", "30m", "2d" ago, or an absolute "2026-11-24T01:02:03Z" / "2026-11-24".
saga::TimePoint parse_since(const std::string& text) {
  long long n = 0;
  char unit = 0;
  int used = 0;
  if (std::sscanf(text.c_str(), "%lld%c%n", &n, &unit, &used) == 2 &&
      used == static_cast<int>(text.size()) && n >= 0 && n <= 1'000'000'000) {
    const long long per = unit == 's'   ? 1000
                          : unit == 'm' ? 60'000
                          : unit == 'h' ? 3'600'000
                          : unit == 'd' ? 86'400'000
                                        : 0;
    if (per) {
      const auto now =
          std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
      return saga::TimePoint(now - std::chrono::milliseconds(n * per));
    }
  }
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (end == nullptr) end = strptime(text.c_str(), "%Y-%m-%d", &tm);
  if (end != nullptr && (*end == 0 || (end[0] == 'Z' && end[1] == 0)))
    return saga::from_ms(static_cast<int64_t>(timegm(&tm)) * 1000);
  throw CLI::ValidationError("--since", "'" + text +
                                            "' is neither a duration ago (30m, 2h, 1d) nor a "
                                            "UTC time (2026-11-24T01:02:03Z)");
}

std::string duration_text(int64_t ms) {
  char buf[32];
  if (ms < 1000) return std::to_string(ms) + "ms";
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", ms / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  }
  return buf;
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

bool colour_wanted() {
  return isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

struct Common {
  std::string db;
  std::string saga_file;
  std::string id;
};

void add_db(CLI::App* cmd, Common& c) {
  cmd->add_option("--db", c.db, "Saga log: the SQLite file of the engine (read-only)")
      ->required()
      ->check(CLI::ExistingFile);
}

void print_state(const saga::SagaState& s, const saga::Definition* def) {
  std::cout << "saga " << s.id << " after event #" << s.seq << ": " << saga::status_name(s.status)
            << (s.reason.empty() ? "" : " (" + s.reason + ")") << "\n  context " << s.context
            << "\n";
  for (size_t i = 0; i < s.steps.size(); ++i) {
    const auto& p = s.steps[i];
    std::cout << "  "
              << (def && i < def->steps.size() ? def->steps[i].name : "step#" + std::to_string(i))
              << ": " << saga::phase_name(p.phase) << ", attempt " << p.attempt
              << ", compensation attempt " << p.comp_attempt
              << (p.maybe_applied ? ", may have been applied" : "")
              << (p.error.empty() ? "" : ", last error: " + p.error)
              << (p.undelivered.empty() ? "" : ", could not be sent: " + p.undelivered) << "\n";
  }
}

// Prints the saga's events, then each new one as the engine writes it (the log is read while
// its writer goes on: WAL readers never block it), until the saga completes, is compensated or
// aborted. A stuck saga is followed on: an operator's retry or abort shows up as it happens.
void follow_saga(saga::SqliteStore& store, const std::string& id, std::vector<saga::Event> events,
                 const saga::Definition* names, bool as_json) {
  size_t printed = 0;
  for (;;) {
    if (events.size() > printed) {
      if (as_json) {
        for (size_t i = printed; i < events.size(); ++i)
          std::cout << event_json(id, events[i], names)
                           .dump(-1, ' ', false, json::error_handler_t::replace)
                    << "\n";
      } else {
        std::cout << saga::format_timeline(id, events, names,
                                           {.colour = colour_wanted(), .first_event = printed});
      }
      std::cout.flush();
      printed = events.size();
    }
    if (saga::is_terminal(saga::state_at(id, events, events.size()).status)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto more = store.events(id);
    if (!more.ok() && more.status().retriable()) continue;  // the writer holds a lock: next time
    if (!more.ok()) fail(more.status().message());
    events = std::move(*more);
  }
}

}  // namespace

void add_log_commands(CLI::App& app) {
  static Common c;
  static std::string status, type, since;
  static bool stuck = false, as_json = false, check = false, all = false, follow = false,
              graph = false;
  static size_t limit = 50;
  static size_t at = 0;

  CLI::App* list = app.add_subcommand("list", "List sagas in a log, newest first");
  add_db(list, c);
  list->add_option("--status", status, "Only this status")
      ->check(CLI::IsMember(
          {"running", "compensating", "completed", "compensated", "stuck", "aborted"}));
  list->add_flag("--stuck", stuck, "Only stuck sagas (same as --status stuck)");
  list->add_option("--type,--definition", type, "Only this saga type");
  list->add_option("--since", since,
                   "Only sagas updated since: a duration ago (30m, 2h, 1d) or a UTC time "
                   "(2026-11-24T01:02:03Z)");
  list->add_option("--limit", limit, "At most this many (default 50)")
      ->check(CLI::Range(1, 1'000'000));
  list->add_flag("--json", as_json, "One JSON object: the sagas and how many match in all");
  list->callback([] {
    auto store = open_log(c.db);
    saga::ListFilter f;
    f.definition = type;
    f.limit = limit;
    if (!since.empty()) f.updated_since = parse_since(since);
    if (stuck) status = "stuck";
    if (saga::SagaStatus s; saga::parse_status_name(status, &s)) f.status = s;
    auto sagas = store->list(f);
    if (!sagas.ok()) fail(sagas.status().message());
    auto total = store->count(f);
    if (!total.ok()) fail(total.status().message());
    if (as_json) {
      json out{{"sagas", json::array()}, {"total", *total}};
      for (const auto& s : *sagas) out["sagas"].push_back(summary_json(s));
      std::cout << out.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
      return;
    }
    std::vector<std::vector<std::string>> rows = {
        {"SAGA", "TYPE", "VER", "STATUS", "STARTED", "UPDATED", "DURATION", "REASON"}};
    for (const auto& s : *sagas)
      rows.push_back({s.id, s.definition, std::to_string(s.version), saga::status_name(s.status),
                      saga::format_time(s.started_at), saga::format_time(s.updated_at),
                      duration_text(saga::to_ms(s.updated_at) - saga::to_ms(s.started_at)),
                      s.reason});
    print_table(rows);
    if (*total > sagas->size())
      std::cout << "(" << *total - sagas->size() << " more match; raise --limit to see them)\n";
  });

  CLI::App* show = app.add_subcommand("show", "Print the timeline of one saga");
  show->add_option("id", c.id, "Saga id")->required();
  add_db(show, c);
  show->add_option("--saga-file", c.saga_file,
                   "Check the log against these definitions (names come from the log)")
      ->check(CLI::ExistingFile);
  show->add_option("--at", at, "Print the state after this many events instead");
  show->add_flag("--json", as_json,
                 "The saga and its events as one JSON object (with --follow: JSON lines)");
  show->add_flag("--follow,-f", follow,
                 "Keep printing events as they are written, until the saga completes, is "
                 "compensated or aborted (a stuck one is followed on: Ctrl-C leaves)");
  show->add_flag("--graph", graph,
                 "The path the saga took: each step and compensation it ran, how it ended");
  show->callback([] {
    auto store = open_log(c.db);
    auto events = load_events(*store, c.id, c.db);
    const Resolved def = resolve(*store, events.front(), c.saga_file, as_json);
    // Names from the log's own definition unless it has none.
    const saga::Definition* names = def.recorded ? &*def.recorded : def.use();
    if ((at != 0) + graph + follow > 1)
      throw CLI::ValidationError("show", "--at, --graph and --follow go one at a time");
    if (at != 0) return print_state(saga::state_at(c.id, events, at), names);
    if (graph)
      return void(std::cout << saga::format_path(c.id, events, names, {.colour = colour_wanted()}));
    if (follow) return follow_saga(*store, c.id, std::move(events), names, as_json);
    if (as_json) {
      const saga::SagaState s = saga::state_at(c.id, events, events.size());
      json out{{"id", s.id},
               {"type", s.definition},
               {"version", s.version},
               {"status", saga::status_name(s.status)},
               {"reason", s.reason},
               {"context", data_value(s.context)},
               {"trace", s.trace},
               {"fingerprint", events.front().fingerprint},
               {"events", json::array()}};
      for (const auto& e : events) out["events"].push_back(event_json(c.id, e, names));
      std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
      return;
    }
    std::cout << saga::format_timeline(c.id, events, names, {.colour = colour_wanted()});
  });

  CLI::App* exp = app.add_subcommand("export", "Print a saga's events as JSON lines");
  exp->add_option("id", c.id, "Saga id")->required();
  add_db(exp, c);
  exp->callback([] {
    auto store = open_log(c.db);
    auto events = load_events(*store, c.id, c.db);
    const Resolved def = resolve(*store, events.front(), "", true);
    for (const auto& e : events)
      std::cout
          << event_json(c.id, e, def.use()).dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
  });

  static size_t until = 0;
  CLI::App* replay = app.add_subcommand(
      "replay",
      "Fold a saga's log into its state (at any event), or check that the state machine "
      "decides every recorded event again (--check)");
  replay->add_option("id", c.id, "Saga id");
  add_db(replay, c);
  replay->add_option("--until", until, "The state after this many events (default: all)");
  replay->add_flag("--check", check,
                   "Determinism check: re-run the state machine over the log and compare");
  replay->add_flag("--all", all, "With --check: every saga in the log");
  replay
      ->add_option("--saga-file", c.saga_file,
                   "Check against these definitions instead of the ones the log recorded")
      ->check(CLI::ExistingFile);
  replay->footer(
      "Exit codes: 0 deterministic, 1 failure, 2 usage, 3 a log the state machine "
      "decides differently.");
  replay->callback([] {
    if (all && !check) throw CLI::ValidationError("--all", "goes with --check");
    if (all == !c.id.empty())
      throw CLI::ValidationError("id", all ? "give a saga id or --all, not both"
                                           : "a saga id is required (or --check --all)");
    auto store = open_log(c.db);
    if (!check) {
      auto events = load_events(*store, c.id, c.db);
      const Resolved def = resolve(*store, events.front(), c.saga_file);
      return print_state(saga::state_at(c.id, events, until ? until : events.size()), def.use());
    }
    std::vector<std::string> ids;
    if (all) {
      saga::ListFilter f;
      f.limit = 1000;
      for (;;) {
        auto page = store->list(f);
        if (!page.ok()) fail(page.status().message());
        for (const auto& s : *page) ids.push_back(s.id);
        if (page->size() < f.limit) break;
        f.after = std::pair{page->back().started_at, page->back().id};
      }
    } else {
      ids.push_back(c.id);
    }
    size_t ok = 0, differ = 0, unknown = 0, events_checked = 0;
    for (const std::string& id : ids) {
      auto events = load_events(*store, id, c.db);
      const Resolved def = resolve(*store, events.front(), c.saga_file, all);
      if (def.use() == nullptr) {
        ++unknown;
        std::cerr << id << ": no definition to check against (pass --saga-file)\n";
        continue;
      }
      auto report = saga::check_determinism(*def.use(), id, events);
      if (!report.ok()) {
        ++differ;
        std::cerr << id << ": " << report.status().message() << "\n";
        continue;
      }
      ++ok;
      events_checked += report->events_checked;
      if (!all)
        std::cout << id << ": deterministic: " << report->events_checked
                  << " events re-decided identically; final state "
                  << saga::status_name(report->final_state.status) << "\n";
    }
    if (all)
      std::cout << ids.size() << " sagas: " << ok << " deterministic (" << events_checked
                << " events), " << differ << " differ, " << unknown << " without a definition\n";
    if (differ) throw CLI::RuntimeError(kExitNotDeterministic);
    if (unknown) throw CLI::RuntimeError(kExitFailure);
  });
}

}  // namespace sagactl

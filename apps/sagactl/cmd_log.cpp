// sagactl list / show / replay: reading a saga log (a SqliteStore file) without an engine.
#include <iostream>
#include <map>
#include <string>

#include "commands.hpp"
#include "saga/dsl.hpp"
#include "saga/replay.hpp"
#include "saga/sqlite_store.hpp"
#include "saga/timeline.hpp"

namespace sagactl {

namespace {

[[noreturn]] void fail(const std::string& msg, int code = 1) {
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

// The definition the saga ran, from a .saga file; null without one.
std::optional<saga::Definition> definition_for(const std::string& saga_file,
                                               const saga::Event& started) {
  if (saga_file.empty()) return std::nullopt;
  saga::dsl::ParseResult r = saga::dsl::parse_file(saga_file);
  if (!r.ok()) fail("\n" + saga::dsl::format(r.errors) + saga_file + ": cannot be used");
  const saga::Definition* d = r.find(started.detail, started.attempt);
  if (!d)
    fail(saga_file + " has no saga " + started.detail + " version " +
         std::to_string(started.attempt) + ", which this saga ran");
  return *d;
}

struct Common {
  std::string db;
  std::string saga_file;
  std::string id;
};

void add_db(CLI::App* cmd, Common& c) {
  cmd->add_option("--db", c.db, "Saga log: the SQLite file of the engine")
      ->required()
      ->check(CLI::ExistingFile);
}

}  // namespace

void add_log_commands(CLI::App& app) {
  static Common c;
  static std::string status;
  static std::string definition;
  static bool stuck = false;
  static size_t limit = 50;
  static size_t at = 0;

  CLI::App* list = app.add_subcommand("list", "List sagas in a log, newest first");
  add_db(list, c);
  list->add_option("--status", status, "Only this status")
      ->check(CLI::IsMember(
          {"running", "compensating", "completed", "compensated", "stuck", "aborted"}));
  list->add_flag("--stuck", stuck, "Only stuck sagas (same as --status stuck)");
  list->add_option("--definition", definition, "Only this saga type");
  list->add_option("--limit", limit, "At most this many")->check(CLI::Range(1, 1'000'000));
  list->callback([] {
    auto store = open_log(c.db);
    saga::ListFilter f;
    f.definition = definition;
    f.limit = limit;
    if (stuck) status = "stuck";
    for (int s = 0; s <= static_cast<int>(saga::SagaStatus::kAborted); ++s)
      if (status == saga::status_name(static_cast<saga::SagaStatus>(s)))
        f.status = static_cast<saga::SagaStatus>(s);
    auto sagas = store->list(f);
    if (!sagas.ok()) fail(sagas.status().message());
    std::printf("%-28s %-16s %-4s %-13s %6s  %s\n", "SAGA", "TYPE", "VER", "STATUS", "EVENTS",
                "REASON");
    for (const auto& s : *sagas)
      std::printf("%-28s %-16s %-4d %-13s %6u  %s\n", s.id.c_str(), s.definition.c_str(), s.version,
                  saga::status_name(s.status), s.events, s.reason.c_str());
  });

  CLI::App* show =
      app.add_subcommand("show", "Print the timeline of one saga (or its state at an event)");
  show->add_option("id", c.id, "Saga id")->required();
  add_db(show, c);
  show->add_option("--saga-file", c.saga_file, "Definitions, for step and command names")
      ->check(CLI::ExistingFile);
  show->add_option("--at", at, "Print the state after this many events instead");
  show->callback([] {
    auto store = open_log(c.db);
    auto events = load_events(*store, c.id, c.db);
    auto def = definition_for(c.saga_file, events.front());
    if (at == 0) {
      std::cout << saga::format_timeline(c.id, events, def ? &*def : nullptr);
      return;
    }
    saga::SagaState s = saga::state_at(c.id, events, at);
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
  });

  CLI::App* replay = app.add_subcommand(
      "replay", "Determinism check: re-run the state machine over a saga's recorded log");
  replay->add_option("id", c.id, "Saga id")->required();
  add_db(replay, c);
  replay->add_option("--saga-file", c.saga_file, "The definitions the saga ran")
      ->required()
      ->check(CLI::ExistingFile);
  replay->callback([] {
    auto store = open_log(c.db);
    auto events = load_events(*store, c.id, c.db);
    auto def = definition_for(c.saga_file, events.front());
    auto report = saga::check_determinism(*def, c.id, events);
    if (!report.ok()) fail(report.status().message(), 2);
    std::cout << c.id << ": deterministic: " << report->events_checked
              << " events re-decided identically; final state "
              << saga::status_name(report->final_state.status) << "\n";
  });
}

}  // namespace sagactl

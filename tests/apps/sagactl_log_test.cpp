// sagactl list / show / replay on a log written by a real engine on a SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pty.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "saga/dsl.hpp"
#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/replay.hpp"
#include "saga/sqlite_store.hpp"
#include "testutil/child_process.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using ::testing::HasSubstr;

const std::string kSagaFile = std::string(SAGA_SOURCE_DIR) + "/samples/place_order.saga";

// A manual engine over a SQLite log at `path`, with the order participants.
struct LiveLog {
  MemoryTransport bus;
  testutil::OrderParticipants world{bus};
  FakeClock clock;
  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<Engine> engine;  // declared last: gone before what it uses

  Status open(const std::string& path) {
    auto defs = dsl::load_file(kSagaFile);
    if (!defs.ok()) return defs.status();
    auto opened = SqliteStore::open({.path = path});
    if (!opened.ok()) return opened.status();
    store = std::move(*opened);
    if (Status st = world.start(); !st.ok()) return st;
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = *defs;
    auto e = Engine::open(opts, *store, bus, clock);
    if (!e.ok()) return e.status();
    engine = std::move(*e);
    return Status::Ok();
  }
};

class SagactlLog : public ::testing::Test {
 protected:
  void SetUp() override {
    db = testutil::temp_path("log.db");
    LiveLog log;
    ASSERT_OK(log.open(db));
    log.world.payment_down = true;  // one technical failure first, to get a retry in the log
    Engine& engine = *log.engine;
    for (auto [id, decline] : {std::pair{"ok-1", false}, std::pair{"declined-2", true}})
      engine.start({.definition = "PlaceOrder",
                    .saga_id = id,
                    .input = nlohmann::json{{"decline", decline}}.dump()},
                   [](auto) {});
    auto observe = [&] {  // the engine's live states, to compare replays with
      for (const char* id : {"ok-1", "declined-2"}) {
        auto s = engine.state(id);
        ASSERT_OK(s);
        live[id][s->seq] = *s;
      }
    };
    engine.poll();
    observe();
    log.world.payment_down = false;
    for (int i = 0; i < 5; ++i) {
      log.clock.advance(Duration(500));
      engine.poll();
      observe();
    }
    engine.close();
  }
  testutil::CommandOutcome sagactl(const std::string& args) {
    return testutil::run_command(std::string("'") + SAGACTL + "' " + args);
  }
  std::string db;
  std::map<std::string, std::map<uint32_t, SagaState>> live;  // id -> seq -> state
};

TEST_F(SagactlLog, ListShowsEverySagaWithStatusAndReason) {
  auto r = sagactl("list --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ok-1"));
  EXPECT_THAT(r.out, HasSubstr("completed"));
  EXPECT_THAT(r.out, HasSubstr("declined-2"));
  EXPECT_THAT(r.out, HasSubstr("compensated"));
  EXPECT_THAT(r.out, HasSubstr("card declined"));
  auto stuck = sagactl("list --stuck --db " + db);
  ASSERT_EQ(stuck.exit_code, 0);
  EXPECT_THAT(stuck.out, ::testing::Not(HasSubstr("ok-1")));
  auto compensated = sagactl("list --status compensated --db " + db);
  ASSERT_EQ(compensated.exit_code, 0) << compensated.err;
  EXPECT_THAT(compensated.out, HasSubstr("declined-2"));
  EXPECT_THAT(compensated.out, ::testing::Not(HasSubstr("ok-1")));
  auto by_type = sagactl("list --type PlaceOrder --db " + db);
  ASSERT_EQ(by_type.exit_code, 0) << by_type.err;
  EXPECT_THAT(by_type.out, HasSubstr("ok-1"));
  auto other_type = sagactl("list --type ShipOrder --db " + db);
  ASSERT_EQ(other_type.exit_code, 0) << other_type.err;
  EXPECT_THAT(other_type.out, ::testing::Not(HasSubstr("ok-1")));
  auto bad = sagactl("list --status sleeping --db " + db);
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
}

TEST_F(SagactlLog, ShowNamesStepsFromTheLogAloneWithNumberedEventsAndOutcomes) {
  auto r = sagactl("show declined-2 --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // no --saga-file needed, nothing to warn about
  EXPECT_THAT(r.out, HasSubstr("PlaceOrder v1  compensated"));
  EXPECT_THAT(r.out,
              HasSubstr("-> inventory.ReserveItems attempt 1  [declined-2/reserve_inventory/a1]"));
  EXPECT_THAT(r.out, HasSubstr("retry attempt 2"));
  EXPECT_THAT(r.out, HasSubstr("<- rejected in "));  // the decline, told from the failure
  EXPECT_THAT(r.out, HasSubstr("<< compensate: inventory.ReleaseReservation"));
  EXPECT_THAT(r.out, HasSubstr("== COMPENSATED"));
  EXPECT_THAT(r.out, HasSubstr("\n  1   "));  // numbered
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("step#")));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("\x1b[")));  // piped: no colour
  auto at = sagactl("show declined-2 --at 2 --db " + db);
  ASSERT_EQ(at.exit_code, 0) << at.err;
  EXPECT_THAT(at.out, HasSubstr("reserve_inventory: running, attempt 1"));
}

// Runs `command` with its output on a pseudo-terminal; returns what it printed, or nullopt
// when this machine has no pseudo-terminals.
std::optional<std::string> on_terminal(const std::string& command, bool no_color) {
  int terminal = -1;
  const pid_t pid = forkpty(&terminal, nullptr, nullptr, nullptr);
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    if (no_color) {
      setenv("NO_COLOR", "1", 1);
    } else {
      unsetenv("NO_COLOR");
    }
    execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(terminal, buf, sizeof buf)) > 0;) out.append(buf, n);  // EIO at exit
  int status = 0;
  waitpid(pid, &status, 0);
  close(terminal);
  return out;
}

// Checks that `command` prints `text` in colour on a terminal and plain under NO_COLOR; false
// when this machine has no pseudo-terminals.
bool coloured_on_terminal_only(const std::string& command, const std::string& text) {
  const auto coloured = on_terminal(command, false);
  if (!coloured) return false;
  EXPECT_THAT(*coloured, HasSubstr(text));
  EXPECT_THAT(*coloured, HasSubstr("\x1b["));
  const auto plain = on_terminal(command, true);
  EXPECT_TRUE(plain);
  EXPECT_THAT(plain.value_or(""), HasSubstr(text));
  EXPECT_THAT(plain.value_or(""), ::testing::Not(HasSubstr("\x1b[")));
  return true;
}

TEST_F(SagactlLog, ShowIsInColourOnATerminalUnlessNoColorIsSet) {
  const std::string show = std::string(SAGACTL) + " show declined-2 --db " + db;
  if (!coloured_on_terminal_only(show, "COMPENSATED"))
    GTEST_SKIP() << "no pseudo-terminal on this machine (forkpty failed)";
}

TEST(SagactlValidate, DiagnosticsAreInColourOnATerminalOnly) {
  const std::string file = testutil::temp_path("broken.saga");
  std::ofstream(file) << "saga Broken version 1 {\n  step a { command x }\n}\n";
  const std::string validate = std::string(SAGACTL) + " validate " + file;
  if (!coloured_on_terminal_only(validate, "error"))
    GTEST_SKIP() << "no pseudo-terminal on this machine (forkpty failed)";
  auto piped = testutil::run_command(validate);
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_THAT(piped.err, HasSubstr("broken.saga:2:"));
  EXPECT_THAT(piped.err, ::testing::Not(HasSubstr("\x1b[")));
}

TEST_F(SagactlLog, ShowJsonAndExportNameEveryEventsStepAndCommand) {
  auto r = sagactl("show declined-2 --json --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["status"], "compensated");
  EXPECT_EQ(j["type"], "PlaceOrder");
  bool released = false;
  std::vector<std::string> outcomes;
  for (const auto& e : j["events"]) {
    if (e.contains("outcome")) outcomes.push_back(e["outcome"]);
    if (e["type"] == "CompensationDispatched") {
      EXPECT_EQ(e["step_name"], "reserve_inventory");
      EXPECT_EQ(e["command"], "inventory.ReleaseReservation");
      EXPECT_EQ(e["command_id"], "declined-2/reserve_inventory/c1");
      released = true;
    }
  }
  EXPECT_TRUE(released) << r.out;
  // reserve ok; charge failed (technical), then rejected (the decline); release ok
  EXPECT_EQ(outcomes, (std::vector<std::string>{"ok", "failed", "rejected", "ok"})) << r.out;
  auto x = sagactl("export declined-2 --db " + db);
  ASSERT_EQ(x.exit_code, 0) << x.err;
  size_t lines = 0;
  std::istringstream in(x.out);
  for (std::string line; std::getline(in, line); ++lines)
    EXPECT_EQ(nlohmann::json::parse(line)["seq"], lines + 1);
  EXPECT_EQ(lines, j["events"].size());
}

TEST_F(SagactlLog, ListSaysHowManyMoreMatchAndSpeaksJson) {
  auto cut = sagactl("list --limit 1 --db " + db);
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_THAT(cut.out, HasSubstr("(1 more match; raise --limit to see them)"));
  auto j = sagactl("list --json --db " + db);
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto parsed = nlohmann::json::parse(j.out);
  EXPECT_EQ(parsed["total"], 2);
  EXPECT_EQ(parsed["sagas"].size(), 2u);
  auto recent = sagactl("list --since 1h --json --db " + db);  // the fake clock is in 1970
  ASSERT_EQ(recent.exit_code, 0) << recent.err;
  EXPECT_EQ(nlohmann::json::parse(recent.out)["total"], 0);
  auto bad = sagactl("list --since yesterday --db " + db);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("neither a duration"));
}

TEST_F(SagactlLog, ListColumnsStayAlignedWithALongId) {
  const std::string long_db = testutil::temp_path("long.db");
  const std::string long_id = "order-" + std::string(80, 'x');
  {
    LiveLog log;
    ASSERT_OK(log.open(long_db));
    for (const std::string& id : {std::string("s-1"), long_id})
      log.engine->start({.definition = "PlaceOrder", .saga_id = id, .input = "{}"}, [](auto) {});
    for (int i = 0; i < 5; ++i) {
      log.engine->poll();
      log.clock.advance(Duration(500));
    }
    log.engine->close();
  }
  auto r = sagactl("list --db " + long_db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr(long_id));
  std::set<size_t> type_column;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);)
    if (line.find("PlaceOrder") != std::string::npos) type_column.insert(line.find("PlaceOrder"));
  EXPECT_EQ(type_column.size(), 1u) << r.out;  // both rows put their type at one column
}

TEST_F(SagactlLog, ReplayCheckConfirmsDeterminismFromTheLogAlone) {
  auto r = sagactl("replay --check ok-1 --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deterministic"));
  auto all = sagactl("replay --check --all --db " + db);
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_THAT(all.out, HasSubstr("2 sagas: 2 deterministic"));
}

TEST_F(SagactlLog, ReplayUntilNEqualsTheLiveStateTheEngineHadThen) {
  auto store = SqliteStore::open({.path = db, .read_only = true});
  ASSERT_OK(store);
  for (const auto& [id, states] : live) {
    auto events = (*store)->events(id);
    ASSERT_OK(events);
    ASSERT_GE(states.size(), 2u) << id;
    for (const auto& [n, state] : states) {
      EXPECT_EQ(state_at(id, *events, n), state) << id << " after event " << n;
      auto r = sagactl("replay " + id + " --until " + std::to_string(n) + " --db " + db);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_THAT(
          r.out, HasSubstr("after event #" + std::to_string(n) + ": " + status_name(state.status)));
      EXPECT_THAT(r.out, HasSubstr("context " + state.context));
    }
  }
}

TEST_F(SagactlLog, ReplayCheckFailsWithCode3OnATamperedLog) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE events SET value = value + 1 WHERE type='RetryScheduled'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto r = sagactl("replay --check ok-1 --db " + db);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("diverges at event"));
  EXPECT_THAT(r.err, HasSubstr("RetryScheduled"));
  EXPECT_EQ(sagactl("replay --check --all --db " + db).exit_code, 3);
}

TEST_F(SagactlLog, ASagaFileThatDiffersFromTheRecordedDefinitionIsCalledOut) {
  std::ifstream in(kSagaFile);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = text.find("timeout 2s");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 10, "timeout 3s");  // same name and version, another definition
  const std::string edited = testutil::temp_path("edited.saga");
  std::ofstream(edited) << text;
  auto same = sagactl("show ok-1 --db " + db + " --saga-file " + kSagaFile);
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(same.err, "");
  auto show = sagactl("show ok-1 --db " + db + " --saga-file " + edited);
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_THAT(show.err, HasSubstr("defines PlaceOrder v1 differently from the definition this "
                                  "saga ran"));
  // Checked against the edited definition, the log is not what it would decide.
  auto check = sagactl("replay --check ok-1 --db " + db + " --saga-file " + edited);
  EXPECT_EQ(check.exit_code, 3) << check.out << check.err;
}

TEST_F(SagactlLog, UnknownSagaOrMissingFileIsAClearError) {
  auto r = sagactl("show nobody --db " + db);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no saga 'nobody'"));
  auto missing = sagactl("list --db /nonexistent/saga.db");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("saga.db"));
}

TEST_F(SagactlLog, ShowGraphDrawsThePathTheSagaTookWithItsCompensation) {
  auto r = sagactl("show declined-2 --graph --db " + db);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string out = r.out;
  const auto reserve = out.find("-> reserve_inventory  inventory.ReserveItems");
  const auto charge = out.find("-> charge_payment     payment.ChargeCard");
  const auto release = out.find("<- reserve_inventory  inventory.ReleaseReservation  compensated");
  ASSERT_NE(reserve, std::string::npos) << out;
  ASSERT_NE(charge, std::string::npos) << out;
  ASSERT_NE(release, std::string::npos) << out;
  EXPECT_LT(reserve, charge);
  EXPECT_LT(charge, release);
  EXPECT_THAT(out, HasSubstr("rejected: card declined"));
  EXPECT_THAT(out, HasSubstr("(2 attempts"));  // the technical failure before the decline
  EXPECT_THAT(out, HasSubstr("== compensated"));
  EXPECT_THAT(out, HasSubstr("not reached: confirm_order"));
  EXPECT_THAT(sagactl("show ok-1 --graph --db " + db).out, HasSubstr("== completed"));
}

// A saga still running in another process's engine: --follow prints what is there, waits, and
// prints each new event as it is committed, then stops when the saga ends.
TEST_F(SagactlLog, ShowFollowPrintsEventsAsTheyAreWrittenUntilTheSagaEnds) {
  const std::string live_db = testutil::temp_path("follow.db");
  LiveLog log;
  ASSERT_OK(log.open(live_db));
  log.world.payment_down = true;
  log.engine->start({.definition = "PlaceOrder", .saga_id = "slow-1", .input = "{}"}, [](auto) {});
  log.engine->poll();  // the charge failed once; its retry waits for the clock

  const std::string out = testutil::temp_path("follow.out");
  testutil::ChildProcess follow({SAGACTL, "show", "slow-1", "--follow", "--db", live_db}, out);
  ASSERT_TRUE(
      testutil::wait_for_line(out, "  now: retry of charge_payment", std::chrono::seconds(10)))
      << testutil::read_file(out);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(follow.running()) << "a running saga is followed, not printed once";
  EXPECT_THAT(testutil::read_file(out), ::testing::Not(HasSubstr("COMPLETED")));

  log.world.payment_down = false;
  for (int i = 0; i < 5; ++i) {
    log.clock.advance(Duration(500));
    log.engine->poll();
  }
  ASSERT_EQ(follow.wait(std::chrono::seconds(10)), 0) << testutil::read_file(out);
  const std::string text = testutil::read_file(out);
  EXPECT_THAT(text, HasSubstr("-> payment.ChargeCard attempt 2"));
  EXPECT_THAT(text, HasSubstr("== COMPLETED"));
  EXPECT_EQ(text.find("saga slow-1"), text.rfind("saga slow-1")) << "one header:\n" << text;
  log.engine->close();
}

}  // namespace
}  // namespace saga

// sagactl list / show / replay on a log written by a real engine on a SQLite file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include "saga/dsl.hpp"
#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/sqlite_store.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using ::testing::HasSubstr;

const std::string kSagaFile = std::string(SAGA_SOURCE_DIR) + "/samples/place_order.saga";

class SagactlLog : public ::testing::Test {
 protected:
  void SetUp() override {
    db = testutil::temp_path("log.db");
    auto defs = dsl::load_file(kSagaFile);
    ASSERT_OK(defs);
    auto store = SqliteStore::open({.path = db});
    ASSERT_OK(store);
    MemoryTransport bus;
    testutil::OrderParticipants world(bus);
    ASSERT_OK(world.start());
    world.payment_down = true;  // one technical failure first, to get a retry in the log
    FakeClock clock;
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = *defs;
    auto engine = Engine::open(opts, **store, bus, clock);
    ASSERT_OK(engine);
    for (auto [id, decline] : {std::pair{"ok-1", false}, std::pair{"declined-2", true}})
      (*engine)->start({.definition = "PlaceOrder",
                        .saga_id = id,
                        .input = nlohmann::json{{"decline", decline}}.dump()},
                       [](auto) {});
    (*engine)->poll();
    world.payment_down = false;
    for (int i = 0; i < 5; ++i) {
      clock.advance(Duration(500));
      (*engine)->poll();
    }
    (*engine)->close();
  }
  testutil::CommandOutcome sagactl(const std::string& args) {
    return testutil::run_command(std::string("'") + SAGACTL + "' " + args);
  }
  std::string db;
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
}

TEST_F(SagactlLog, ShowPrintsTheTimelineWithStepNamesAndCompensation) {
  auto r = sagactl("show declined-2 --db " + db + " --saga-file " + kSagaFile);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("retry attempt 2"));
  EXPECT_THAT(r.out, HasSubstr("<< compensate: inventory.ReleaseReservation"));
  EXPECT_THAT(r.out, HasSubstr("== COMPENSATED"));
  auto at = sagactl("show declined-2 --at 2 --db " + db + " --saga-file " + kSagaFile);
  ASSERT_EQ(at.exit_code, 0) << at.err;
  EXPECT_THAT(at.out, HasSubstr("reserve_inventory: running, attempt 1"));
}

TEST_F(SagactlLog, ReplayConfirmsDeterminism) {
  auto r = sagactl("replay ok-1 --db " + db + " --saga-file " + kSagaFile);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("deterministic"));
}

TEST_F(SagactlLog, ReplayReportsATamperedLog) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE events SET value = value + 1 WHERE type='RetryScheduled'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  auto r = sagactl("replay ok-1 --db " + db + " --saga-file " + kSagaFile);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("diverges at event"));
  EXPECT_THAT(r.err, HasSubstr("RetryScheduled"));
}

TEST_F(SagactlLog, UnknownSagaOrMissingFileIsAClearError) {
  auto r = sagactl("show nobody --db " + db);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("no saga 'nobody'"));
  auto missing = sagactl("list --db /nonexistent/saga.db");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("saga.db"));
}

}  // namespace
}  // namespace saga

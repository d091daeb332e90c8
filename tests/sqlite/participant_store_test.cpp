// The participant SDK on its durable record: the rules hold across restarts, the handler's
// business rows and the record commit or roll back together, replies leave after the commit.
#include "saga/sqlite_participant_store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "testutil/sim_disk.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

// Counts rows in the participant's file through a separate connection: what is committed.
long long committed_rows(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW)
    v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

// A transport whose sends to the reply channel can be made to fail (the broker is away).
class ReplyGate : public TransportWrapper {
 public:
  using TransportWrapper::TransportWrapper;
  bool down = false;
  void send(Message m, Completion done) override {
    if (down && m.kind == Message::Kind::kReply) {
      done(Status::Unavailable("broker down"));
      return;
    }
    TransportWrapper::send(std::move(m), std::move(done));
  }
};

class DurableParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path = testutil::temp_path("participant.db");
    ASSERT_OK(bus.subscribe("replies", [this](Message m, Ack ack) {
      ack();
      // A reply leaves only after its transaction committed: the row is visible to others.
      committed_at_reply.push_back(committed_rows(path, "SELECT count(*) FROM ledger"));
      replies.push_back(std::move(m));
    }));
    open();
  }
  void TearDown() override { close(); }

  void open() {
    auto s = SqliteParticipantStore::open({.path = path, .vfs = vfs});
    ASSERT_OK(s);
    store = std::move(*s);
    ASSERT_OK(store->run([](SqliteTx& tx) {
      tx.exec("CREATE TABLE IF NOT EXISTS ledger(saga_id TEXT, kind TEXT)");  // append-only
    }));
    p = std::make_unique<Participant>(gate, "inventory", *store);
    // Not idempotent in its own code: every run appends a row.
    p->on("Reserve", [this](const CommandContext& c, ParticipantTx& t) {
      SqliteTx::of(t).exec("INSERT INTO ledger VALUES(?1, 'reserve')", {c.saga_id});
      ++actions;
      if (reject_next) return ParticipantReply::rejected("over the limit");
      if (throw_next) throw std::runtime_error("disk on fire");
      return ParticipantReply::ok(R"({"reservation_id":"r1"})");
    });
    p->on_compensate("Release", [this](const CommandContext& c, ParticipantTx& t) {
      SqliteTx::of(t).exec("INSERT INTO ledger VALUES(?1, 'release')", {c.saga_id});
      ++compensations;
      return ParticipantReply::ok();
    });
    p->on("Sneaky", [](const CommandContext& c, ParticipantTx& t) {
      SqliteTx::of(t).exec("COMMIT");  // ends the SDK's transaction: not allowed
      return ParticipantReply::ok();
    });
    ASSERT_OK(p->start());
  }
  void close() {
    p.reset();
    store.reset();
  }
  // A process restart: nothing in memory survives.
  void restart() {
    close();
    open();
  }
  Message send(const std::string& type, const std::string& id, bool comp = false) {
    const size_t before = replies.size();
    gate.send(testutil::command("inventory", type, "s", id, "replies", comp), [](Status) {});
    return replies.size() > before ? replies.back() : Message{};
  }
  long long ledger(const std::string& kind) {
    return committed_rows(path, "SELECT count(*) FROM ledger WHERE kind = '" + kind + "'");
  }

  std::string path, vfs;
  MemoryTransport bus;
  ReplyGate gate{&bus};
  std::unique_ptr<SqliteParticipantStore> store;
  std::unique_ptr<Participant> p;
  std::vector<Message> replies;
  std::vector<long long> committed_at_reply;
  int actions = 0, compensations = 0;
  bool reject_next = false, throw_next = false;
};

TEST_F(DurableParticipantTest, RepeatedCommandAfterRestartIsAnsweredFromItsRecord) {
  EXPECT_EQ(send("Reserve", "s/reserve/a1").payload, R"({"reservation_id":"r1"})");
  restart();
  const Message again = send("Reserve", "s/reserve/a1");
  EXPECT_EQ(again.outcome, ReplyOutcome::kOk);
  EXPECT_EQ(again.payload, R"({"reservation_id":"r1"})");
  restart();
  EXPECT_EQ(send("Reserve", "s/reserve/a2").outcome, ReplyOutcome::kOk);  // later attempt
  EXPECT_EQ(actions, 1);
  EXPECT_EQ(ledger("reserve"), 1);
}

TEST_F(DurableParticipantTest, CompensationAfterRestartUndoesTheActionAppliedBeforeIt) {
  send("Reserve", "s/reserve/a1");
  restart();
  EXPECT_EQ(send("Release", "s/reserve/c1", true).outcome, ReplyOutcome::kOk);
  EXPECT_EQ(compensations, 1);  // not taken for a compensation of an action never seen
  EXPECT_EQ(ledger("release"), 1);
  EXPECT_EQ(p->stats().noop_compensations, 0u);
}

TEST_F(DurableParticipantTest, CompensationOfAnUnseenActionFencesItAcrossRestart) {
  EXPECT_EQ(send("Release", "s/reserve/c1", true).outcome, ReplyOutcome::kOk);
  restart();
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kRejected);
  EXPECT_EQ(ledger("reserve"), 0);
  EXPECT_EQ(ledger("release"), 0);
}

TEST_F(DurableParticipantTest, CompensationRunsAtMostOnceAcrossRestarts) {
  send("Reserve", "s/reserve/a1");
  send("Release", "s/reserve/c1", true);
  restart();
  send("Release", "s/reserve/c1", true);
  send("Release", "s/reserve/c2", true);
  EXPECT_EQ(ledger("release"), 1);
  EXPECT_EQ(replies.back().outcome, ReplyOutcome::kOk);
}

TEST_F(DurableParticipantTest, RejectedHandlerRollsBackItsWritesAndTheRejectionIsRecorded) {
  reject_next = true;
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kRejected);
  EXPECT_EQ(ledger("reserve"), 0);
  reject_next = false;
  restart();
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kRejected);  // same id
  EXPECT_EQ(actions, 1);
}

TEST_F(DurableParticipantTest, ThrowingHandlerRollsBackItsWritesAndLaterCommandsStillWork) {
  throw_next = true;
  const Message r = send("Reserve", "s/reserve/a1");
  EXPECT_EQ(r.outcome, ReplyOutcome::kFailed);
  EXPECT_NE(r.error.find("disk on fire"), std::string::npos);
  EXPECT_EQ(ledger("reserve"), 0);
  throw_next = false;
  // The connection is not left inside a transaction.
  EXPECT_EQ(send("Reserve", "s/reserve/a2").outcome, ReplyOutcome::kOk);
  EXPECT_EQ(ledger("reserve"), 1);
}

TEST_F(DurableParticipantTest, ReplyLeavesOnlyAfterTheCommit) {
  send("Reserve", "s/reserve/a1");
  ASSERT_EQ(committed_at_reply.size(), 1u);
  EXPECT_EQ(committed_at_reply[0], 1);
}

TEST_F(DurableParticipantTest, RepliesNotAcknowledgedAreSentAgainAfterARestart) {
  gate.down = true;
  send("Reserve", "s/reserve/a1");
  EXPECT_TRUE(replies.empty());
  gate.down = false;
  restart();  // start() sends the participant outbox again
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].command_id, "s/reserve/a1");
  EXPECT_EQ(replies[0].outcome, ReplyOutcome::kOk);
  restart();  // acknowledged now: not sent a third time
  EXPECT_EQ(replies.size(), 1u);
  EXPECT_EQ(actions, 1);
}

// A COMMIT that fails (here its fsync) may still be durable: answering `failed` would tell the
// orchestrator the step was not applied, and a compensation would skip it. No answer instead:
// the orchestrator's timeout treats the step as possibly applied.
TEST_F(DurableParticipantTest, CommandWhoseCommitFailsIsNotAnsweredFailed) {
  testutil::SimDisk disk("participant-disk");
  vfs = disk.name();
  restart();
  disk.set_syncs_fail(true);
  send("Reserve", "s/reserve/a1");
  EXPECT_EQ(replies.size(), 0u);
  EXPECT_EQ(p->stats().store_failures, 1u);
  disk.set_syncs_fail(false);
  EXPECT_EQ(send("Reserve", "s/reserve/a2").outcome, ReplyOutcome::kOk);
  EXPECT_EQ(ledger("reserve"), 1);
  close();  // before the disk goes
}

TEST_F(DurableParticipantTest, HandlerThatEndsTheTransactionIsAnsweredFailed) {
  const Message r = send("Sneaky", "s/sneaky/a1");
  EXPECT_EQ(r.outcome, ReplyOutcome::kFailed);
  EXPECT_NE(r.error.find("ended inside a handler"), std::string::npos);
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kOk);
}

TEST(SqliteParticipantStore, KeepsItsTablesBesideTheApplicationsAndLeavesUserVersionAlone) {
  const std::string path = testutil::temp_path("shared.db");
  {
    auto s = SqliteParticipantStore::open({.path = path});
    ASSERT_OK(s);
    ASSERT_OK((*s)->run([](SqliteTx& tx) { tx.exec("PRAGMA user_version = 7"); }));
  }
  auto again = SqliteParticipantStore::open({.path = path});
  ASSERT_OK(again);
  EXPECT_EQ(committed_rows(path, "PRAGMA user_version"), 7);
  EXPECT_EQ(committed_rows(path, "SELECT version FROM saga_participant_schema"), 1);
}

TEST(SqliteParticipantStore, RunReportsAFailedStatementWithItsText) {
  auto s = SqliteParticipantStore::open({.path = testutil::temp_path("bad.db")});
  ASSERT_OK(s);
  Status st = (*s)->run([](SqliteTx& tx) { tx.exec("INSERT INTO nowhere VALUES(1)"); });
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no such table: nowhere"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace saga

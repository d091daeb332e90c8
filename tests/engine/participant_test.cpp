// The participant SDK's rules, which the orchestrator's recovery relies on.
#include "saga/participant.hpp"

#include <gtest/gtest.h>

#include "saga/memory.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

class ParticipantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(bus.subscribe("replies", [this](Message m, Ack ack) {
      ack();
      replies.push_back(m);
    }));
    p.on("Reserve", [this](const CommandContext&) {
      ++actions;
      if (fail_next) {
        fail_next = false;
        return ParticipantReply::failed("busy");
      }
      if (reject_next) {
        reject_next = false;
        return ParticipantReply::rejected("over the limit");
      }
      return ParticipantReply::ok(R"({"reservation_id":"r1"})");
    });
    p.on_compensate("Release", [this](const CommandContext&) {
      ++compensations;
      return ParticipantReply::ok();
    });
    p.on("Explode",
         [](const CommandContext&) -> ParticipantReply { throw std::runtime_error("boom"); });
    ASSERT_OK(p.start());
  }
  const Message& send(const std::string& type, const std::string& id, bool comp = false) {
    bus.send(testutil::command("inventory", type, "s", id, "replies", comp), [](Status) {});
    return replies.back();
  }

  MemoryTransport bus;
  testing::VolatileParticipantStore record;
  Participant p{bus, "inventory", record};
  std::vector<Message> replies;
  int actions = 0, compensations = 0;
  bool fail_next = false, reject_next = false;
};

TEST_F(ParticipantTest, RepeatedCommandGetsTheRecordedReplyWithoutRunningAgain) {
  EXPECT_EQ(send("Reserve", "s/reserve/a1").payload, R"({"reservation_id":"r1"})");
  const Message& again = send("Reserve", "s/reserve/a1");
  EXPECT_EQ(again.outcome, ReplyOutcome::kOk);
  EXPECT_EQ(again.payload, R"({"reservation_id":"r1"})");
  send("Reserve", "s/reserve/a2");  // a later attempt of a step that already succeeded
  EXPECT_EQ(actions, 1);
  EXPECT_EQ(p.stats().duplicates, 2u);
}

TEST_F(ParticipantTest, RepeatedCommandAfterARejectionIsRejectedAgainNotRun) {
  reject_next = true;
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kRejected);
  // The broker delivers the same command again; the handler would now succeed.
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kRejected);
  EXPECT_EQ(actions, 1);
}

TEST_F(ParticipantTest, FailedAttemptIsRunAgainOnTheNextAttempt) {
  fail_next = true;
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kFailed);
  EXPECT_EQ(send("Reserve", "s/reserve/a2").outcome, ReplyOutcome::kOk);
  EXPECT_EQ(actions, 2);
}

TEST_F(ParticipantTest, CompensationOfAnActionNeverSeenIsANoOpThatSucceeds) {
  const Message& r = send("Release", "s/reserve/c1", true);
  EXPECT_EQ(r.outcome, ReplyOutcome::kOk);
  EXPECT_EQ(compensations, 0);
  EXPECT_EQ(p.stats().noop_compensations, 1u);
}

TEST_F(ParticipantTest, ActionArrivingAfterItsCompensationIsRefused) {
  send("Release", "s/reserve/c1", true);
  const Message& late = send("Reserve", "s/reserve/a1");
  EXPECT_EQ(late.outcome, ReplyOutcome::kRejected);
  EXPECT_EQ(actions, 0);
  EXPECT_EQ(p.stats().refused_actions, 1u);
}

TEST_F(ParticipantTest, CompensationRunsAtMostOnce) {
  send("Reserve", "s/reserve/a1");
  send("Release", "s/reserve/c1", true);
  send("Release", "s/reserve/c1", true);
  send("Release", "s/reserve/c2", true);
  EXPECT_EQ(compensations, 1);
  EXPECT_EQ(replies.back().outcome, ReplyOutcome::kOk);
}

TEST_F(ParticipantTest, ThrowingHandlerAnswersFailedAndTheServiceGoesOn) {
  const Message& r = send("Explode", "s/explode/a1");
  EXPECT_EQ(r.outcome, ReplyOutcome::kFailed);
  EXPECT_NE(r.error.find("boom"), std::string::npos);
  EXPECT_EQ(send("Reserve", "s/reserve/a1").outcome, ReplyOutcome::kOk);
}

TEST_F(ParticipantTest, UnknownCommandTypeIsRejectedAndMalformedIdIsCounted) {
  EXPECT_EQ(send("NoSuch", "s/x/a1").outcome, ReplyOutcome::kRejected);
  const size_t before = replies.size();
  Message m;
  m.channel = "inventory";
  m.command_id = "garbage";
  m.reply_to = "replies";
  bus.send(m, [](Status) {});
  EXPECT_EQ(replies.size(), before);
  EXPECT_EQ(p.stats().undecodable, 1u);
}

}  // namespace
}  // namespace saga

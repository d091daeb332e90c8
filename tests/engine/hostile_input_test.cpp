// Hostile input at every edge: deep JSON, bytes that are not UTF-8, oversized fields, bad
// traceparents. Each is refused (or cut) with a clear error; nothing crashes or throws.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "saga/engine.hpp"
#include "saga/limits.hpp"
#include "saga/memory.hpp"
#include "saga/participant.hpp"
#include "testutil/order_world.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

std::string nested(size_t depth) {  // {"a":{"a":...1...}}
  std::string s;
  s.reserve(depth * 6 + 1);
  for (size_t i = 0; i < depth; ++i) s += "{\"a\":";
  s += "1";
  s.append(depth, '}');
  return s;
}

constexpr const char* kTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(Limits, JsonDepthCountsOnlyOutsideStringsAndStopsEarly) {
  EXPECT_EQ(json_depth("{}"), 1u);
  EXPECT_EQ(json_depth(R"({"a":[{"b":"[[[{{{"}]})"), 3u);
  EXPECT_EQ(json_depth(R"({"a":"\"[[["})"), 1u);
  EXPECT_EQ(json_depth(nested(100000)), kMaxJsonDepth + 1);
}

TEST(Limits, JsonObjectCheckSaysWhyATextIsNotOne) {
  EXPECT_TRUE(check_json_object(R"( {"a":[1,{"b":null}]} )", "input").ok());
  EXPECT_TRUE(check_json_object("{}", "input").ok());
  EXPECT_TRUE(check_json_object("\xEF\xBB\xBF{}", "input").ok());  // as the parser takes it
  auto why = [](std::string_view text) { return check_json_object(text, "input").message(); };
  EXPECT_EQ(why("[1,2]"), "input is not a JSON object");
  EXPECT_EQ(why(" 7"), "input is not a JSON object");
  EXPECT_EQ(why(R"("{}")"), "input is not a JSON object");
  EXPECT_EQ(why(R"({"a":1} {"b":2})"), "input is not valid JSON (or not UTF-8)");
  EXPECT_EQ(why(R"({"a":)"), "input is not valid JSON (or not UTF-8)");
  EXPECT_EQ(why(""), "input is not valid JSON (or not UTF-8)");
  EXPECT_EQ(why("{\"a\":\"\xff\"}"), "input is not valid JSON (or not UTF-8)");
  EXPECT_EQ(why(nested(100)),
            "input is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
}

TEST(Limits, Utf8AndBoundedText) {
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9"));
  EXPECT_FALSE(is_valid_utf8("caf\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));      // overlong
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));  // surrogate
  EXPECT_EQ(bounded_text("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  const std::string cut = bounded_text(std::string(20 << 20, 'x'));
  EXPECT_LE(cut.size(), kMaxErrorBytes);
  EXPECT_NE(cut.find("cut from 20971520 bytes"), std::string::npos);
  EXPECT_TRUE(is_valid_utf8(bounded_text(std::string(2000, '\xE9'))));
}

TEST(Limits, TraceparentFollowsW3cTraceContext) {
  EXPECT_OK(check_traceparent(""));
  EXPECT_OK(check_traceparent(kTrace));
  for (const char* bad : {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736x00f067aa0ba902b7-01", "hello"})
    EXPECT_EQ(check_traceparent(bad).code(), Code::kInvalidArgument) << bad;
  const Status huge = check_traceparent(std::string(8 << 20, 'a'));
  EXPECT_EQ(huge.code(), Code::kInvalidArgument);
  EXPECT_LT(huge.message().size(), 200u);  // the error does not carry the input back
}

TEST(Wire, DeeplyNestedOrOversizedMessageIsRefusedNotACrash) {
  const std::string deep = R"({"kind":"reply","type":"T","saga_id":"s","command_id":"s/x/a1",)"
                           R"("payload":)" +
                           nested(100000) + "}";
  auto r = decode_json(deep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos);
  auto long_id = decode_json(R"({"kind":"reply","type":"T","saga_id":")" + std::string(300, 's') +
                             R"(","command_id":"c"})");
  EXPECT_FALSE(long_id.ok());
  Message m;
  m.kind = Message::Kind::kReply;
  m.saga_id = "s\xFF";
  m.error = "bad \xC3 bytes";
  m.payload = nested(100000);  // only an older log could hold this
  std::string text;
  EXPECT_NO_THROW(text = encode_json(m));
  EXPECT_TRUE(is_valid_utf8(text));
}

TEST(Replay, LogHoldingDeepDataFoldsWithoutACrash) {
  std::vector<Event> log;
  log.push_back({.type = EventType::kSagaStarted,
                 .seq = 1,
                 .step = 3,
                 .attempt = 1,
                 .detail = "PlaceOrder",
                 .data = nested(100000)});
  log.push_back({.type = EventType::kStepDispatched, .seq = 2, .step = 0, .attempt = 1});
  log.push_back({.type = EventType::kStepSucceeded,
                 .seq = 3,
                 .step = 0,
                 .attempt = 1,
                 .data = nested(100000)});
  const SagaState s = replay("deep", log);
  EXPECT_EQ(s.seq, 3u);
  Decision d = decide(testutil::place_order_definition(), s,
                      {.kind = Input::Kind::kReply,
                       .reply = {"deep/charge_payment/a1", ReplyOutcome::kOk, R"({"p":1})", ""}},
                      from_ms(0));
  EXPECT_FALSE(d.ignored.empty());  // not awaited; what matters is that nothing blew up
}

class HostileEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(participants.start());
    participants.inventory.stop();  // replies for inventory come from the test
    EngineOptions opts;
    opts.manual = true;
    opts.definitions = {testutil::place_order_definition()};
    opts.log = [this](const std::string& line) { logs.push_back(line); };
    auto r = Engine::open(opts, store, bus, clock);
    ASSERT_OK(r);
    engine = std::move(*r);
  }
  std::future<Result<SagaOutcome>> start(const std::string& id, std::string input = "{}",
                                         std::string trace = "") {
    auto f = engine->start(
        {.definition = "PlaceOrder", .saga_id = id, .input = input, .traceparent = trace});
    engine->poll();
    return f;
  }
  void reply(const std::string& saga, std::string payload, ReplyOutcome outcome = ReplyOutcome::kOk,
             std::string error = "") {
    Message m;
    m.kind = Message::Kind::kReply;
    m.channel = "orchestrator.replies";
    m.saga_id = saga;
    m.command_id = saga + "/reserve_inventory/a1";
    m.outcome = outcome;
    m.payload = std::move(payload);
    m.error = std::move(error);
    bus.send(m, [](Status) {});
    engine->poll();
  }
  std::vector<Event> events(const std::string& id) { return store.events(id).value(); }

  MemoryStore store;
  MemoryTransport bus;
  FakeClock clock;
  testutil::OrderParticipants participants{bus};
  std::unique_ptr<Engine> engine;
  std::vector<std::string> logs;
};

TEST_F(HostileEngineTest, DeeplyNestedReplyDataIsRejectedCountedAndTheSagaGoesOn) {
  auto f = start("deep-reply");
  reply("deep-reply", nested(100000));
  EXPECT_EQ(engine->metrics().inputs_rejected, 1u);
  EXPECT_NE(logs.back().find("nested deeper than 64 levels"), std::string::npos) << logs.back();
  EXPECT_EQ(engine->state("deep-reply")->status, SagaStatus::kRunning);
  reply("deep-reply", R"({"reservation_id":"r"})");  // the real answer still counts
  EXPECT_EQ(engine->state("deep-reply")->steps[0].phase, StepPhase::kSucceeded);
}

TEST_F(HostileEngineTest, DeeplyNestedStartInputIsRefusedAndNothingIsLogged) {
  auto f = start("deep-input", nested(100000));
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("nested deeper"), std::string::npos);
  EXPECT_TRUE(events("deep-input").empty());
}

TEST_F(HostileEngineTest, SagaIdThatIsNotUtf8OrTooLongIsRefused) {
  for (const std::string& id :
       {std::string("order-\xFF"), std::string(300, 'x'), std::string("line\nbreak")}) {
    auto r = start(id).get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().to_string();
  }
}

TEST_F(HostileEngineTest, HugeOrInvalidErrorTextIsCutAndMadeUtf8) {
  auto f = start("loud");
  reply("loud", "{}", ReplyOutcome::kRejected, std::string(20 << 20, 'e') + "\xFF");
  const auto log = events("loud");
  auto it = std::find_if(log.begin(), log.end(),
                         [](const Event& e) { return e.type == EventType::kStepFailed; });
  ASSERT_NE(it, log.end());
  const Event& failed = *it;
  EXPECT_LE(failed.detail.size(), kMaxErrorBytes);
  EXPECT_TRUE(is_valid_utf8(failed.detail));
  EXPECT_NE(failed.detail.find("cut from"), std::string::npos);
}

TEST_F(HostileEngineTest, TraceparentIsValidatedAtStart) {
  auto huge = start("t1", "{}", std::string(8 << 20, '0')).get();
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), Code::kInvalidArgument);
  auto bad = start("t2", "{}", "00-xyz").get();
  EXPECT_FALSE(bad.ok());
  auto good = start("t3", "{}", kTrace);
  EXPECT_EQ(events("t3").front().trace, kTrace);
}

// The start's traceparent is the saga's trace: each command sent carries it with a span id of
// its own (derived from its command id), so a tracing backend draws the steps under the saga.
TEST_F(HostileEngineTest, CommandsCarryTheSagasTraceWithASpanOfTheirOwn) {
  std::vector<Message> commands;
  ASSERT_OK(bus.subscribe("inventory", [&](Message m, Ack ack) {
    ack();
    commands.push_back(std::move(m));
  }));
  auto f = start("t4", "{}", kTrace);
  ASSERT_EQ(commands.size(), 1u);
  const std::string sent = commands[0].traceparent;
  EXPECT_OK(check_traceparent(sent));
  EXPECT_EQ(sent.substr(0, 36), std::string(kTrace).substr(0, 36));    // the saga's trace id
  EXPECT_NE(sent.substr(36, 16), std::string(kTrace).substr(36, 16));  // a span of its own
  EXPECT_EQ(sent, child_traceparent(kTrace, commands[0].command_id));
  auto untraced = start("t5", "{}");
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[1].traceparent, "");
}

TEST(ParticipantLimits, HandlerReplyDataNestedTooDeepIsAnsweredFailed) {
  MemoryTransport bus;
  testing::VolatileParticipantStore record;
  Participant p(bus, "inventory", record);
  p.on("Deep", [](const CommandContext&) { return ParticipantReply::ok(nested(1000)); });
  ASSERT_OK(p.start());
  std::vector<Message> replies;
  ASSERT_OK(bus.subscribe("r", [&](Message m, Ack ack) {
    ack();
    replies.push_back(std::move(m));
  }));
  bus.send(testutil::command("inventory", "Deep", "s", "s/deep/a1", "r"), [](Status) {});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].outcome, ReplyOutcome::kFailed);
  EXPECT_NE(replies[0].error.find("nested deeper"), std::string::npos);
}

TEST(Tracing, EachCommandGetsItsOwnSpanUnderTheSagasTrace) {
  const std::string parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const std::string a1 = child_traceparent(parent, "o-1/reserve/a1");
  const std::string a2 = child_traceparent(parent, "o-1/reserve/a2");
  EXPECT_OK(check_traceparent(a1));
  EXPECT_EQ(a1.substr(0, 36), parent.substr(0, 36));  // same trace id
  EXPECT_EQ(a1.substr(52), parent.substr(52));        // same flags
  EXPECT_NE(a1.substr(36, 16), parent.substr(36, 16));
  EXPECT_NE(a1, a2);
  EXPECT_EQ(a1, child_traceparent(parent, "o-1/reserve/a1"));  // a re-send keeps its span
  EXPECT_EQ(child_traceparent("", "o-1/reserve/a1"), "");
}

}  // namespace
}  // namespace saga

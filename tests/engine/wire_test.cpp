// The JSON envelope of docs/wire-format.md.
#include <gtest/gtest.h>

#include "saga/transport.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

TEST(WireFormat, CommandAndReplyRoundTrip) {
  Message c;
  c.kind = Message::Kind::kCommand;
  c.type = "ReserveItems";
  c.saga_id = "order-42";
  c.command_id = "order-42/reserve_inventory/a1";
  c.reply_to = "orchestrator.replies";
  c.payload = R"({"amount":120,"order_id":"42"})";
  c.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto back = decode_json(encode_json(c));
  ASSERT_OK(back);
  c.channel = "";  // the channel is the topic, not part of the envelope
  EXPECT_EQ(*back, c);

  Message r = c;
  r.kind = Message::Kind::kReply;
  r.reply_to = "";
  r.outcome = ReplyOutcome::kRejected;
  r.error = "card declined";
  r.payload = "{}";
  auto rback = decode_json(encode_json(r));
  ASSERT_OK(rback);
  EXPECT_EQ(*rback, r);
}

TEST(WireFormat, UndecodableMessagesSayWhy) {
  struct Case {
    const char* text;
    const char* why;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[1,2]", "must be a JSON object"},
      {R"({"kind":"reply","type":"T","saga_id":"s"})", "lacks field 'command_id'"},
      {R"({"kind":"reply","type":"T","saga_id":7,"command_id":"c"})", "'saga_id' must be a string"},
      {R"({"kind":"other","type":"T","saga_id":"s","command_id":"c"})", "'kind'"},
      {R"({"kind":"reply","type":"T","saga_id":"s","command_id":"c","outcome":"meh"})",
       "'outcome'"},
      {R"({"kind":"reply","type":"T","saga_id":"s","command_id":"c","payload":[1]})",
       "'payload' must be a JSON object"},
  };
  for (const auto& c : cases) {
    auto r = decode_json(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.why), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace saga

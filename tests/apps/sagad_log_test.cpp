// sagad's log (apps/sagad/log.cpp) on its own: what it counts instead of printing, and when it
// prints the count.
#include "log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

TEST(SagadLog, AWarningRepeatedForOtherSagasIsCountedAndTheCountLoggedWhenItsWindowEnds) {
  std::optional<sagad::Log> log;
  log.emplace("info", "json", milliseconds(300));
  testing::internal::CaptureStderr();
  for (const char* id : {"s-1", "s-2", "s-3"})
    log->warn("send failed: no subscriber", {{"saga_id", id}, {"command_id", "c"}});
  log->warn("send failed: another cause", {{"saga_id", "s-4"}});
  for (const char* id : {"s-1", "s-1"}) log->info("saga ended", {{"saga_id", id}});
  std::this_thread::sleep_for(milliseconds(400));
  log->tick();  // the window is over: the count comes although the line does not
  const auto lines = lines_of(testing::internal::GetCapturedStderr());
  log.reset();
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["msg"], "send failed: no subscriber");
  EXPECT_EQ(lines[0]["saga_id"], "s-1");  // the first one's ids
  EXPECT_FALSE(lines[0].contains("repeats"));
  EXPECT_EQ(lines[1]["msg"], "send failed: another cause");
  EXPECT_EQ(lines[2]["msg"], "saga ended");  // info lines are each printed
  EXPECT_EQ(lines[3]["msg"], "saga ended");
  EXPECT_EQ(lines[4]["msg"], "send failed: no subscriber");
  EXPECT_EQ(lines[4]["repeats"], 2);
  EXPECT_FALSE(lines[4].contains("saga_id"));  // the count is about all of them
  EXPECT_FALSE(lines[4].contains("command_id"));
}

TEST(SagadLog, ALineBackAfterItsWindowBringsTheCountOfTheWindowBefore) {
  std::optional<sagad::Log> log;
  log.emplace("info", "text", milliseconds(300));
  testing::internal::CaptureStderr();
  log->error("commit failed", {{"saga_id", "a"}});
  log->error("commit failed", {{"saga_id", "b"}});  // counted
  std::this_thread::sleep_for(milliseconds(400));
  log->error("commit failed", {{"saga_id", "c"}});  // a new window: the count, then the line
  log->error("commit failed", {{"saga_id", "d"}});  // counted
  const std::string before_exit = testing::internal::GetCapturedStderr();
  testing::internal::CaptureStderr();
  log.reset();  // exit: what is counted still comes
  const std::string at_exit = testing::internal::GetCapturedStderr();
  std::vector<std::string> lines;
  std::istringstream in(before_exit);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << before_exit;
  EXPECT_THAT(lines[0], HasSubstr("commit failed saga_id=a"));
  EXPECT_THAT(lines[1], HasSubstr("commit failed (1 more times since this line first came)"));
  EXPECT_THAT(lines[2], HasSubstr("commit failed saga_id=c"));
  EXPECT_THAT(at_exit, HasSubstr("commit failed (1 more times since this line first came)"));
}

}  // namespace

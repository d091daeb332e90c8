// sagad's log (apps/sagad/log.cpp) on its own: what it counts instead of printing, and when it
// prints the count.
#include "log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

namespace {

using nlohmann::json;
using ::testing::HasSubstr;

std::vector<json> lines_of(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

TEST(SagadLog, AWarningRepeatedForOtherSagasIsCountedAndTheCountLoggedWhenItsWindowEnds) {
  testing::internal::CaptureStderr();
  {
    sagad::Log log("info", "json", std::chrono::milliseconds(300));
    for (const char* id : {"s-1", "s-2", "s-3"})
      log.warn("send failed: no subscriber", {{"saga_id", id}, {"command_id", "c"}});
    log.warn("send failed: another cause", {{"saga_id", "s-4"}});
    for (const char* id : {"s-1", "s-2"}) log.info("saga ended", {{"saga_id", id}});
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    log.tick();  // the window is over: the count comes although the line does not
    log.flush();
  }
  const auto lines = lines_of(testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0]["msg"], "send failed: no subscriber");
  EXPECT_EQ(lines[0]["saga_id"], "s-1");  // the first one's ids
  EXPECT_FALSE(lines[0].contains("repeated"));
  EXPECT_EQ(lines[1]["msg"], "send failed: another cause");
  EXPECT_EQ(lines[2]["saga_id"], "s-1");  // each saga's own info line
  EXPECT_EQ(lines[3]["saga_id"], "s-2");
  EXPECT_EQ(lines[4]["msg"], "send failed: no subscriber");
  EXPECT_THAT(lines[4].value("repeated", ""), HasSubstr("2 more times"));
}

TEST(SagadLog, CountsNotYetLoggedComeAtExitAndALineAfterItsWindowIsPrintedAgain) {
  testing::internal::CaptureStderr();
  {
    sagad::Log log("info", "text", std::chrono::milliseconds(300));
    log.error("commit failed", {{"saga_id", "a"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    log.error("commit failed", {{"saga_id", "b"}});  // a new window: printed
    log.error("commit failed", {{"saga_id", "c"}});  // counted
    log.flush();                                     // exit: the count now
  }
  const std::string out = testing::internal::GetCapturedStderr();
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << out;
  EXPECT_THAT(lines[0], HasSubstr("commit failed saga_id=a"));
  EXPECT_THAT(lines[1], HasSubstr("commit failed saga_id=b"));
  EXPECT_THAT(lines[2], HasSubstr("saga_id=b (1 more times since this line first came)"));
}

}  // namespace

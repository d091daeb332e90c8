// SystemClock against a wall clock that jumps: timers wait on monotonic time.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "saga/clock.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;

class JumpingWall {
 public:
  TimePoint now() const {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now()) +
           Duration(offset_ms.load());
  }
  std::atomic<int64_t> offset_ms{0};
};

TEST(SystemClock, WallClockJumpsNeitherFireTimersEarlyNorLoseThem) {
  JumpingWall wall;
  SystemClock clock([&] { return wall.now(); });
  std::atomic<int> fired{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::atomic<int64_t> fired_after_ms{-1};
  clock.schedule(clock.now() + Duration(300), [&] {
    fired_after_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    ++fired;
  });
  wall.offset_ms = 3600 * 1000;  // an hour ahead: no spurious timeout
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(fired.load(), 0);
  wall.offset_ms = -3600 * 1000;  // an hour back: the timer is not lost
  for (int i = 0; i < 300 && fired == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(fired.load(), 1);
  EXPECT_GE(fired_after_ms.load(), 290);
}

TEST(SystemClock, TimerScheduledAfterAJumpUsesTheNewWallTime) {
  JumpingWall wall;
  wall.offset_ms = 3600 * 1000;
  SystemClock clock([&] { return wall.now(); });
  std::atomic<int> fired{0};
  clock.schedule(clock.now() + Duration(50), [&] { ++fired; });  // due in 50 ms of its time
  for (int i = 0; i < 200 && fired == 0; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_EQ(fired.load(), 1);
}

}  // namespace
}  // namespace saga

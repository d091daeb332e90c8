// Clock: the time seam. The engine never reads time or arms timers except through it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "saga/event.hpp"

namespace saga {

class Clock {
 public:
  using TimerId = uint64_t;
  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  virtual TimePoint now() = 0;
  // Runs fn once at or after `due`. Thread-safe.
  virtual TimerId schedule(TimePoint due, std::function<void()> fn) = 0;
  // A cancelled timer does not run (unless it is already running).
  virtual void cancel(TimerId id) = 0;
};

// The due-ordered queue both clocks share.
class TimerQueue {
 public:
  Clock::TimerId add(TimePoint due, std::function<void()> fn);
  void remove(Clock::TimerId id);
  // Pops one timer due at or before `now`; false when none.
  bool pop_due(TimePoint now, std::function<void()>* fn);
  bool next_due(TimePoint* due) const;
  size_t size() const { return by_id_.size(); }

 private:
  Clock::TimerId next_id_ = 1;
  std::multimap<TimePoint, Clock::TimerId> by_due_;
  std::unordered_map<Clock::TimerId, std::pair<std::multimap<TimePoint, Clock::TimerId>::iterator,
                                               std::function<void()>>>
      by_id_;
};

// Real time; timers run on one background thread. A timer waits on the monotonic clock for
// (due - now()) measured when it is scheduled, so a jump of the wall clock either way neither
// fires timers early nor loses them; wall time matters again only when a restart re-arms the
// durable timers.
class SystemClock : public Clock {
 public:
  // `wall` replaces the system's wall clock (tests that jump it).
  explicit SystemClock(std::function<TimePoint()> wall = nullptr);
  ~SystemClock() override;
  TimePoint now() override;
  TimerId schedule(TimePoint due, std::function<void()> fn) override;
  void cancel(TimerId id) override;

 private:
  void loop();
  static TimePoint steady_now();
  std::function<TimePoint()> wall_;
  std::mutex mu_;
  std::condition_variable cv_;
  TimerQueue queue_;
  bool stop_ = false;
  std::thread thread_;
};

// Test time: starts at `start`, moves only in advance(), which runs the timers that fall due,
// in due order, synchronously in the caller's thread.
class FakeClock : public Clock {
 public:
  explicit FakeClock(TimePoint start = from_ms(1'700'000'000'000));
  TimePoint now() override;
  TimerId schedule(TimePoint due, std::function<void()> fn) override;
  void cancel(TimerId id) override;
  void advance(Duration d);
  size_t pending() const;

 private:
  mutable std::mutex mu_;
  TimePoint now_;
  TimerQueue queue_;
};

}  // namespace saga

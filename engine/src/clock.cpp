#include "saga/clock.hpp"

namespace saga {

Clock::TimerId TimerQueue::add(TimePoint due, std::function<void()> fn) {
  const Clock::TimerId id = next_id_++;
  auto it = by_due_.emplace(due, id);
  by_id_.emplace(id, std::make_pair(it, std::move(fn)));
  return id;
}

void TimerQueue::remove(Clock::TimerId id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  by_due_.erase(it->second.first);
  by_id_.erase(it);
}

bool TimerQueue::pop_due(TimePoint now, std::function<void()>* fn) {
  if (by_due_.empty() || by_due_.begin()->first > now) return false;
  const Clock::TimerId id = by_due_.begin()->second;
  by_due_.erase(by_due_.begin());
  auto it = by_id_.find(id);
  *fn = std::move(it->second.second);
  by_id_.erase(it);
  return true;
}

bool TimerQueue::next_due(TimePoint* due) const {
  if (by_due_.empty()) return false;
  *due = by_due_.begin()->first;
  return true;
}

SystemClock::SystemClock(std::function<TimePoint()> wall)
    : wall_(std::move(wall)), thread_([this] { loop(); }) {}

SystemClock::~SystemClock() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

TimePoint SystemClock::now() {
  if (wall_) return wall_();
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

// The queue holds monotonic deadlines (milliseconds of steady_clock) in TimePoint's type.
TimePoint SystemClock::steady_now() {
  return TimePoint(std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch()));
}

Clock::TimerId SystemClock::schedule(TimePoint due, std::function<void()> fn) {
  Clock::TimerId id;
  bool earliest;
  {
    const TimePoint deadline = steady_now() + (due - now());
    std::lock_guard l(mu_);
    TimePoint first;
    earliest = !queue_.next_due(&first) || deadline < first;
    id = queue_.add(deadline, std::move(fn));
  }
  // The loop sleeps until the earliest due time: wake it only when that moves.
  if (earliest) cv_.notify_one();
  return id;
}

void SystemClock::cancel(TimerId id) {
  std::lock_guard l(mu_);
  queue_.remove(id);
}

void SystemClock::loop() {
  std::unique_lock l(mu_);
  while (!stop_) {
    std::function<void()> fn;
    if (queue_.pop_due(steady_now(), &fn)) {
      l.unlock();
      fn();
      l.lock();
      continue;
    }
    TimePoint due;
    if (queue_.next_due(&due)) {
      cv_.wait_until(l, std::chrono::steady_clock::time_point(due.time_since_epoch()));
    } else {
      cv_.wait(l);
    }
  }
}

FakeClock::FakeClock(TimePoint start) : now_(start) {}

TimePoint FakeClock::now() {
  std::lock_guard l(mu_);
  return now_;
}

Clock::TimerId FakeClock::schedule(TimePoint due, std::function<void()> fn) {
  std::lock_guard l(mu_);
  return queue_.add(due, std::move(fn));
}

void FakeClock::cancel(TimerId id) {
  std::lock_guard l(mu_);
  queue_.remove(id);
}

void FakeClock::advance(Duration d) {
  TimePoint target;
  {
    std::lock_guard l(mu_);
    target = now_ + d;
  }
  // Fire in due order, with now() at each timer's due time while it runs.
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard l(mu_);
      TimePoint due;
      if (!queue_.next_due(&due) || due > target) break;
      if (due > now_) now_ = due;
      queue_.pop_due(now_, &fn);
    }
    fn();
  }
  std::lock_guard l(mu_);
  now_ = target;
}

size_t FakeClock::pending() const {
  std::lock_guard l(mu_);
  return queue_.size();
}

}  // namespace saga

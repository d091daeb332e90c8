// Test helpers: status assertions, fault-injecting store and transport, seeded randomness.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "saga/event_store.hpp"
#include "saga/state_machine.hpp"
#include "saga/status.hpp"
#include "saga/transport.hpp"

#define ASSERT_OK(expr)                                           \
  do {                                                            \
    const ::saga::Status _st = ::saga::testutil::status_of(expr); \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st.to_string();    \
  } while (0)
#define EXPECT_OK(expr)                                           \
  do {                                                            \
    const ::saga::Status _st = ::saga::testutil::status_of(expr); \
    EXPECT_TRUE(_st.ok()) << #expr << ": " << _st.to_string();    \
  } while (0)

namespace saga {
// Readable gtest output for the core's data.
void PrintTo(const SagaState& s, std::ostream* os);
void PrintTo(const Event& e, std::ostream* os);
}  // namespace saga

namespace saga::testutil {

inline Status status_of(const Status& s) {
  return s;
}
template <typename T>
Status status_of(const Result<T>& r) {
  return r.status();
}

// A command as the orchestrator sends it to `channel`, answered to `reply_to`.
Message command(const std::string& channel, const std::string& type, const std::string& saga_id,
                const std::string& command_id, const std::string& reply_to,
                bool compensation = false, const std::string& payload = "{}");

// A fresh file path under the test's temporary directory; removes leftovers of earlier runs.
std::string temp_path(const std::string& name);

// The whole file (empty when it cannot be read).
std::string read_file(const std::string& path);

// Runs a shell command; its exit code and what it printed.
struct CommandOutcome {
  int exit_code = -1;
  std::string out, err;
};
CommandOutcome run_command(const std::string& command);

// Seeded randomness that prints its seed when the test fails (SAGA_SEED=N to repeat a run).
class SeededRandom {
 public:
  SeededRandom();
  uint64_t seed() const { return seed_; }
  std::mt19937_64& engine() { return rng_; }
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
  ::testing::ScopedTrace trace_;
};

// Named faults on commit():
//   fail_next(n):         the next n commits fail with kUnavailable and write nothing;
//   ghost_next(n):        the next n commits are written but report kUnavailable
//                         ("the call timed out but the write happened");
//   crash():              every later commit fails and writes nothing (the process is gone).
class FaultyStore : public EventStoreWrapper {
 public:
  using EventStoreWrapper::EventStoreWrapper;
  Status commit(const WriteBatch& batch) override;
  void fail_next(int n) {
    std::lock_guard l(mu_);
    fail_ = n;
  }
  void ghost_next(int n) {
    std::lock_guard l(mu_);
    ghost_ = n;
  }
  void crash() {
    std::lock_guard l(mu_);
    crashed_ = true;
  }
  // Crash right after the n-th successful commit from now (0: now).
  void crash_after(int n) {
    std::lock_guard l(mu_);
    crash_after_ = n;
  }
  bool crashed() const {
    std::lock_guard l(mu_);
    return crashed_;
  }
  int commits() const {
    std::lock_guard l(mu_);
    return commits_;
  }

 private:
  mutable std::mutex mu_;
  int fail_ = 0, ghost_ = 0, commits_ = 0, crash_after_ = -1;
  bool crashed_ = false;
};

// Records every message sent, and can drop them (crash before send), fail them, or hold them
// for the test to release one by one.
class FaultyTransport : public TransportWrapper {
 public:
  using TransportWrapper::TransportWrapper;
  void send(Message m, Completion done) override;

  void drop_all(bool on) {
    std::lock_guard l(mu_);
    drop_ = on;
  }  // vanish: never completed
  void fail_next(int n) {
    std::lock_guard l(mu_);
    fail_ = n;
  }  // complete with kUnavailable
  void hold(bool on) {
    std::lock_guard l(mu_);
    hold_ = on;
  }  // keep until release()
  size_t held() const {
    std::lock_guard l(mu_);
    return held_.size();
  }
  // Sends the oldest held message on to the target; false when none is held.
  bool release_one();
  // Sends a held message picked at random, twice with probability `dup`; false when none.
  bool release_random(std::mt19937_64& rng, double dup);
  void release_all() {
    while (release_one()) {
    }
  }
  std::vector<Message> sent() const {
    std::lock_guard l(mu_);
    return sent_;
  }
  // Command ids sent (as delivered to the target), in order.
  std::vector<std::string> sent_ids() const;

 private:
  mutable std::mutex mu_;
  bool drop_ = false, hold_ = false;
  int fail_ = 0;
  std::deque<std::pair<Message, Completion>> held_;
  std::vector<Message> sent_;
};

}  // namespace saga::testutil

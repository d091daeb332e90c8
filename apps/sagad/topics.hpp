// sagad over Kafka: sagas started from a request topic, and every saga's outcome published to an
// outcome topic (docs/protocol.md, "sagad's topics").
//
// A request is a command envelope whose type names the saga type, saga_id its id and payload its
// input; it is acknowledged once the start is committed (a repeated request of a saga that
// exists with the same input is acknowledged as it is), and dead-lettered with the reason when it
// can never start (unknown type, another input under that id, a bad traceparent).
//
// Outcomes are published at least once: a watermark file beside the log records the time up to
// which every outcome has been delivered, and a restart publishes again the outcomes of sagas
// that ended after it (less a margin). Consumers de-duplicate on saga id and updated_ms.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "log.hpp"
#include "saga/engine.hpp"
#include "saga/event_store.hpp"
#include "saga/transport.hpp"

namespace sagad {

class Topics {
 public:
  struct Options {
    std::string requests;   // channel (= topic) of start requests; empty: none
    std::string outcomes;   // channel (= topic) outcomes go to; empty: none
    std::string watermark;  // file holding the outcome watermark (ms since the epoch)
  };
  // A restart publishes again what ended this long before the watermark too (decisions of
  // several partitions commit out of time order; clocks step).
  static constexpr std::chrono::minutes kMargin{1};

  Topics(Options options, saga::Transport& transport, Log& log,
         std::function<std::shared_ptr<saga::Engine>()> engine);
  ~Topics();

  // From the engine's on_finished: sends the outcome (again after a failure until it is sent).
  void publish(const saga::SagaOutcome& outcome);
  // Publishes again what ended since the stored watermark, then takes requests.
  saga::Status start(saga::EventStore& store);
  // Stops taking requests; requests not yet accepted come again after a restart.
  void stop_requests();
  // Stops resending and records the watermark (call after the producer is flushed). The
  // transport must outlive this object: its completions may still run until it is destroyed.
  void close();

 private:
  // A request delivered `tries` times before; tries == 0 is a fresh delivery on the consumer's
  // thread, which waits here while too many requests are unsettled (back-pressure).
  void on_request(saga::Message m, saga::Ack ack, int tries);
  void retry_request(saga::Message m, saga::Ack ack, int tries, const std::string& why);
  void send_outcome(saga::Message m, int64_t ended_ms, int tries);
  bool later(std::chrono::milliseconds delay, std::function<void()> fn);
  void run();
  void save_watermark();

  static constexpr size_t kMaxUnsettled = 256;  // requests taken but not yet settled, at most

  Options opts_;
  saga::Transport& transport_;
  Log& log_;
  std::function<std::shared_ptr<saga::Engine>()> engine_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;           // close(): no more resends or retries
  bool requests_stopping_ = false;  // stop_requests(): handlers leave at once
  bool subscribed_ = false;
  bool started_ = false;  // start() re-published what it had to: the watermark may move
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> later_;
  size_t unsettled_ = 0;              // requests taken, not yet acknowledged or dead-lettered
  std::multiset<int64_t> in_flight_;  // end times (ms) of outcomes not yet delivered
  int64_t saved_ = 0;                 // the watermark on disk
  std::mutex save_mu_;                // one writer of the watermark file at a time
  std::chrono::steady_clock::time_point hold_until_{};  // under save_mu_
  std::thread thread_;                                  // resends, request retries, watermark saves
};

}  // namespace sagad

// sagad's Prometheus metrics (prometheus-cpp): counters and histograms fed by the engine's
// observers, and the engine's and transport's own counters read at each scrape.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "saga/engine.hpp"

namespace sagad {

struct TransportCounters {
  uint64_t dead_letters = 0, delivery_failures = 0;
  // Per consumed channel (Kafka): record timestamp to delivery, summed in ms, and the count.
  std::map<std::string, std::pair<uint64_t, uint64_t>> lag;
};

class Metrics {
 public:
  Metrics();
  // Hooks the engine's observers (on_event, on_commit, on_finished) into these metrics.
  void observe(saga::EngineOptions* options);
  void http_request(const std::string& route, int status);
  // Read at each scrape: the engine's counters (may return null between engines) and the
  // transport's.
  void set_sources(std::function<std::shared_ptr<saga::Engine>()> engine,
                   std::function<TransportCounters()> transport);
  std::string scrape();

 private:
  void on_event(const saga::SagaState& s, const saga::Event& e);
  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>* family,
                               const std::string& key,
                               const std::function<prometheus::Labels()>& labels);
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* started_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Family<prometheus::Counter>* http_;
  prometheus::Family<prometheus::Histogram>* step_seconds_;
  prometheus::Family<prometheus::Histogram>* commit_seconds_;
  prometheus::Family<prometheus::Histogram>* commit_batch_;
  std::function<std::shared_ptr<saga::Engine>()> engine_;
  std::function<TransportCounters()> transport_;
  // When each attempt in flight was dispatched, by saga: (step, compensation, time).
  struct Dispatched {
    int step;
    bool compensation;
    saga::TimePoint at;
  };
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<Dispatched>> dispatched_;
  // Each label set's metric, found once: Family::Add hashes and locks at every call.
  std::mutex cache_mu_;
  std::unordered_map<const void*, std::unordered_map<std::string, prometheus::Counter*>> counters_;
  std::unordered_map<std::string, prometheus::Histogram*> steps_;
  prometheus::Histogram* commit_seconds_all_ = nullptr;
  prometheus::Histogram* commit_batch_all_ = nullptr;
};

}  // namespace sagad

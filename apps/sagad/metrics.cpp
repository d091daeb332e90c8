#include "metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <optional>

namespace sagad {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  started_ = &BuildCounter()
                  .Name("saga_started_total")
                  .Help("Sagas started through this sagad, by type")
                  .Register(*registry_);
  finished_ = &BuildCounter()
                   .Name("saga_finished_total")
                   .Help("Sagas that ended completed, compensated, stuck or aborted, by type")
                   .Register(*registry_);
  http_ = &BuildCounter()
               .Name("sagad_http_requests_total")
               .Help("HTTP requests by route and status code")
               .Register(*registry_);
  step_seconds_ = &BuildHistogram()
                       .Name("saga_step_seconds")
                       .Help("From a step's command to its reply, by type, step and outcome")
                       .Register(*registry_);
  commit_seconds_ = &BuildHistogram()
                         .Name("saga_commit_seconds")
                         .Help("Time the saga log took to commit one batch")
                         .Register(*registry_);
  commit_batch_ = &BuildHistogram()
                       .Name("saga_commit_batch_decisions")
                       .Help("Decisions committed together in one batch")
                       .Register(*registry_);
  commit_seconds_all_ = &commit_seconds_->Add(
      {}, prometheus::Histogram::BucketBoundaries{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01, 0.025, 0.05, 0.1, 0.25, 1});
  commit_batch_all_ = &commit_batch_->Add(
      {},
      prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048});
}

void Metrics::observe(saga::EngineOptions* o) {
  o->on_event = [this](const saga::SagaState& s, const saga::Event& e) { on_event(s, e); };
  o->on_commit = [this](size_t decisions, std::chrono::nanoseconds took) {
    commit_seconds_all_->Observe(std::chrono::duration<double>(took).count());
    commit_batch_all_->Observe(static_cast<double>(decisions));
  };
  auto previous = std::move(o->on_finished);
  o->on_finished = [this, previous](const saga::SagaOutcome& out) {
    const char* status = saga::status_name(out.status);
    counter(finished_, out.definition + '\0' + status, [&]() -> prometheus::Labels {
      return {{"type", out.definition}, {"status", status}};
    }).Increment();
    if (previous) previous(out);
  };
}

prometheus::Counter& Metrics::counter(prometheus::Family<prometheus::Counter>* family,
                                      const std::string& key,
                                      const std::function<prometheus::Labels()>& labels) {
  std::lock_guard l(cache_mu_);
  auto& c = counters_[family][key];
  if (c == nullptr) c = &family->Add(labels());
  return *c;
}

void Metrics::on_event(const saga::SagaState& s, const saga::Event& e) {
  using saga::EventType;
  const bool dispatch =
      e.type == EventType::kStepDispatched || e.type == EventType::kCompensationDispatched;
  // A command that could not be sent has no latency to record.
  const char* outcome = e.type == EventType::kCommandNotSent ? nullptr : saga::event_outcome(e);
  if (e.type == EventType::kSagaStarted) {  // committed: a repeated start adds no event
    counter(started_, s.definition, [&]() -> prometheus::Labels {
      return {{"type", s.definition}};
    }).Increment();
    return;
  }
  if (e.type == EventType::kSagaCompleted || e.type == EventType::kSagaCompensated ||
      e.type == EventType::kSagaStuck) {  // forget its attempts that never got an answer
    std::lock_guard l(mu_);
    dispatched_.erase(s.id);
    return;
  }
  if (!dispatch && outcome == nullptr) return;
  auto same_attempt = [&](const Dispatched& d) {
    return d.step == e.step && d.compensation == e.compensation;
  };
  std::optional<saga::TimePoint> sent;
  {
    std::lock_guard l(mu_);
    if (dispatch) {
      auto& attempts = dispatched_[s.id];
      auto d = std::find_if(attempts.begin(), attempts.end(), same_attempt);
      if (d != attempts.end()) {
        d->at = e.at;
      } else {
        attempts.push_back({e.step, e.compensation, e.at});
      }
      return;
    }
    auto it = dispatched_.find(s.id);
    if (it == dispatched_.end()) return;  // dispatched before this process started
    auto& attempts = it->second;
    auto d = std::find_if(attempts.begin(), attempts.end(), same_attempt);
    if (d == attempts.end()) return;
    sent = d->at;
    attempts.erase(d);
    if (attempts.empty()) dispatched_.erase(it);
  }
  const std::string key = s.definition + '\0' + std::to_string(s.version) + '\0' +
                          std::to_string(e.step) + (e.compensation ? "c" : "a") + outcome;
  prometheus::Histogram* h = nullptr;
  {
    std::lock_guard l(cache_mu_);
    if (auto it = steps_.find(key); it != steps_.end()) h = it->second;
  }
  if (h == nullptr) {
    static const prometheus::Histogram::BucketBoundaries kSeconds{
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
    std::string step = "step#" + std::to_string(e.step);
    bool named = false;  // a fallback name is not kept: the engine may be between reloads
    if (auto engine = engine_ ? engine_() : nullptr) {
      if (const saga::Definition* d = engine->definition(s.definition, s.version);
          d != nullptr && e.step >= 0 && static_cast<size_t>(e.step) < d->steps.size()) {
        step = d->steps[e.step].name;
        named = true;
      }
    }
    // Versions that name a step alike share its series.
    h = &step_seconds_->Add({{"type", s.definition},
                             {"step", step},
                             {"compensation", e.compensation ? "true" : "false"},
                             {"outcome", outcome}},
                            kSeconds);
    if (named) {
      std::lock_guard l(cache_mu_);
      steps_.emplace(key, h);
    }
  }
  h->Observe(static_cast<double>(saga::to_ms(e.at) - saga::to_ms(*sent)) / 1000.0);
}

void Metrics::http_request(const std::string& route, int status) {
  counter(http_, route + '\0' + std::to_string(status), [&]() -> prometheus::Labels {
    return {{"route", route}, {"code", std::to_string(status)}};
  }).Increment();
}

void Metrics::set_sources(std::function<std::shared_ptr<saga::Engine>()> engine,
                          std::function<TransportCounters()> transport) {
  engine_ = std::move(engine);
  transport_ = std::move(transport);
}

namespace {
prometheus::MetricFamily single(const std::string& name, const std::string& help,
                                prometheus::MetricType type, double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return {name, help, type, {m}};
}
}  // namespace

std::string Metrics::scrape() {
  auto families = registry_->Collect();
  using T = prometheus::MetricType;
  if (auto engine = engine_ ? engine_() : nullptr) {
    const saga::EngineMetrics m = engine->metrics();
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    families.push_back(single("saga_active", "Sagas held in memory (running, compensating, stuck)",
                              T::Gauge, d(m.active)));
    families.push_back(single("saga_outbox_backlog",
                              "Commands committed but not yet acknowledged by the broker", T::Gauge,
                              d(m.outbox_backlog)));
    families.push_back(single("saga_replies_dropped_total",
                              "Stale, duplicate or late replies dropped", T::Counter,
                              d(m.replies_dropped)));
    families.push_back(single("saga_inputs_rejected_total", "Undecodable or oversized inputs",
                              T::Counter, d(m.inputs_rejected)));
    families.push_back(
        single("saga_commits_total", "Commits of the saga log", T::Counter, d(m.commits)));
    families.push_back(single("saga_commit_failures_total", "Failed commits of the saga log",
                              T::Counter, d(m.commit_failures)));
    families.push_back(single("saga_commands_sent_total", "Commands handed to the transport",
                              T::Counter, d(m.commands_sent)));
    families.push_back(single("saga_send_failures_total", "Sends the transport refused", T::Counter,
                              d(m.send_failures)));
    families.push_back(single("saga_partitions_failing",
                              "Engine partitions whose last commit failed", T::Gauge,
                              d(m.partitions_failing)));
  }
  if (transport_) {
    const TransportCounters t = transport_();
    families.push_back(single("saga_dead_letters_total", "Messages sent to a dead-letter topic",
                              T::Counter, static_cast<double>(t.dead_letters)));
    families.push_back(single("saga_delivery_failures_total",
                              "Records the broker did not acknowledge", T::Counter,
                              static_cast<double>(t.delivery_failures)));
    if (!t.lag.empty()) {
      // The reply lag (channel orchestrator.replies) and the request topic's.
      prometheus::MetricFamily lag{"saga_consume_lag_seconds",
                                   "Time from a record's timestamp to its delivery to sagad, "
                                   "by channel",
                                   T::Summary,
                                   {}};
      for (const auto& [channel, v] : t.lag) {
        prometheus::ClientMetric m;
        m.label.push_back({"channel", channel});
        m.summary.sample_sum = static_cast<double>(v.first) / 1000.0;
        m.summary.sample_count = v.second;
        lag.metric.push_back(std::move(m));
      }
      families.push_back(std::move(lag));
    }
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace sagad

#include "daemon.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "saga/dsl.hpp"
#include "saga/kafka_transport.hpp"
#include "saga/memory.hpp"
#ifdef SAGAD_WITH_SAMPLES
#include "services/services.hpp"
#include "workload.hpp"
#endif

namespace sagad {

using saga::Result;
using saga::Status;
namespace fs = std::filesystem;

Result<std::vector<saga::Definition>> load_definitions(const std::string& path) {
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_directory(path, ec)) {
    for (const auto& entry : fs::directory_iterator(path, ec))
      if (entry.path().extension() == ".saga") files.push_back(entry.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) return Status::InvalidArgument(path + ": no .saga file in the directory");
  } else if (fs::exists(path, ec)) {
    files.push_back(path);
  } else {
    return Status::NotFound(path + ": no such file or directory");
  }
  std::vector<saga::Definition> out;
  std::map<std::pair<std::string, int>, std::string> seen;  // -> file
  for (const std::string& f : files) {
    saga::dsl::ParseResult r = saga::dsl::parse_file(f);
    if (!r.ok()) return Status::InvalidArgument("\n" + saga::dsl::format(r.errors));
    for (saga::Definition& d : r.definitions) {
      auto [it, fresh] = seen.emplace(std::make_pair(d.name, d.version), f);
      if (!fresh)
        return Status::InvalidArgument(f + ": saga " + d.name + " version " +
                                       std::to_string(d.version) + " is also defined in " +
                                       it->second);
      out.push_back(std::move(d));
    }
  }
  if (out.empty()) return Status::InvalidArgument(path + ": no saga in it");
  return out;
}

// The trace id of a W3C traceparent ("00-<trace id>-<span id>-<flags>").
static std::string trace_id(const std::string& traceparent) {
  return traceparent.size() == 55 && traceparent[2] == '-' ? traceparent.substr(3, 32)
                                                           : traceparent;
}

struct Daemon::Parts {
  saga::SystemClock clock;
  std::unique_ptr<saga::MemoryTransport> memory;
  std::unique_ptr<saga::kafka::KafkaTransport> kafka;
  saga::Transport* transport = nullptr;
#ifdef SAGAD_WITH_SAMPLES
  std::unique_ptr<saga::samples::InventoryService> inventory;
  std::unique_ptr<saga::samples::PaymentService> payment;
  std::unique_ptr<saga::samples::OrdersService> orders;
  std::unique_ptr<saga::samples::WorkloadParticipants> workload;
#endif
};

Daemon::Daemon(const Config& config, Log& log)
    : config_(config), log_(log), parts_(std::make_unique<Parts>()) {}

Daemon::~Daemon() {
  (void)close();
  // The transport before Topics: its destructor may still run send completions that use it.
  parts_.reset();
  topics_.reset();
}

Result<std::unique_ptr<Daemon>> Daemon::open(const Config& config, Log& log) {
  auto defs = load_definitions(config.definitions);
  if (!defs.ok()) return defs.status();
  std::unique_ptr<Daemon> d(new Daemon(config, log));
  // The log holds business data: readable by its owner only (SQLite gives its -wal and -shm
  // files the same mode).
  std::error_code ec;
  if (!fs::exists(config.db, ec)) {
    const int fd = ::open(config.db.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST)
      return Status::InvalidArgument("cannot create " + config.db + ": " + std::strerror(errno));
    if (fd >= 0) ::close(fd);
  }
  auto store = saga::SqliteStore::open({.path = config.db});
  if (!store.ok()) return store.status();
  d->store_ = std::move(*store);

  Parts& p = *d->parts_;
  if (config.transport == "kafka") {
    saga::kafka::Options o;
    o.properties = config.kafka;
    o.log = [&log](const std::string& line) { log.warn(line, {{"component", "kafka"}}); };
    auto t = saga::kafka::KafkaTransport::open(o);
    if (!t.ok()) return t.status();
    p.kafka = std::move(*t);
    p.transport = p.kafka.get();
  } else {
    p.memory = std::make_unique<saga::MemoryTransport>();
    p.transport = p.memory.get();
#ifdef SAGAD_WITH_SAMPLES
    if (config.participants == "workload") {
      p.workload = std::make_unique<saga::samples::WorkloadParticipants>(*p.transport);
      if (Status st = p.workload->start(); !st.ok()) return st;
      log.info("the reference workload's participants run in-process (in memory)");
    } else if (config.participants == "samples") {
      // The samples' participants, each with its own database beside the log.
      const std::string dir = config.db + ".participants";
      fs::create_directories(dir, ec);
      try {
        p.inventory = std::make_unique<saga::samples::InventoryService>(
            *p.transport, dir + "/inventory.db", /*initial_stock=*/1000);
        p.payment =
            std::make_unique<saga::samples::PaymentService>(*p.transport, dir + "/payment.db", 500);
        p.orders = std::make_unique<saga::samples::OrdersService>(*p.transport, dir + "/orders.db");
      } catch (const std::exception& e) {
        return Status::Unavailable(std::string("sample participants: ") + e.what());
      }
      for (Status st : {p.inventory->start(), p.payment->start(), p.orders->start()})
        if (!st.ok()) return st;
      log.info("sample participants run in-process (inventory, payment, orders)", {{"data", dir}});
    }
#endif
  }
  d->metrics_.set_sources([raw = d.get()] { return raw->engine(); },
                          [&p]() -> TransportCounters {
                            if (!p.kafka) return {};
                            const auto s = p.kafka->stats();
                            TransportCounters c{s.dead_letters, s.delivery_failures, {}};
                            for (const auto& [channel, lag] : s.lag)
                              c.lag[channel] = {lag.ms_sum, lag.samples};
                            return c;
                          });
  if (p.kafka && !(config.requests_topic.empty() && config.outcomes_topic.empty())) {
    // Before the engine: a saga that ends as soon as it is recovered publishes its outcome.
    d->topics_ = std::make_unique<Topics>(
        Topics::Options{config.requests_topic, config.outcomes_topic, config.db + ".outcomes"},
        *p.transport, log, [raw = d.get()] { return raw->engine(); });
  }
  if (Status st = d->open_engine(std::move(*defs)); !st.ok()) return st;
  if (d->topics_) {
    if (Status st = d->topics_->start(*d->store_); !st.ok()) return st;
    log.info("taking start requests and publishing outcomes over Kafka",
             {{"requests", config.requests_topic}, {"outcomes", config.outcomes_topic}});
  }
  return d;
}

Status Daemon::open_engine(std::vector<saga::Definition> defs) {
  saga::EngineOptions opts;
  opts.definitions = defs;
  opts.partitions = config_.partitions;
  opts.log_structured = [this](const std::string& line, const saga::LogContext& about) {
    Fields f{{"component", "engine"}};
    if (!about.saga_id.empty()) f.emplace_back("saga_id", about.saga_id);
    if (!about.command_id.empty()) f.emplace_back("command_id", about.command_id);
    if (!about.trace.empty()) f.emplace_back("trace_id", trace_id(about.trace));
    log_.warn(line, f);
  };
  opts.on_finished = [this](const saga::SagaOutcome& o) {
    Fields f{{"saga_id", o.saga_id},
             {"type", o.definition},
             {"status", saga::status_name(o.status)},
             {"reason", o.reason}};
    if (!o.trace.empty()) f.emplace_back("trace_id", trace_id(o.trace));
    log_.info("saga ended", f);
    if (topics_) topics_->publish(o);
  };
  metrics_.observe(&opts);
  auto engine = saga::Engine::open(std::move(opts), *store_, *parts_->transport, parts_->clock);
  if (!engine.ok()) return engine.status();
  std::lock_guard l(mu_);
  engine_ = std::shared_ptr<saga::Engine>(std::move(*engine));
  defs_ = std::move(defs);
  return Status::Ok();
}

std::shared_ptr<saga::Engine> Daemon::engine() {
  std::lock_guard l(mu_);
  return engine_;
}

std::vector<saga::Definition> Daemon::definitions() {
  std::lock_guard l(mu_);
  return defs_;
}

std::string Daemon::not_ready() {
  auto e = engine();
  if (!e) return "the engine is not running (starting, reloading or stopping)";
  if (e->metrics().partitions_failing > 0) return "the saga log cannot be written";
  if (parts_->kafka && !parts_->kafka->wait_ready(saga::Duration(0)).ok())
    return "the Kafka consumer has no partitions yet";
  return "";
}

std::shared_ptr<const saga::Definition> Daemon::definition_for(const std::string& fingerprint,
                                                               const std::string& name,
                                                               int version) {
  for (const saga::Definition& d : definitions())
    if (d.name == name && d.version == version &&
        (fingerprint.empty() || saga::fingerprint(d) == fingerprint))
      return std::make_shared<saga::Definition>(d);
  if (fingerprint.empty()) return nullptr;
  std::lock_guard l(cache_mu_);
  if (auto it = recorded_.find(fingerprint); it != recorded_.end()) return it->second;
  auto rec = store_->definition(fingerprint);
  if (!rec.ok() || !rec->has_value()) return nullptr;
  saga::dsl::ParseResult r = saga::dsl::parse((*rec)->text);
  if (!r.ok() || r.definitions.size() != 1) return nullptr;
  auto def = std::make_shared<const saga::Definition>(r.definitions.front());
  recorded_[fingerprint] = def;
  return def;
}

Status Daemon::reload() {
  if (closed_) return Status::FailedPrecondition("sagad is stopping");
  auto fresh = load_definitions(config_.definitions);
  if (!fresh.ok()) return fresh.status();
  std::vector<saga::Definition> merged = definitions();  // running sagas may need old versions
  for (saga::Definition& d : *fresh) {
    auto same = std::find_if(merged.begin(), merged.end(), [&](const saga::Definition& o) {
      return o.name == d.name && o.version == d.version;
    });
    if (same == merged.end()) {
      log_.info("definition added", {{"type", d.name}, {"version", std::to_string(d.version)}});
      merged.push_back(std::move(d));
    } else if (saga::fingerprint(*same) != saga::fingerprint(d)) {
      return Status::InvalidArgument("saga " + d.name + " version " + std::to_string(d.version) +
                                     " changed: a changed definition needs a new version "
                                     "(sagas started on the old one still run it)");
    }
  }
  std::shared_ptr<saga::Engine> old;
  std::vector<saga::Definition> previous = definitions();
  {
    std::lock_guard l(mu_);
    old = std::exchange(engine_, nullptr);
  }
  if (old) {
    if (Status st = old->close(); !st.ok()) log_.warn("reload: " + st.to_string());
    old.reset();
  }
  if (Status st = open_engine(std::move(merged)); !st.ok()) {
    // Not left without an engine: back to the definitions that ran before.
    if (Status back = open_engine(std::move(previous)); !back.ok())
      return Status::Unavailable("reload failed (" + st.message() +
                                 ") and the previous engine did not reopen: " + back.message());
    return Status::Unavailable("reload failed, the previous definitions run again: " +
                               st.message());
  }
  return Status::Ok();
}

Status Daemon::close() {
  std::lock_guard once(close_mu_);  // a second caller waits for the first and hears its result
  if (closed_.exchange(true)) return close_status_;
  if (topics_) topics_->stop_requests();  // no new starts; unsettled requests come again
  std::shared_ptr<saga::Engine> old;
  {
    std::lock_guard l(mu_);
    old = std::exchange(engine_, nullptr);
  }
  Status st;
  if (old) st = old->close();
  old.reset();
  if (parts_->kafka) {
    if (Status f = parts_->kafka->flush(saga::Duration(10000)); !f.ok() && st.ok()) st = f;
  }
  if (topics_) topics_->close();  // after the flush: the watermark covers what was delivered
  close_status_ = st;
  return st;
}

}  // namespace sagad

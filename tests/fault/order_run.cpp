#include "order_run.hpp"

#include <thread>

namespace saga::testutil {

OrderRun::OrderRun(OrderRunOptions options) : opts_(std::move(options)) {
  opts_.log.path = files().saga_log;
  participants_ = std::make_unique<LedgerParticipants>(bus_, files(), opts_.ledgers);
  (void)participants_->start();
}

OrderRun::~OrderRun() {
  drop();
}

void OrderRun::drop() {
  engine_.reset();
  participants_.reset();
  store_.reset();
}

Status OrderRun::open() {
  auto store = SqliteStore::open(opts_.log);
  if (!store.ok()) return store.status();
  EngineOptions eo;
  eo.definitions = {ledger_order_definition()};
  eo.partitions = opts_.partitions;
  eo.resend_delay = Duration(10);
  eo.log = [](const std::string&) {};
  auto engine = Engine::open(eo, **store, bus_, clock_);
  if (!engine.ok()) return engine.status();
  store_ = std::move(*store);
  engine_ = std::move(*engine);
  return Status::Ok();
}

void OrderRun::start_one(const std::string& id, int i) {
  engine_->start({.definition = "PlaceOrder", .saga_id = id, .input = order_input(i)},
                 [this, id, i](Result<SagaOutcome> r) {
                   std::lock_guard l(mu_);
                   if (r.ok()) {
                     outcomes_[id] = r->status;
                   } else if (r.status().message().find("engine destroyed") == std::string::npos &&
                              r.status().message().find("engine closed") == std::string::npos) {
                     refusals_.push_back(r.status().to_string());
                     refused_.insert(i);
                   }
                   cv_.notify_all();
                 });
}

void OrderRun::start(int n, int from) {
  for (int i = from; i < n; ++i) start_one("o" + std::to_string(i), i);
}

bool OrderRun::wait(int n, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::unique_lock l(mu_);
  while (static_cast<int>(outcomes_.size()) < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!refused_.empty()) {  // start them again, off the engine's threads
      std::set<int> again = std::exchange(refused_, {});
      l.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (int i : again) start_one("o" + std::to_string(i), i);
      l.lock();
      continue;
    }
    if (cv_.wait_until(l, deadline) == std::cv_status::timeout &&
        static_cast<int>(outcomes_.size()) < n && refused_.empty())
      return false;
  }
  return true;
}

bool OrderRun::run(int n, std::chrono::milliseconds limit) {
  start(n);
  return wait(n, limit);
}

Status OrderRun::close() {
  Status st = engine_ ? engine_->close() : Status::Ok();
  drop();
  return st;
}

void OrderRun::crash() {
  drop();
}

std::map<std::string, SagaStatus> OrderRun::outcomes() const {
  std::lock_guard l(mu_);
  return outcomes_;
}

std::vector<std::string> OrderRun::refusals() const {
  std::lock_guard l(mu_);
  return refusals_;
}

}  // namespace saga::testutil

#include "topics.hpp"

#include <cstdio>
#include <fstream>

#include "saga_json.hpp"

namespace sagad {

using saga::Status;
using std::chrono::milliseconds;
namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t to_ms(saga::TimePoint t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

saga::ReplyOutcome reply_outcome(saga::SagaStatus s) {
  switch (s) {
    case saga::SagaStatus::kCompleted:
      return saga::ReplyOutcome::kOk;
    case saga::SagaStatus::kStuck:
      return saga::ReplyOutcome::kFailed;  // an operator may still retry it
    default:
      return saga::ReplyOutcome::kRejected;  // compensated, aborted
  }
}

}  // namespace

Topics::Topics(Options options, saga::Transport& transport, Log& log,
               std::function<std::shared_ptr<saga::Engine>()> engine)
    : opts_(std::move(options)), transport_(transport), log_(log), engine_(std::move(engine)) {
  std::ifstream in(opts_.watermark);
  if (!(in >> saved_)) saved_ = 0;
  thread_ = std::thread([this] { run(); });
}

Topics::~Topics() {
  stop_requests();
  close();
}

void Topics::later(milliseconds delay, std::function<void()> fn) {
  std::lock_guard l(mu_);
  if (stopping_) return;  // unsettled: a restart sees it again
  later_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
  cv_.notify_one();
}

void Topics::run() {
  auto next_save = std::chrono::steady_clock::now();
  std::unique_lock l(mu_);
  while (!stopping_) {
    const auto now = std::chrono::steady_clock::now();
    if (!later_.empty() && later_.begin()->first <= now) {
      auto fn = std::move(later_.begin()->second);
      later_.erase(later_.begin());
      l.unlock();
      fn();
      l.lock();
      continue;
    }
    if (now >= next_save) {
      l.unlock();
      save_watermark();
      l.lock();
      next_save = now + std::chrono::seconds(1);
      continue;
    }
    auto until = next_save;
    if (!later_.empty()) until = std::min(until, later_.begin()->first);
    cv_.wait_until(l, until);
  }
}

void Topics::save_watermark() {
  int64_t mark = 0;
  {
    std::lock_guard l(mu_);
    mark = in_flight_.empty() ? now_ms() : *in_flight_.begin();
    if (mark <= saved_) return;
  }
  // Written aside and renamed: a crash leaves the old mark or the new one, never half of one.
  const std::string tmp = opts_.watermark + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << mark << "\n";
    out.flush();
    if (!out) {
      log_.warn("cannot write the outcome watermark " + tmp +
                " (outcomes since the last one are "
                "published again after a restart)");
      return;
    }
  }
  if (std::rename(tmp.c_str(), opts_.watermark.c_str()) != 0) return;
  std::lock_guard l(mu_);
  saved_ = std::max(saved_, mark);
}

void Topics::publish(const saga::SagaOutcome& o) {
  if (opts_.outcomes.empty()) return;
  saga::Message m;
  m.kind = saga::Message::Kind::kReply;
  m.channel = opts_.outcomes;
  m.type = o.definition;
  m.saga_id = o.saga_id;
  m.command_id = o.saga_id;
  m.outcome = reply_outcome(o.status);
  m.error = o.reason;
  m.payload =
      saga::apps::outcome_json(o).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const int64_t ended = to_ms(o.updated_at);
  {
    std::lock_guard l(mu_);
    in_flight_.insert(ended);
  }
  send_outcome(std::move(m), ended);
}

void Topics::send_outcome(saga::Message m, int64_t ended_ms) {
  saga::Message copy = m;
  transport_.send(std::move(copy), [this, m = std::move(m), ended_ms](Status st) mutable {
    if (st.ok() || !st.retriable()) {
      if (!st.ok()) log_.error("outcome not published: " + st.message(), {{"saga_id", m.saga_id}});
      std::lock_guard l(mu_);
      in_flight_.erase(in_flight_.find(ended_ms));
      return;
    }
    log_.warn("outcome not published yet, sending again: " + st.message(),
              {{"topic", opts_.outcomes}});
    later(milliseconds(1000),
          [this, m = std::move(m), ended_ms]() mutable { send_outcome(std::move(m), ended_ms); });
  });
}

Status Topics::start(saga::EventStore& store) {
  auto engine = engine_();
  if (!opts_.outcomes.empty() && engine) {
    // Outcomes since the watermark may not have reached the topic: publish them again. A log
    // without a watermark yet (a new one, or topics just configured) starts from now.
    if (saved_ > 0) {
      const auto since = saga::TimePoint(milliseconds(saved_)) - kMargin;
      size_t again = 0;
      for (auto status : {saga::SagaStatus::kCompleted, saga::SagaStatus::kCompensated,
                          saga::SagaStatus::kAborted, saga::SagaStatus::kStuck}) {
        saga::ListFilter f;
        f.status = status;
        f.updated_since = since;
        f.limit = 500;
        for (;;) {
          auto page = store.list(f);
          if (!page.ok()) return page.status();
          for (const saga::SagaSummary& s : *page) {
            auto st = engine->state(s.id);
            if (!st.ok() || st->status != status) continue;  // moved on: published when it ends
            publish({st->id, st->status, st->reason, st->context, st->definition, st->updated_at});
            again++;
          }
          if (page->size() < f.limit) break;
          f.after = std::make_pair(page->back().started_at, page->back().id);
        }
      }
      if (again)
        log_.info("outcomes since the last recorded delivery published again",
                  {{"count", std::to_string(again)}, {"topic", opts_.outcomes}});
    }
    save_watermark();
  }
  if (opts_.requests.empty()) return Status::Ok();
  Status st = transport_.subscribe(opts_.requests, [this](saga::Message m, saga::Ack ack) {
    on_request(std::move(m), std::move(ack));
  });
  if (!st.ok()) return st;
  std::lock_guard l(mu_);
  subscribed_ = true;
  return Status::Ok();
}

void Topics::on_request(saga::Message m, saga::Ack ack) {
  auto dead = [&](const std::string& why) {
    log_.warn("start request refused: " + why, {{"saga_id", m.saga_id}, {"type", m.type}});
    ack.dead_letter(why);
  };
  if (m.kind != saga::Message::Kind::kCommand)
    return dead("a start request is a command envelope (\"kind\":\"command\")");
  if (m.saga_id.empty()) return dead("a start request needs a saga_id");
  auto engine = engine_();
  auto again = [this, m, ack]() mutable {
    later(milliseconds(500), [this, m = std::move(m), ack = std::move(ack)]() mutable {
      on_request(std::move(m), std::move(ack));
    });
  };
  if (!engine) return again();  // reloading: the next engine takes it
  saga::StartRequest r;
  r.definition = m.type;
  r.saga_id = m.saga_id;
  r.input = m.payload.empty() ? "{}" : m.payload;
  r.traceparent = m.traceparent;
  r.on_accepted = [this, used = engine.get(), m, ack, again](Status st) mutable {
    if (st.ok()) return ack();
    // Transient (the log cannot be written now) or this engine closed under it: later.
    if (st.code() == saga::Code::kUnavailable || engine_().get() != used) return again();
    log_.warn("start request refused: " + st.message(), {{"saga_id", m.saga_id}});
    ack.dead_letter(st.message());
  };
  engine->start(std::move(r), [](saga::Result<saga::SagaOutcome>) {});
}

void Topics::stop_requests() {
  bool was = false;
  {
    std::lock_guard l(mu_);
    was = std::exchange(subscribed_, false);
  }
  if (was) transport_.unsubscribe(opts_.requests);
}

void Topics::close() {
  {
    std::lock_guard l(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    later_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  save_watermark();
}

}  // namespace sagad

#include "topics.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "saga_json.hpp"

namespace sagad {

using saga::Status;
using std::chrono::milliseconds;
namespace {

// An outcome's context larger than this is left out (GET /sagas/{id} has it): a record over
// the producer's message.max.bytes could never be delivered and would hold the watermark.
constexpr size_t kMaxOutcomeContextBytes = 256 * 1024;

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

// Written aside, flushed to disk and renamed: a crash or power loss leaves the old mark or the
// new one, never an empty file.
bool write_durably(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written || std::rename(tmp.c_str(), path.c_str()) != 0) return false;
  std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
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

bool Topics::later(milliseconds delay, std::function<void()> fn) {
  std::lock_guard l(mu_);
  if (stopping_) return false;  // unsettled: a restart sees it again
  later_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
  cv_.notify_all();
  return true;
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
  if (opts_.outcomes.empty()) return;
  std::lock_guard save(save_mu_);
  // While a commit fails or engines are swapped, decisions that ended sagas may wait
  // unpublished with end times before now: the mark stays until that has been over a while.
  const auto steady = std::chrono::steady_clock::now();
  if (auto engine = engine_(); !engine || engine->metrics().partitions_failing > 0)
    hold_until_ = steady + std::chrono::seconds(10);
  if (steady < hold_until_) return;
  int64_t mark = 0;
  {
    std::lock_guard l(mu_);
    if (!started_) return;  // the old mark stands until start() re-published after it
    mark = in_flight_.empty() ? now_ms() : *in_flight_.begin();
    if (mark <= saved_) return;
  }
  if (!write_durably(opts_.watermark, std::to_string(mark) + "\n")) {
    log_.warn("cannot write the outcome watermark " + opts_.watermark + ": " +
              std::strerror(errno) + " (a restart publishes again more outcomes than needed)");
    return;
  }
  std::lock_guard l(mu_);
  saved_ = std::max(saved_, mark);
}

void Topics::publish(const saga::SagaOutcome& o) {
  if (opts_.outcomes.empty()) return;
  const int64_t ended = to_ms(o.updated_at);
  nlohmann::json payload = saga::apps::outcome_json(o);
  payload["updated_ms"] = ended;  // orders a saga's outcomes (stuck, then completed)
  if (o.context.size() > kMaxOutcomeContextBytes) {
    payload["context"] = nullptr;
    payload["context_omitted"] = "the context is " + std::to_string(o.context.size()) +
                                 " bytes: read it from GET /sagas/" + o.saga_id;
  }
  saga::Message m;
  m.kind = saga::Message::Kind::kReply;
  m.channel = opts_.outcomes;
  m.type = o.definition;
  m.saga_id = o.saga_id;
  m.command_id = o.saga_id;
  m.outcome = reply_outcome(o.status);
  m.error = o.reason;
  m.payload = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  {
    std::lock_guard l(mu_);
    in_flight_.insert(ended);
  }
  send_outcome(std::move(m), ended, 0);
}

void Topics::send_outcome(saga::Message m, int64_t ended_ms, int tries) {
  saga::Message copy = m;
  // `this` outlives every completion: the Daemon destroys the transport before this object.
  transport_.send(std::move(copy), [this, m = std::move(m), ended_ms, tries](Status st) mutable {
    if (st.ok()) {
      std::lock_guard l(mu_);
      in_flight_.erase(in_flight_.find(ended_ms));
      return;
    }
    // Not delivered: sent again until it is (at least once). Left in flight, it holds the
    // watermark, so a restart publishes it again if this process stops first.
    const std::string saga_id = m.saga_id;
    const milliseconds delay(std::min<int64_t>(30'000, int64_t{1000} << std::min(tries, 5)));
    const bool queued = later(delay, [this, m = std::move(m), ended_ms, tries]() mutable {
      send_outcome(std::move(m), ended_ms, tries + 1);
    });
    if (queued)
      log_.warn("outcome not published yet, sending again: " + st.message(),
                {{"topic", opts_.outcomes}, {"saga_id", saga_id}});
  });
}

Status Topics::start(saga::EventStore& store) {
  auto engine = engine_();
  if (!opts_.outcomes.empty() && engine && saved_ > 0) {
    // Outcomes since the watermark may not have reached the topic: publish them again. A log
    // without a watermark yet (a new one, or topics just configured) starts from now.
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
  {
    std::lock_guard l(mu_);
    started_ = true;  // what it re-published is in flight: the mark cannot pass it
  }
  save_watermark();
  if (opts_.requests.empty()) return Status::Ok();
  Status st = transport_.subscribe(opts_.requests, [this](saga::Message m, saga::Ack ack) {
    on_request(std::move(m), std::move(ack), 0);
  });
  if (!st.ok()) return st;
  std::lock_guard l(mu_);
  subscribed_ = true;
  return Status::Ok();
}

void Topics::on_request(saga::Message m, saga::Ack ack, int tries) {
  if (tries == 0) {
    // Admitted until it is settled: at most kMaxUnsettled at a time (back-pressure on the
    // consumer while the engine cannot take them).
    {
      std::unique_lock l(mu_);
      cv_.wait(l, [this] { return unsettled_ < kMaxUnsettled || requests_stopping_ || stopping_; });
      if (requests_stopping_ || stopping_) return;  // unsettled: delivered after a restart
      unsettled_++;
    }
    auto once = std::make_shared<std::atomic<bool>>(false);
    ack = saga::Ack([this, once, inner = std::move(ack)](const std::string& reason) {
      if (once->exchange(true)) return;
      if (reason.empty()) {
        inner();
      } else {
        inner.dead_letter(reason);
      }
      {
        std::lock_guard l(mu_);
        if (unsettled_ > 0) unsettled_--;
      }
      cv_.notify_all();
    });
  }
  auto dead = [&](const std::string& why) {
    log_.warn("start request refused: " + why, {{"saga_id", m.saga_id}, {"type", m.type}});
    ack.dead_letter(why);
  };
  if (m.kind != saga::Message::Kind::kCommand)
    return dead("a start request is a command envelope (\"kind\":\"command\")");
  if (m.saga_id.empty()) return dead("a start request needs a saga_id");
  auto engine = engine_();
  if (!engine) return retry_request(std::move(m), std::move(ack), tries, "no engine running");
  saga::StartRequest r;
  r.definition = m.type;
  r.saga_id = m.saga_id;
  r.input = m.payload.empty() ? "{}" : m.payload;
  r.traceparent = m.traceparent;
  r.on_accepted = [this, used = engine.get(), m, ack, tries](Status st) mutable {
    if (st.ok()) return ack();
    // Transient (the log cannot be written now) or this engine closed under it for a reload:
    // later. Anything else cannot change by trying again: dead letter.
    if (st.retriable() || engine_().get() != used) {
      // Every request waiting meets the same cause: without its saga id the warning is one
      // line (the log counts repeats); each saga's refusal at debug level.
      log_.debug("start request refused for now: " + st.message(), {{"saga_id", m.saga_id}});
      std::string why = st.message();
      const std::string quoted = "'" + m.saga_id + "'", elided = "'...'";
      for (size_t at = 0; (at = why.find(quoted, at)) != std::string::npos; at += elided.size())
        why.replace(at, quoted.size(), elided);
      return retry_request(std::move(m), std::move(ack), tries, why);
    }
    log_.warn("start request refused: " + st.message(), {{"saga_id", m.saga_id}});
    ack.dead_letter(st.message());
  };
  engine->start(std::move(r), [](saga::Result<saga::SagaOutcome>) {});
}

void Topics::retry_request(saga::Message m, saga::Ack ack, int tries, const std::string& why) {
  const milliseconds delay(std::min<int64_t>(10'000, int64_t{500} << std::min(tries, 5)));
  log_.warn("start requests wait: " + why + "; trying again", {{"topic", opts_.requests}});
  // Unsettled when sagad stops first: delivered again after a restart.
  later(delay, [this, m = std::move(m), ack = std::move(ack), tries]() mutable {
    on_request(std::move(m), std::move(ack), tries + 1);
  });
}

void Topics::stop_requests() {
  bool was = false;
  {
    std::lock_guard l(mu_);
    requests_stopping_ = true;
    was = std::exchange(subscribed_, false);
  }
  cv_.notify_all();  // a handler waiting for room leaves
  if (was) transport_.unsubscribe(opts_.requests);
}

void Topics::close() {
  {
    std::lock_guard l(mu_);
    stopping_ = true;
    later_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  save_watermark();
}

}  // namespace sagad

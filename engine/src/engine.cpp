// The orchestrator loop:
//
//   transport thread ──reply──┐
//   clock thread ────timer────┼─> post ─> partition strand: decide() ─> batch
//   caller ──────────start────┘                                          │ hand over (when idle,
//                                                                        v  half, or full)
//   send commands <── arm timers <── partition strand <── committer thread: store.commit(batch)
//         │                          (the next batch gathers while this one commits)
//   transport thread ──ack────> post ─┘ (acked outbox rows are deleted in the next commit)
#include "saga/engine.hpp"

#include "saga/limits.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace saga {

struct Partition;
namespace {
// The partition whose thread this is, if any: callbacks must not block on another partition.
thread_local const Partition* tl_partition = nullptr;

bool is_finished(SagaStatus s) {
  return is_terminal(s) || s == SagaStatus::kStuck;
}

struct Counters {
  std::atomic<uint64_t> started{0}, completed{0}, compensated{0}, stuck{0}, aborted{0};
  std::atomic<uint64_t> replies_dropped{0}, inputs_rejected{0};
  std::atomic<uint64_t> commits{0}, commit_failures{0}, events_written{0}, decisions{0};
  std::atomic<uint64_t> commands_sent{0}, send_failures{0};
  std::atomic<int64_t> active{0}, backlog{0};
  std::atomic<int64_t> failing{0};  // partitions whose last commit failed
};

// Runs a partition's commits off its thread, one at a time, so that the partition decides the
// next batch while this one is written and fsynced.
class Committer {
 public:
  Committer() : thread_([this] { run(); }) {}
  ~Committer() { stop(); }

  void submit(std::function<void()> job) {
    {
      std::lock_guard l(mu_);
      job_ = std::move(job);
    }
    cv_.notify_all();
  }
  // Returns once the job submitted last has run.
  void wait_idle() {
    std::unique_lock l(mu_);
    cv_.wait(l, [this] { return !job_ && !busy_; });
  }
  // Runs the job still queued, then ends the thread.
  void stop() {
    {
      std::lock_guard l(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock l(mu_);
    for (;;) {
      cv_.wait(l, [this] { return job_ || stopping_; });
      if (!job_) return;
      auto job = std::exchange(job_, nullptr);
      busy_ = true;
      l.unlock();
      job();
      l.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool busy_ = false, stopping_ = false;
  std::thread thread_;  // last: starts once the rest is constructed
};

}  // namespace

struct Engine::Impl {
  EngineOptions opts;
  EventStore& store;
  Transport& transport;
  Clock& clock;
  std::map<std::pair<std::string, int>, Definition> defs;
  std::map<std::pair<std::string, int>, std::string> fingerprints;
  std::map<std::pair<std::string, int>, std::string> texts;  // definition_text()
  std::map<std::string, int> latest;
  std::vector<std::shared_ptr<Partition>> parts;
  Counters counters;
  std::mutex seed_mu;
  std::mt19937_64 seed_rng{std::random_device{}()};
  bool subscribed = false;
  std::atomic<bool> closed{false};
  // Public calls between their check of `closed` and their post to a partition; close() waits
  // for them, so everything accepted is queued before the final flush.
  std::atomic<int> calls{0};

  bool enter() {
    calls.fetch_add(1);
    if (!closed.load()) return true;
    calls.fetch_sub(1);
    return false;
  }
  void leave() { calls.fetch_sub(1); }
  void wait_for_calls() {
    while (calls.load() > 0) std::this_thread::yield();
  }

  Impl(EngineOptions o, EventStore& s, Transport& t, Clock& c)
      : opts(std::move(o)), store(s), transport(t), clock(c) {}

  // A line that recurs for many sagas names them in `about`, not in its text: a structured sink
  // can count the repeats. A plain sink gets the ids after the text.
  void log(const std::string& line, const LogContext& about = {}) {
    if (opts.log_structured) {
      opts.log_structured(line, about);
      return;
    }
    std::string text = line;
    if (!about.saga_id.empty() && line.find("'" + about.saga_id + "'") == std::string::npos) {
      text += " [saga " + about.saga_id;
      if (!about.command_id.empty()) text += ", command " + about.command_id;
      text += "]";
    }
    if (opts.log) {
      opts.log(text);
    } else {
      std::cerr << "saga: " << text << "\n";
    }
  }
  uint64_t next_seed() {
    std::lock_guard l(seed_mu);
    return seed_rng();
  }
  Partition& partition_of(const std::string& saga_id);
  const Definition* find(const std::string& name, int version) const {
    if (version == 0) {
      auto it = latest.find(name);
      if (it == latest.end()) return nullptr;
      version = it->second;
    }
    auto it = defs.find({name, version});
    return it == defs.end() ? nullptr : &it->second;
  }
};

// One partition: its sagas are touched only by handlers running on `io`, one at a time.
struct Partition : std::enable_shared_from_this<Partition> {
  struct Live {
    SagaState state;
    const Definition* def = nullptr;
    std::vector<Engine::Callback> waiters;
    // The finished status last committed and reported (and counted): a finished saga with
    // another status is not committed yet.
    std::optional<SagaStatus> reported;
    std::unordered_set<std::string> timers;    // durable timers still pending
    std::unordered_set<std::string> inflight;  // commands awaiting their reply (outbox rows)
  };

  Engine::Impl& impl;
  asio::io_context io{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  // Recovered sagas whose definition version is not registered: left untouched.
  std::unordered_set<std::string> unloaded;
  // Fingerprints of the definitions this partition has written to the log.
  std::unordered_set<std::string> recorded_definitions;
  asio::steady_timer delay_timer{io};

  std::unordered_map<std::string, Live> sagas;
  std::unordered_map<std::string, Clock::TimerId> armed;  // durable timer id -> clock timer
  struct Unacked {
    Message message;
    int failures = 0;  // sends of it that failed so far
  };
  std::unordered_map<std::string, Unacked> unacked;  // command id -> message in flight

  // A batch handed to the store, and what to do once it is committed.
  struct Commit {
    WriteBatch batch;
    std::vector<Command> sends;
    std::vector<Timer> arms;
    std::vector<std::string> cancels, finished, retried;
    std::vector<std::function<void(Status)>> callbacks;
    std::vector<Ack> acks;
    Status status;  // set by the committer
    std::chrono::steady_clock::duration took{};
  };
  // The commit the committer runs now (one at a time: a batch's decisions may follow from the
  // previous batch's), and the committer; none in manual mode, where commits run inline.
  std::shared_ptr<Commit> in_flight;
  std::unique_ptr<Committer> committer;

  // The batch being gathered and what to do once it is committed.
  WriteBatch batch;
  std::vector<Command> to_send;
  std::vector<Timer> to_arm;
  std::vector<std::string> to_cancel;
  std::vector<std::string> finished;
  std::vector<std::string> retried;  // finished sagas an operator retried (not committed yet)
  std::vector<std::function<void(Status)>> after_commit;  // Ok once committed, else why not
  std::vector<Ack> acks;                                  // replies whose decisions are in `batch`
  bool flush_scheduled = false;
  // Why the last commit failed, and how many failed in a row: while the log cannot be written
  // the partition takes no new sagas (it would only grow a batch it cannot commit).
  Status write_error;
  uint64_t failed_in_a_row = 0;
  bool retry_pending = false;
  // Set once the engine is destroyed without close(): queued handlers answer and do nothing.
  bool draining = false;

  explicit Partition(Engine::Impl& i) : impl(i) {}

  template <typename F>
  void post(F&& f) {
    asio::post(io, std::forward<F>(f));
  }

  // ---- inputs ----
  void handle_start(StartRequest req, const Definition* def, Engine::Callback done) {
    if (draining) {
      done(Status::Unavailable("engine destroyed before saga '" + req.saga_id + "' started"));
      return;
    }
    if (auto it = sagas.find(req.saga_id); it != sagas.end()) {
      const SagaState& s = it->second.state;
      if (s.definition != req.definition || s.input != req.input) {
        done(Status::AlreadyExists("saga '" + req.saga_id + "' exists with another input"));
      } else if (is_finished(s.status) && it->second.reported == s.status) {
        done(SagaOutcome{s.id, s.status, s.reason, s.context, s.definition, s.updated_at, s.trace});
      } else {  // running, or finished but not committed yet: answered by finish()
        // Accepted once nothing of this partition waits to be committed (its start may).
        if (req.on_accepted) {
          if (batch.empty() && !in_flight && write_error.ok()) {
            req.on_accepted(Status::Ok());
          } else {
            after_commit.push_back(std::move(req.on_accepted));
          }
        }
        it->second.waiters.push_back(std::move(done));
      }
      return;
    }
    if (!write_error.ok()) {
      done(Status::Unavailable(
          "saga '" + req.saga_id + "' not started: the saga log cannot be written (" +
          write_error.message() + "); nothing was recorded, start it again later"));
      return;
    }
    if (unloaded.count(req.saga_id)) {
      done(Status::FailedPrecondition("saga '" + req.saga_id +
                                      "' was recovered but its definition version is not "
                                      "registered as it started; it is left as it is"));
      return;
    }
    auto found = impl.store.find(req.saga_id);
    if (!found.ok()) {
      done(found.status());
      return;
    }
    if (found->has_value()) {
      const SagaSummary& sum = **found;
      if (sum.definition != req.definition || sum.input != req.input) {
        done(Status::AlreadyExists("saga '" + req.saga_id + "' exists with another input"));
        return;
      }
      auto events = impl.store.events(req.saga_id);
      if (!events.ok()) {
        done(events.status());
        return;
      }
      const SagaState s = replay(req.saga_id, *events);
      done(SagaOutcome{s.id, s.status, s.reason, s.context, s.definition, s.updated_at, s.trace});
      return;
    }
    const std::string& fp = impl.fingerprints[{def->name, def->version}];
    Decision d = saga::start(*def, req.saga_id, req.input, req.traceparent, impl.next_seed(),
                             impl.clock.now(), fp);
    // The first saga to use a definition writes it beside itself (the store keeps one row).
    if (recorded_definitions.insert(fp).second)
      batch.definitions.push_back(
          {def->name, def->version, fp, impl.texts[{def->name, def->version}], impl.clock.now()});
    Live& live = sagas[req.saga_id];
    live.def = def;
    live.waiters.push_back(std::move(done));
    if (req.on_accepted) after_commit.push_back(std::move(req.on_accepted));
    impl.counters.started++;
    impl.counters.active++;
    record(req.saga_id, live, std::move(d));
  }

  // `ack` settles the reply that brought `in`: once the decision it led to is committed.
  void handle_input(const std::string& saga_id, const Input& in, Ack ack = {}) {
    if (draining) return;  // not settled: delivered again to the next engine
    auto it = sagas.find(saga_id);
    if (it == sagas.end()) {
      if (in.kind == Input::Kind::kReply) {
        impl.counters.replies_dropped++;
        impl.log("dropped reply: no active saga of that id", {saga_id, in.reply.command_id, ""});
        settle_stray(saga_id, ack);
      }
      return;
    }
    Live& live = it->second;
    Decision d = decide(*live.def, live.state, in, impl.clock.now());
    if (!d.ignored.empty() && in.kind == Input::Kind::kReply) {
      impl.counters.replies_dropped++;
      impl.log("dropped reply: " + d.ignored, {saga_id, in.reply.command_id, live.state.trace});
    }
    if (d.events.empty() && d.cancel_timers.empty()) {
      ack();
      return;
    }
    acks.push_back(std::move(ack));
    record(saga_id, live, std::move(d));
  }

  // A reply for a saga this partition does not hold: a late duplicate of a finished (or
  // parked) saga is settled; one for a saga that never existed is a dead letter.
  void settle_stray(const std::string& saga_id, const Ack& ack) {
    if (unloaded.count(saga_id)) return ack();
    auto found = impl.store.find(saga_id);
    if (!found.ok()) return;  // not settled: delivered again later
    if (found->has_value()) return ack();
    ack.dead_letter("no saga '" + saga_id + "'");
  }

  void handle_operator(const std::string& saga_id, Input in, std::promise<Status> done) {
    if (draining) {
      done.set_value(Status::Unavailable("engine destroyed"));
      return;
    }
    auto it = sagas.find(saga_id);
    if (it == sagas.end()) {
      auto found = impl.store.find(saga_id);
      if (found.ok() && found->has_value()) {
        done.set_value(Status::FailedPrecondition("saga '" + saga_id + "' is " +
                                                  status_name((*found)->status) + ", not stuck"));
      } else {
        done.set_value(Status::NotFound("no saga '" + saga_id + "'"));
      }
      return;
    }
    Decision d = decide(*it->second.def, it->second.state, in, impl.clock.now());
    if (d.events.empty()) {
      done.set_value(Status::FailedPrecondition("saga '" + saga_id + "': " + d.ignored));
      return;
    }
    auto shared = std::make_shared<std::promise<Status>>(std::move(done));
    after_commit.push_back([shared](Status st) { shared->set_value(st); });
    record(saga_id, it->second, std::move(d));
  }

  void record(const std::string& saga_id, Live& live, Decision d) {
    const SagaStatus before = live.state.status;
    live.state = std::move(d.state);
    // An operator retried it: counted (and told) as stuck until the retry is committed. Keyed
    // on the live state: its stuck state may still be in the commit before this one.
    if (is_finished(before) && !is_finished(live.state.status)) retried.push_back(saga_id);
    for (const auto& t : d.cancel_timers) live.timers.erase(t);
    for (const auto& t : d.timers) live.timers.insert(t.id);
    // An outbox row lives until its command is settled (answered, timed out, superseded), so
    // that recovery re-sends every command still in flight under its original id.
    for (const auto& c : d.commands) live.inflight.insert(c.id);
    for (auto it = live.inflight.begin(); it != live.inflight.end();) {
      if (awaited(live, *it)) {
        ++it;
      } else {
        batch.sent.push_back({saga_id, *it});
        it = live.inflight.erase(it);
      }
    }
    if (is_terminal(live.state.status)) {
      // Nothing can fire for a finished saga: drop its remaining timers with it.
      for (const auto& t : live.timers) d.cancel_timers.push_back(t);
      live.timers.clear();
    }
    if (before != live.state.status && is_finished(live.state.status)) finished.push_back(saga_id);
    to_send.insert(to_send.end(), d.commands.begin(), d.commands.end());
    to_arm.insert(to_arm.end(), d.timers.begin(), d.timers.end());
    to_cancel.insert(to_cancel.end(), d.cancel_timers.begin(), d.cancel_timers.end());
    batch.sagas.push_back(SagaWrite{live.state, std::move(d.events), std::move(d.commands),
                                    std::move(d.timers), std::move(d.cancel_timers)});
    schedule_flush();
  }

  void schedule_flush() {
    if (!write_error.ok()) return;  // the pending retry commits everything gathered by then
    if (in_flight) {
      // Its completion hands this batch over. A batch full meanwhile waits for it here, which
      // holds the partition back as a full batch always has: a commit stays within max_batch.
      if (batch.sagas.size() >= impl.opts.max_batch) {
        committer->wait_idle();
        complete(std::exchange(in_flight, nullptr));
      }
      return;
    }
    // With a committer idle and half of the partition's sagas in this batch, commit it now: the
    // other half gathers meanwhile, and the two groups alternate.
    if (batch.sagas.size() >= impl.opts.max_batch ||
        (committer && batch.sagas.size() * 2 >= sagas.size())) {
      flush();
      return;
    }
    if (flush_scheduled) return;
    flush_scheduled = true;
    if (impl.opts.commit_delay.count() > 0) {
      delay_timer.expires_after(impl.opts.commit_delay);
      delay_timer.async_wait([this](std::error_code ec) {
        if (!ec) flush();
      });
    } else {
      post([this] { flush(); });
    }
  }

  // ---- commit, then act ----
  // Moves the gathered batch, and what to do once it is committed, into a Commit.
  std::shared_ptr<Commit> take_batch() {
    auto c = std::make_shared<Commit>();
    c->batch = std::exchange(batch, {});
    c->sends = std::exchange(to_send, {});
    c->arms = std::exchange(to_arm, {});
    c->cancels = std::exchange(to_cancel, {});
    c->finished = std::exchange(finished, {});
    c->retried = std::exchange(retried, {});
    c->callbacks = std::exchange(after_commit, {});
    c->acks = std::exchange(acks, {});
    return c;
  }

  // A commit that failed goes back in front of what was gathered since: its decisions come
  // first, and nothing of it has been acted on.
  void restore(Commit& c) {
    auto front = [](auto& to, auto& from) {
      from.insert(from.end(), std::make_move_iterator(to.begin()),
                  std::make_move_iterator(to.end()));
      to = std::move(from);
    };
    front(batch.sagas, c.batch.sagas);
    front(batch.definitions, c.batch.definitions);
    front(batch.sent, c.batch.sent);
    front(to_send, c.sends);
    front(to_arm, c.arms);
    front(to_cancel, c.cancels);
    front(finished, c.finished);
    front(retried, c.retried);
    front(after_commit, c.callbacks);
    front(acks, c.acks);
  }

  // Callers accepted while `c` ran, with nothing of their own to commit, are answered with it.
  void take_waiting_callbacks(Commit& c) {
    if (!batch.empty()) return;  // they go with the batch they wait on
    for (auto& cb : std::exchange(after_commit, {})) c.callbacks.push_back(std::move(cb));
  }

  static void run_commit(EventStore& store, Commit& c) {
    const auto t0 = std::chrono::steady_clock::now();
    c.status = store.commit(c.batch);
    c.took = std::chrono::steady_clock::now() - t0;
  }

  void flush() {
    flush_scheduled = false;
    if (batch.empty() || draining || in_flight) return;
    auto c = take_batch();
    if (!committer) {
      run_commit(impl.store, *c);
      complete(std::move(c));
      return;
    }
    in_flight = c;
    committer->submit([this, c] {
      run_commit(impl.store, *c);
      post([this, c] {
        if (in_flight != c) return;  // completed by flush_now()
        in_flight.reset();
        complete(c);
      });
    });
  }

  void complete(std::shared_ptr<Commit> c) {
    if (draining) {  // destroyed without close(): answer, act on nothing
      if (c->status.ok())
        for (const Ack& ack : c->acks) ack();
      for (auto& cb : c->callbacks)
        cb(c->status.ok() ? Status::Ok() : Status::Unavailable("engine destroyed"));
      return;
    }
    if (!c->status.ok()) {
      const Status st = c->status;
      restore(*c);
      impl.counters.commit_failures++;
      if (failed_in_a_row++ == 0) {  // once per outage, not once per retry
        impl.counters.failing++;
        impl.log("the saga log cannot be written: " + st.to_string() + "; " +
                 std::to_string(batch.sagas.size()) +
                 " decisions wait (none acted on), new sagas are refused; retrying every " +
                 std::to_string(impl.opts.resend_delay.count()) + " ms");
      }
      write_error = st;
      // Keep everything; new decisions join this batch. Nothing leaves before the commit.
      if (retry_pending) return;  // one retry timer, however many inputs arrive meanwhile
      retry_pending = true;
      std::weak_ptr<Partition> weak = weak_from_this();
      impl.clock.schedule(impl.clock.now() + impl.opts.resend_delay, [weak] {
        if (auto p = weak.lock())
          p->post([raw = p.get()] {
            raw->retry_pending = false;
            raw->flush();
          });
      });
      return;
    }
    // What was gathered meanwhile goes to the committer before this commit's replies come
    // back, so that two groups of sagas alternate instead of all waiting on one commit.
    if (!batch.empty()) flush();
    take_waiting_callbacks(*c);
    committed(*c);
  }

  // close(): commit what is pending now, retrying a failed commit a few times.
  Status flush_now() {
    Status st;
    if (auto c = std::exchange(in_flight, nullptr)) {
      committer->wait_idle();
      st = c->status;
      if (st.ok()) {
        take_waiting_callbacks(*c);
        committed(*c);
      } else {
        impl.counters.commit_failures++;
        restore(*c);
      }
    }
    for (int attempt = 0; attempt < 10 && !batch.empty(); ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(impl.opts.resend_delay);
      auto c = take_batch();
      run_commit(impl.store, *c);
      st = c->status;
      if (st.ok()) {
        committed(*c);
        return st;
      }
      impl.counters.commit_failures++;
      restore(*c);
    }
    if (!st.ok())
      impl.log("close: " + std::to_string(batch.sagas.size()) +
               " decisions not committed: " + st.to_string());
    return st;
  }

  // After a successful commit: timers, sends, callbacks.
  void committed(Commit& c) {
    if (failed_in_a_row > 0) {
      impl.log("the saga log is writable again after " + std::to_string(failed_in_a_row) +
               " failed commits");
      impl.counters.failing--;
      failed_in_a_row = 0;
      write_error = Status::Ok();
    }
    if (impl.opts.on_commit)
      impl.opts.on_commit(c.batch.sagas.size(),
                          std::chrono::duration_cast<std::chrono::nanoseconds>(c.took));
    impl.counters.commits++;
    impl.counters.decisions += c.batch.sagas.size();
    for (const auto& w : c.batch.sagas) impl.counters.events_written += w.events.size();
    if (impl.opts.on_event)
      for (const SagaWrite& w : c.batch.sagas)
        for (const Event& e : w.events) impl.opts.on_event(w.state, e);
    for (const Ack& ack : c.acks) ack();

    for (const auto& id : c.cancels) {
      if (auto it = armed.find(id); it != armed.end()) {
        impl.clock.cancel(it->second);
        armed.erase(it);
      }
    }
    for (const auto& t : c.arms) arm(t);
    for (auto& cmd : c.sends) send(to_message(cmd));
    for (const auto& id : c.retried) {  // before finished: it may be stuck again already
      auto it = sagas.find(id);
      if (it == sagas.end() || !it->second.reported) continue;
      if (it->second.reported == SagaStatus::kStuck) impl.counters.stuck--;
      it->second.reported.reset();
    }
    if (!c.finished.empty()) {
      std::unordered_map<std::string_view, const SagaState*> written;  // last write of each saga
      for (const SagaWrite& w : c.batch.sagas) written[w.state.id] = &w.state;
      for (const auto& id : c.finished)
        if (auto it = written.find(id); it != written.end()) finish(id, *it->second);
    }
    for (auto& cb : c.callbacks) cb(Status::Ok());
  }

  // close() or destruction: every caller still waiting gets an answer.
  void fail_pending(const std::string& why) {
    for (auto& cb : std::exchange(after_commit, {})) cb(Status::Unavailable(why));
    acks.clear();  // their decisions were not committed: the replies come again
    for (auto& [id, live] : sagas) {
      for (auto& w : std::exchange(live.waiters, {}))
        w(Status::Unavailable(why + " before saga '" + id + "' ended (" +
                              status_name(live.state.status) +
                              "); it continues when an engine opens its log again"));
    }
  }

  // `s` is the saga as the commit that just ended wrote it. Its live state may be ahead (an
  // operator's retry or abort in the next batch, not committed yet): only what is committed is
  // reported.
  void finish(const std::string& saga_id, const SagaState& s) {
    auto it = sagas.find(saga_id);
    if (it == sagas.end()) return;
    Live& live = it->second;
    if (!is_finished(s.status) || live.reported == s.status) return;  // reported already
    auto& c = impl.counters;
    if (live.reported == SagaStatus::kStuck) c.stuck--;  // stuck, then aborted
    live.reported = s.status;
    switch (s.status) {
      case SagaStatus::kCompleted:
        c.completed++;
        break;
      case SagaStatus::kCompensated:
        c.compensated++;
        break;
      case SagaStatus::kStuck:
        c.stuck++;
        break;
      case SagaStatus::kAborted:
        c.aborted++;
        break;
      default:
        break;
    }
    SagaOutcome out{s.id, s.status, s.reason, s.context, s.definition, s.updated_at, s.trace};
    std::vector<Engine::Callback> waiters;
    if (is_terminal(s.status)) {
      waiters = std::exchange(live.waiters, {});
      sagas.erase(it);
      c.active--;
    } else if (!is_finished(live.state.status)) {
      // Stuck, and retried since (not committed yet): counted stuck until the retry is
      // committed; its callers wait for how the retried saga ends.
    } else {
      waiters = std::exchange(live.waiters, {});
    }
    // Observers (metrics, logs) first: whoever hears the outcome then sees it counted.
    if (impl.opts.on_finished) impl.opts.on_finished(out);
    for (auto& w : waiters) w(out);
  }

  Message to_message(const Command& c) const {
    Message m;
    m.kind = Message::Kind::kCommand;
    m.channel = c.participant;
    m.type = c.type;
    m.saga_id = c.saga_id;
    m.command_id = c.id;
    m.reply_to = impl.opts.reply_channel;
    m.compensation = c.compensation;
    m.payload = c.payload;
    m.traceparent = child_traceparent(c.trace, c.id);  // a span per command, under the saga
    return m;
  }

  void send(Message m) {
    const std::string id = m.command_id;
    if (auto [it, fresh] = unacked.try_emplace(id, Unacked{m, 0}); fresh) {
      impl.counters.backlog++;
    } else {
      it->second.message = m;
    }
    impl.counters.commands_sent++;
    std::weak_ptr<Partition> weak = weak_from_this();
    impl.transport.send(std::move(m), [weak, id](Status st) {
      if (auto p = weak.lock()) p->post([raw = p.get(), id, st] { raw->on_sent(id, st); });
    });
  }

  void on_sent(const std::string& id, const Status& st) {
    if (draining) return;
    auto it = unacked.find(id);
    if (it == unacked.end()) return;
    if (st.ok()) {
      unacked.erase(it);
      impl.counters.backlog--;
      return;
    }
    impl.counters.send_failures++;
    // Recorded in the saga's log once per attempt (decide drops repeats), logged once here.
    if (it->second.failures++ == 0) {
      const Message& m = it->second.message;
      impl.log("send failed, will retry every " + std::to_string(impl.opts.resend_delay.count()) +
                   "ms: " + st.to_string(),
               {m.saga_id, id, m.traceparent});
    }
    Input in;
    in.kind = Input::Kind::kSendFailed;
    in.reply.command_id = id;
    in.reply.error = st.message();
    const std::string saga_id = it->second.message.saga_id;
    handle_input(saga_id, in);
    std::weak_ptr<Partition> weak = weak_from_this();
    impl.clock.schedule(impl.clock.now() + impl.opts.resend_delay, [weak, id] {
      if (auto p = weak.lock())
        p->post([p = p.get(), id] {
          auto it = p->unacked.find(id);
          if (it == p->unacked.end()) return;
          p->resend(it->second.message);
        });
    });
  }

  // A command whose attempt the saga has moved past (timed out, retried, compensated) is not
  // sent again: its outbox row is dropped instead.
  static bool awaited(const Live& live, const std::string& command_id) {
    CommandIdParts parts;
    if (!parse_command_id(command_id, &parts)) return false;
    const int i = live.def->find_step(parts.step);
    if (i < 0 || static_cast<size_t>(i) >= live.state.steps.size()) return false;
    const StepProgress& p = live.state.steps[i];
    return parts.compensation
               ? p.phase == StepPhase::kCompensating && p.comp_attempt == parts.attempt
               : p.phase == StepPhase::kRunning && p.attempt == parts.attempt;
  }

  void resend(Message m) {
    auto it = sagas.find(m.saga_id);
    if (it != sagas.end() && awaited(it->second, m.command_id)) {
      send(std::move(m));
    } else {
      if (it != sagas.end()) it->second.inflight.erase(m.command_id);
      if (unacked.erase(m.command_id) > 0) impl.counters.backlog--;
      batch.sent.push_back({m.saga_id, m.command_id});
      schedule_flush();
    }
  }

  void arm(const Timer& t) {
    if (armed.count(t.id)) return;
    std::weak_ptr<Partition> weak = weak_from_this();
    armed[t.id] = impl.clock.schedule(t.due, [weak, t] {
      if (auto p = weak.lock())
        p->post([p = p.get(), t] {
          p->armed.erase(t.id);
          Input in;
          in.kind = Input::Kind::kTimer;
          in.timer = t;
          p->handle_input(t.saga_id, in);
        });
    });
  }

  void stop_thread() {
    work.reset();
    io.stop();
    if (thread.joinable()) thread.join();
    if (committer) committer->stop();  // a commit it runs ends; its completion stays queued
  }

  // After stop_thread() of an engine destroyed without close(): runs what was queued so that
  // every call gets its answer, committing nothing.
  void drain(const std::string& why) {
    draining = true;
    io.restart();
    io.poll();
    fail_pending(why);
  }
};

Partition& Engine::Impl::partition_of(const std::string& saga_id) {
  return *parts[std::hash<std::string>{}(saga_id) % parts.size()];
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  Impl& im = *impl_;
  const bool was_closed = im.closed.exchange(true);
  im.wait_for_calls();
  if (im.subscribed) im.transport.unsubscribe(im.opts.reply_channel);
  for (auto& p : im.parts) p->stop_thread();
  for (auto& p : im.parts)
    for (auto& [id, timer] : p->armed) im.clock.cancel(timer);
  if (!was_closed)
    for (auto& p : im.parts) p->drain("engine destroyed without close()");
}

Result<std::unique_ptr<Engine>> Engine::open(EngineOptions options, EventStore& store,
                                             Transport& transport, Clock& clock) {
  if (options.partitions < 1 || options.partitions > 1024)
    return Status::InvalidArgument("partitions must be between 1 and 1024");
  if (options.max_batch < 1) return Status::InvalidArgument("max_batch must be at least 1");
  if (options.reply_channel.empty())
    return Status::InvalidArgument("reply_channel must not be empty");
  auto impl = std::make_unique<Impl>(std::move(options), store, transport, clock);
  for (const Definition& d : impl->opts.definitions) {
    if (Status st = check(d); !st.ok()) return st;
    if (!impl->defs.emplace(std::make_pair(d.name, d.version), d).second)
      return Status::InvalidArgument("saga '" + d.name + "' version " + std::to_string(d.version) +
                                     " is registered twice");
    impl->fingerprints[{d.name, d.version}] = fingerprint(d);
    impl->texts[{d.name, d.version}] = definition_text(d);
    int& v = impl->latest[d.name];
    v = std::max(v, d.version);
  }
  for (int i = 0; i < impl->opts.partitions; ++i)
    impl->parts.push_back(std::make_shared<Partition>(*impl));

  auto rec = store.recover();
  if (!rec.ok()) return rec.status();
  std::unique_ptr<Engine> engine(new Engine(std::move(impl)));
  Impl& im = *engine->impl_;
  for (SagaState& s : rec->active) {
    const Definition* def = im.find(s.definition, s.version);
    if (def == nullptr) {
      im.log("saga '" + s.id + "' needs definition " + s.definition + " v" +
                 std::to_string(s.version) + ", which is not registered; left as it is",
             {s.id, "", s.trace});
      im.partition_of(s.id).unloaded.insert(s.id);
      continue;
    }
    if (const std::string& fp = im.fingerprints[{def->name, def->version}];
        !s.fingerprint.empty() && s.fingerprint != fp) {
      im.log("saga '" + s.id + "' started on another definition of " + s.definition + " v" +
                 std::to_string(s.version) + " (fingerprint " + s.fingerprint + ", registered " +
                 fp + "): a changed definition needs a new version; left as it is",
             {s.id, "", s.trace});
      im.partition_of(s.id).unloaded.insert(s.id);
      continue;
    }
    Partition& p = im.partition_of(s.id);
    auto& live = p.sagas[s.id];
    live.def = def;
    live.state = std::move(s);
    im.counters.active++;
    if (live.state.status == SagaStatus::kStuck) {
      live.reported = SagaStatus::kStuck;
      im.counters.stuck++;
    }
  }
  for (const Timer& t : rec->timers) {
    Partition& p = im.partition_of(t.saga_id);
    auto it = p.sagas.find(t.saga_id);
    if (it == p.sagas.end()) continue;
    it->second.timers.insert(t.id);
    p.arm(t);
  }
  for (const Command& c : rec->outbox) {
    Partition& p = im.partition_of(c.saga_id);
    if (p.unloaded.count(c.saga_id)) continue;  // its row stays for a later redeploy
    if (auto it = p.sagas.find(c.saga_id); it != p.sagas.end()) it->second.inflight.insert(c.id);
    p.post([&p, m = p.to_message(c)]() mutable { p.resend(std::move(m)); });
  }

  Engine::Impl* raw = &im;
  // Replies arrive on transport threads; they are checked here and posted to their partition.
  std::vector<std::weak_ptr<Partition>> weak_parts(im.parts.begin(), im.parts.end());
  const size_t max_payload = im.opts.max_payload_bytes;
  auto counters = &im.counters;
  Status sub = transport.subscribe(im.opts.reply_channel, [weak_parts, max_payload, counters, raw](
                                                              Message m, Ack ack) {
    auto reject = [&](const std::string& why) {
      counters->inputs_rejected++;
      raw->log("rejected message: " + why,
               {bounded_text(m.saga_id, 300), bounded_text(m.command_id, 300), ""});
      ack.dead_letter(why);
    };
    if (m.kind != Message::Kind::kReply) return reject("not a reply");
    if (Status st = check_id(m.saga_id, "saga id"); !st.ok()) return reject(st.message());
    if (m.command_id.size() > 4 * kMaxIdBytes || !is_valid_utf8(m.command_id))
      return reject("command id is not an id this engine sends");
    if (m.payload.size() > max_payload)
      return reject("payload of " + std::to_string(m.payload.size()) + " bytes exceeds " +
                    std::to_string(max_payload));
    // Most replies carry no data: only parse payloads that do.
    if (!m.payload.empty() && m.payload != "{}") {
      if (Status st = check_json_object(m.payload, "payload"); !st.ok())
        return reject(st.message());
    }
    if (m.error.size() > kMaxErrorBytes || !is_valid_utf8(m.error)) m.error = bounded_text(m.error);
    auto p = weak_parts[std::hash<std::string>{}(m.saga_id) % weak_parts.size()].lock();
    if (!p) return;
    Input in;
    in.kind = Input::Kind::kReply;
    in.reply = Reply{std::move(m.command_id), m.outcome, std::move(m.payload), std::move(m.error)};
    p->post([p = p.get(), id = std::move(m.saga_id), in = std::move(in),
             ack = std::move(ack)]() mutable { p->handle_input(id, in, std::move(ack)); });
  });
  if (!sub.ok()) return sub;
  im.subscribed = true;

  if (!im.opts.manual) {
    for (auto& p : im.parts) {
      p->work.emplace(asio::make_work_guard(p->io));
      p->committer = std::make_unique<Committer>();
      p->thread = std::thread([p = p.get()] {
        tl_partition = p;
        p->io.run();
      });
    }
  }
  return engine;
}

void Engine::start(StartRequest req, Callback done) {
  Impl& im = *impl_;
  if (req.on_accepted) {
    // Whatever answers first: the commit of the start (handle_start), or `done` with an error
    // or the outcome of a saga that already existed.
    struct Once {
      std::function<void(Status)> fn;
      std::atomic<bool> called{false};
      void operator()(Status st) {
        if (called.exchange(true)) return;
        auto f = std::move(fn);  // what it captured goes now, not when the saga ends
        fn = nullptr;
        f(std::move(st));
      }
    };
    auto once = std::make_shared<Once>();
    once->fn = std::move(req.on_accepted);
    req.on_accepted = [once](Status st) { (*once)(std::move(st)); };
    done = [once, done = std::move(done)](Result<SagaOutcome> r) {
      (*once)(r.ok() ? Status::Ok() : r.status());
      done(std::move(r));
    };
  }
  if (!im.enter()) {
    done(Status::FailedPrecondition("engine is closed"));
    return;
  }
  struct Leave {
    Impl& im;
    ~Leave() { im.leave(); }
  } leave{im};
  const Definition* def = im.find(req.definition, req.version);
  if (def == nullptr) {
    done(Status::NotFound("unknown saga type '" + bounded_text(req.definition, 128) + "'" +
                          (req.version ? " version " + std::to_string(req.version) : "")));
    return;
  }
  if (req.saga_id.empty()) {
    char buf[33];
    uint64_t a = im.next_seed(), b = im.next_seed();
    snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a),
             static_cast<unsigned long long>(b));
    req.saga_id = buf;
  }
  if (Status st = check_id(req.saga_id, "saga id"); !st.ok()) {
    done(st);
    return;
  }
  if (Status st = check_traceparent(req.traceparent); !st.ok()) {
    done(st);
    return;
  }
  if (req.input.empty()) req.input = "{}";
  if (req.input.size() > im.opts.max_payload_bytes) {
    done(Status::InvalidArgument(
        "input of " + std::to_string(req.input.size()) +
        " bytes exceeds max_payload_bytes=" + std::to_string(im.opts.max_payload_bytes)));
    return;
  }
  if (Status st = check_json_object(req.input, "input of saga '" + req.saga_id + "'"); !st.ok()) {
    done(st);
    return;
  }
  req.definition = def->name;
  Partition& p = im.partition_of(req.saga_id);
  p.post([&p, req = std::move(req), def, done = std::move(done)]() mutable {
    p.handle_start(std::move(req), def, std::move(done));
  });
}

std::future<Result<SagaOutcome>> Engine::start(StartRequest request) {
  auto promise = std::make_shared<std::promise<Result<SagaOutcome>>>();
  auto future = promise->get_future();
  start(std::move(request), [promise](Result<SagaOutcome> r) { promise->set_value(std::move(r)); });
  return future;
}

static std::future<Status> operator_input(Engine::Impl& im, const std::string& saga_id,
                                          Input::Kind kind, const std::string& reason) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  if (!im.enter()) {
    promise.set_value(Status::FailedPrecondition("engine is closed"));
    return future;
  }
  Partition& p = im.partition_of(saga_id);
  Input in;
  in.kind = kind;
  in.reason = reason;
  p.post([&p, saga_id, in, promise = std::move(promise)]() mutable {
    p.handle_operator(saga_id, in, std::move(promise));
  });
  im.leave();
  return future;
}

std::future<Status> Engine::retry(const std::string& saga_id, const std::string& reason) {
  return operator_input(*impl_, saga_id, Input::Kind::kOperatorRetry, reason);
}

std::future<Status> Engine::abort(const std::string& saga_id, const std::string& reason) {
  return operator_input(*impl_, saga_id, Input::Kind::kOperatorAbort, reason);
}

Result<SagaState> Engine::state(const std::string& saga_id) {
  Impl& im = *impl_;
  Partition& p = im.partition_of(saga_id);
  auto lookup = [&p, saga_id]() -> std::optional<SagaState> {
    auto it = p.sagas.find(saga_id);
    if (it == p.sagas.end()) return std::nullopt;
    return it->second.state;
  };
  std::optional<SagaState> live;
  // Directly when no other thread can touch the partition: manual mode, or a callback on the
  // partition's own thread. A callback on another partition never waits for this one (two
  // partitions waiting on each other would deadlock): it reads the committed state, as do
  // calls during and after close().
  if (im.opts.manual || tl_partition == &p) {
    live = lookup();
  } else if (tl_partition == nullptr && im.enter()) {
    std::promise<std::optional<SagaState>> pr;
    auto fut = pr.get_future();
    p.post([&pr, &lookup] { pr.set_value(lookup()); });
    live = fut.get();  // close() waits for this call before it stops the partition
    im.leave();
  }
  if (live) return *live;
  auto events = im.store.events(saga_id);
  if (!events.ok()) return events.status();
  if (events->empty()) return Status::NotFound("no saga '" + saga_id + "'");
  return replay(saga_id, *events);
}

size_t Engine::poll() {
  size_t total = 0;
  for (;;) {
    size_t n = 0;
    for (auto& p : impl_->parts) {
      n += p->io.poll();
      p->io.restart();
    }
    total += n;
    if (n == 0) return total;
  }
}

Status Engine::close() {
  Impl& im = *impl_;
  if (tl_partition != nullptr)
    return Status::FailedPrecondition("close() called from an engine callback");
  if (im.closed.exchange(true)) return Status::Ok();
  im.wait_for_calls();  // what was accepted is queued before the final flush
  if (im.subscribed) {
    im.transport.unsubscribe(im.opts.reply_channel);
    im.subscribed = false;
  }
  Status result;
  if (im.opts.manual) {
    poll();
    for (auto& p : im.parts) {
      if (Status st = p->flush_now(); !st.ok()) result = st;
      p->fail_pending("engine closed");
    }
    return result;
  }
  for (auto& p : im.parts) {
    std::promise<Status> done;
    auto fut = done.get_future();
    p->post([p = p.get(), &done] {
      Status st = p->flush_now();
      p->fail_pending("engine closed");
      done.set_value(st);
    });
    if (Status st = fut.get(); !st.ok()) result = st;
    p->stop_thread();
  }
  return result;
}

EngineMetrics Engine::metrics() const {
  const Counters& c = impl_->counters;
  EngineMetrics m;
  m.started = c.started;
  m.completed = c.completed;
  m.compensated = c.compensated;
  m.stuck = c.stuck;
  m.aborted = c.aborted;
  m.replies_dropped = c.replies_dropped;
  m.inputs_rejected = c.inputs_rejected;
  m.commits = c.commits;
  m.commit_failures = c.commit_failures;
  m.events_written = c.events_written;
  m.decisions_committed = c.decisions;
  m.commands_sent = c.commands_sent;
  m.send_failures = c.send_failures;
  m.active = static_cast<uint64_t>(std::max<int64_t>(0, c.active));
  m.outbox_backlog = static_cast<uint64_t>(std::max<int64_t>(0, c.backlog));
  m.partitions_failing = static_cast<uint64_t>(std::max<int64_t>(0, c.failing));
  return m;
}

const Definition* Engine::definition(const std::string& name, int version) const {
  return impl_->find(name, version);
}

}  // namespace saga

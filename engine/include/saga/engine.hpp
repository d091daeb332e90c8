// engine.hpp: start here.
//
// The orchestrator. Open it over an EventStore, a Transport and a Clock, with the saga
// definitions it may run; start sagas; get a callback or a future when each one ends.
//
//   input (start, reply, timer) -> decide() -> commit batch (events+outbox+timers) -> send
//
// Each saga belongs to one partition (hash of its id). A partition is served by one thread
// (or by poll() in manual mode), so saga processing takes no locks. Decisions of many sagas
// are committed in one store transaction (group commit) and their commands leave only after
// that commit.
//
// Thread-safety: every public method may be called from any thread, including from the
// engine's own callbacks (except close()), and every accepted call is answered exactly once.
// Callbacks run on partition threads: keep them short. From a callback, state() of a saga of
// another partition returns its last committed state (a partition never waits for another).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "saga/clock.hpp"
#include "saga/definition.hpp"
#include "saga/event_store.hpp"
#include "saga/state_machine.hpp"
#include "saga/status.hpp"
#include "saga/transport.hpp"

namespace saga {

struct SagaOutcome {
  std::string saga_id;
  SagaStatus status = SagaStatus::kRunning;
  std::string reason;      // failure, stuck or abort reason
  std::string context;     // the final saga context (input merged with reply data)
  std::string definition;  // the saga's type
  TimePoint updated_at{};  // when the event that ended it was decided
  std::string trace;       // the saga's trace (a W3C traceparent; empty when it has none)
};

// What an engine log line is about (empty when it is about no saga).
struct LogContext {
  std::string saga_id;
  std::string command_id;
  std::string trace;  // the saga's trace (a W3C traceparent)
};

struct EngineOptions {
  // Every version of every saga type this engine may run, including versions that only
  // recovered sagas still use.
  std::vector<Definition> definitions;
  std::string reply_channel = "orchestrator.replies";
  int partitions = 1;  // each has a thread, and a committer thread when not manual
  // No threads: the caller runs all work with poll(). Deterministic; used by tests.
  bool manual = false;
  size_t max_batch = 2048;  // decisions per commit, at most
  // Extra wait to gather a larger batch (0: commit when idle). While a commit runs, the next
  // batch gathers until it ends whatever this says.
  Duration commit_delay{0};
  size_t max_payload_bytes = 1 << 20;
  Duration resend_delay{200};  // after a failed send, and between commit retries
  // Called when any saga ends (completed, compensated, stuck, aborted), on a partition thread.
  std::function<void(const SagaOutcome&)> on_finished;
  // Observers for metrics, on partition threads, after each successful commit: every committed
  // event of every saga, and the commit itself (decisions in it, time the store took).
  std::function<void(const SagaState& after, const Event& event)> on_event;
  std::function<void(size_t decisions, std::chrono::nanoseconds took)> on_commit;
  // Log sink; default: warnings and errors to stderr.
  std::function<void(const std::string& line)> log;
  // Structured sink, used instead of `log` when set: what the line is about, as fields.
  std::function<void(const std::string& line, const LogContext& about)> log_structured;
};

struct StartRequest {
  std::string definition;
  int version = 0;  // 0: the newest registered version
  std::string saga_id;
  std::string input = "{}";  // a JSON object
  std::string traceparent;
  // Optional; runs once, before `done`: Ok when the saga's start is committed to the log (or
  // the saga already existed with this input), else the error `done` also gets. Lets an API
  // answer "accepted" only once the start is durable.
  std::function<void(Status)> on_accepted;
};

struct EngineMetrics {
  uint64_t started = 0, completed = 0, compensated = 0, stuck = 0, aborted = 0;
  uint64_t replies_dropped = 0;  // stale, duplicate or late replies
  uint64_t inputs_rejected = 0;  // undecodable or oversized input
  uint64_t commits = 0, commit_failures = 0, events_written = 0, decisions_committed = 0;
  uint64_t commands_sent = 0, send_failures = 0;
  uint64_t active = 0;          // sagas held in memory
  uint64_t outbox_backlog = 0;  // commands committed but not yet acknowledged by the broker
  // Partitions whose last commit failed (disk full, I/O error): they refuse new sagas with
  // kUnavailable and retry the commit every resend_delay until it succeeds.
  uint64_t partitions_failing = 0;
};

class Engine {
 public:
  using Callback = std::function<void(Result<SagaOutcome>)>;

  // Recovers the active sagas of `store` (snapshots), re-arms their timers and re-sends every
  // command still in flight, under its original id. REQUIRES: store, transport and clock outlive
  // the engine.
  static Result<std::unique_ptr<Engine>> open(EngineOptions options, EventStore& store,
                                              Transport& transport, Clock& clock);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Stops without committing work that is not committed yet, like a crash would, and answers
  // every pending callback and future with kUnavailable; call close() first for a clean
  // shutdown.
  ~Engine();

  // Starts a saga; `done` runs when it ends, or at once with an error when it cannot start.
  // Idempotent on saga_id: the same input joins the existing saga; another input is
  // kAlreadyExists.
  void start(StartRequest request, Callback done);
  std::future<Result<SagaOutcome>> start(StartRequest request);

  // Operator actions on a stuck saga: retry what it got stuck on, or abort it for good.
  std::future<Status> retry(const std::string& saga_id, const std::string& reason = "");
  std::future<Status> abort(const std::string& saga_id, const std::string& reason);

  // The live state of an active saga, or the stored log folded for a finished one.
  Result<SagaState> state(const std::string& saga_id);

  // Manual mode: runs ready work until none is left; returns the handlers run.
  size_t poll();
  // Commits pending work (retrying a failed commit a few times), stops the partitions, and
  // says whether everything decided was committed. Callbacks and futures of sagas still running
  // are answered with kUnavailable (the sagas continue when an engine opens the log again).
  // Afterwards start/retry/abort fail with kFailedPrecondition and state() reads the store.
  // REQUIRES: not called from a callback.
  Status close();

  EngineMetrics metrics() const;
  const Definition* definition(const std::string& name, int version) const;

  struct Impl;  // implementation detail

 private:
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace saga

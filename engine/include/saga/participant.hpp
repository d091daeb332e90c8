// The participant SDK: the receiving half of the protocol, for services that take part in
// sagas. It enforces the rules the orchestrator relies on:
//  - every command id is answered once: a repeat gets the recorded reply (a rejection stays a
//    rejection even if the handler would now succeed);
//  - an action is run at most once per saga step once it succeeded: a later attempt gets the
//    recorded success;
//  - a compensation for an action never seen is a no-op that succeeds;
//  - an action arriving after its compensation is refused (rejected), never run;
//  - a compensation runs at most once.
//
// Thread-safety: handlers run on the transport's threads, one message at a time per participant.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "saga/transport.hpp"

namespace saga {

struct ParticipantReply {
  ReplyOutcome outcome = ReplyOutcome::kOk;
  std::string data = "{}";  // JSON object merged into the saga context
  std::string error;

  static ParticipantReply ok(std::string data = "{}") { return {ReplyOutcome::kOk, data, ""}; }
  static ParticipantReply rejected(std::string why) { return {ReplyOutcome::kRejected, "{}", why}; }
  static ParticipantReply failed(std::string why) { return {ReplyOutcome::kFailed, "{}", why}; }
};

struct CommandContext {
  std::string saga_id;
  std::string command_id;
  std::string step;
  int attempt = 0;
  std::string type;
  std::string payload;  // the saga context, JSON
  std::string traceparent;
};

struct ParticipantStats {
  uint64_t actions_run = 0, compensations_run = 0;
  uint64_t duplicates = 0;          // answered from the record, not run again
  uint64_t noop_compensations = 0;  // compensation of an action never seen
  uint64_t refused_actions = 0;     // action after its compensation
  uint64_t undecodable = 0;
};

class Participant {
 public:
  using Handler = std::function<ParticipantReply(const CommandContext&)>;

  // REQUIRES: *transport outlives the participant.
  Participant(Transport& transport, std::string channel);
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  Participant& on(const std::string& command_type, Handler action);
  Participant& on_compensate(const std::string& command_type, Handler compensation);
  Status start();
  void stop();
  ParticipantStats stats() const;
  const std::string& channel() const { return channel_; }

 private:
  void handle(Message m);
  struct StepRecord {
    bool action_done = false;  // succeeded (its reply is recorded)
    bool compensated = false;
    ParticipantReply action_reply;
    std::map<std::string, ParticipantReply> replies;  // every command id answered, by id
  };

  Transport& transport_;
  std::string channel_;
  std::map<std::string, Handler> actions_, compensations_;
  mutable std::mutex mu_;
  std::map<std::string, StepRecord> steps_;  // key: saga id + '/' + step
  ParticipantStats stats_;
  bool started_ = false;
};

}  // namespace saga

#include "saga/participant.hpp"

#include <exception>

namespace saga {

Participant::Participant(Transport& transport, std::string channel)
    : transport_(transport), channel_(std::move(channel)) {}

Participant::~Participant() {
  stop();
}

Participant& Participant::on(const std::string& type, Handler action) {
  actions_[type] = std::move(action);
  return *this;
}

Participant& Participant::on_compensate(const std::string& type, Handler compensation) {
  compensations_[type] = std::move(compensation);
  return *this;
}

Status Participant::start() {
  Status st = transport_.subscribe(channel_, [this](Message m) { handle(std::move(m)); });
  if (st.ok()) started_ = true;
  return st;
}

void Participant::stop() {
  if (started_) transport_.unsubscribe(channel_);
  started_ = false;
}

ParticipantStats Participant::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

namespace {
// A handler that throws answers "failed" (retriable): the orchestrator retries, nothing crashes.
ParticipantReply call(const Participant::Handler& h, const CommandContext& ctx) {
  try {
    return h(ctx);
  } catch (const std::exception& e) {
    return ParticipantReply::failed(std::string("handler threw: ") + e.what());
  } catch (...) {
    return ParticipantReply::failed("handler threw");
  }
}
}  // namespace

void Participant::handle(Message m) {
  CommandIdParts parts;
  if (m.kind != Message::Kind::kCommand || !parse_command_id(m.command_id, &parts) ||
      m.reply_to.empty()) {
    std::lock_guard l(mu_);
    stats_.undecodable++;
    return;
  }
  CommandContext ctx{m.saga_id, m.command_id, parts.step,   parts.attempt,
                     m.type,    m.payload,    m.traceparent};
  ParticipantReply reply;
  {
    // One command at a time: the record and the handler's effect stay in step.
    std::lock_guard l(mu_);
    StepRecord& rec = steps_[m.saga_id + '/' + parts.step];
    auto& handlers = m.compensation ? compensations_ : actions_;
    auto h = handlers.find(m.type);
    if (auto seen = rec.replies.find(m.command_id); seen != rec.replies.end()) {
      // At-least-once delivery: the same command again gets the same answer.
      stats_.duplicates++;
      reply = seen->second;
    } else if (!m.compensation) {
      if (rec.compensated) {
        stats_.refused_actions++;
        reply = ParticipantReply::rejected("action arrived after its compensation");
      } else if (rec.action_done) {
        stats_.duplicates++;
        reply = rec.action_reply;
      } else if (h == handlers.end()) {
        reply = ParticipantReply::rejected("no handler for " + m.type + " at " + channel_);
      } else {
        stats_.actions_run++;
        reply = call(h->second, ctx);
        if (reply.outcome == ReplyOutcome::kOk) {
          rec.action_done = true;
          rec.action_reply = reply;
        }
      }
    } else {
      if (rec.compensated) {
        stats_.duplicates++;
        reply = ParticipantReply::ok();
      } else if (!rec.action_done) {
        // Never saw the action (or it had no effect): nothing to undo; refuse it from now on.
        stats_.noop_compensations++;
        rec.compensated = true;
        reply = ParticipantReply::ok();
      } else if (h == handlers.end()) {
        reply = ParticipantReply::failed("no compensation handler for " + m.type);
      } else {
        stats_.compensations_run++;
        reply = call(h->second, ctx);
        if (reply.outcome == ReplyOutcome::kOk) rec.compensated = true;
      }
    }
    rec.replies.emplace(m.command_id, reply);
  }
  Message r;
  r.kind = Message::Kind::kReply;
  r.channel = m.reply_to;
  r.type = m.type;
  r.saga_id = m.saga_id;
  r.command_id = m.command_id;
  r.compensation = m.compensation;
  r.outcome = reply.outcome;
  r.error = reply.error;
  r.payload = reply.data.empty() ? "{}" : reply.data;
  r.traceparent = m.traceparent;
  transport_.send(std::move(r), [](Status) {});
}

}  // namespace saga

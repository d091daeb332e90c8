#include "saga/participant.hpp"

#include <exception>

#include "saga/limits.hpp"

namespace saga {

Participant::Participant(Transport& transport, std::string channel, ParticipantStore& store)
    : transport_(transport), channel_(std::move(channel)), store_(store) {}

Participant::~Participant() {
  stop();
}

Participant& Participant::on(const std::string& type, Handler action) {
  actions_[type] = std::move(action);
  return *this;
}

Participant& Participant::on(const std::string& type, PlainHandler action) {
  return on(type,
            [h = std::move(action)](const CommandContext& c, ParticipantTx&) { return h(c); });
}

Participant& Participant::on_compensate(const std::string& type, Handler compensation) {
  compensations_[type] = std::move(compensation);
  return *this;
}

Participant& Participant::on_compensate(const std::string& type, PlainHandler compensation) {
  return on_compensate(type, [h = std::move(compensation)](const CommandContext& c,
                                                           ParticipantTx&) { return h(c); });
}

Status Participant::start() {
  if (started_) return Status::Ok();
  Status st = transport_.subscribe(
      channel_, [this](Message m, Ack ack) { handle(std::move(m), std::move(ack)); });
  if (!st.ok()) return st;
  started_ = true;
  // The participant outbox: replies committed before a crash but never acknowledged.
  auto unsent = store_.unsent();
  if (!unsent.ok()) return unsent.status();
  {
    std::lock_guard l(mu_);
    stats_.replies_resent += unsent->size();
  }
  for (Message& m : *unsent) send_reply(std::move(m));
  return Status::Ok();
}

void Participant::stop() {
  if (!started_) return;
  transport_.unsubscribe(channel_);
  started_ = false;
  std::lock_guard l(mu_);
  auto ids = take_acked();
  if (ids.empty()) return;
  auto tx = store_.begin();
  if (tx.ok() && (*tx)->mark_sent(ids).ok()) (void)(*tx)->commit();
}

ParticipantStats Participant::stats() const {
  std::lock_guard l(mu_);
  return stats_;
}

std::vector<std::string> Participant::take_acked() {
  std::lock_guard l(acks_->mu);
  return std::exchange(acks_->ids, {});
}

void Participant::send_reply(Message reply) {
  std::string id = reply.command_id;
  transport_.send(std::move(reply), [acks = acks_, id = std::move(id)](Status st) {
    if (!st.ok()) return;  // stays unsent: sent again at the next start()
    std::lock_guard l(acks->mu);
    acks->ids.push_back(id);
  });
}

namespace {

// Runs a handler between a savepoint and, unless it succeeded, a rollback to it. A handler that
// throws answers `failed` (retriable). An error of the store itself abandons the transaction.
Result<ParticipantReply> run_handler(ParticipantStore::Transaction& tx,
                                     const Participant::Handler& h, const CommandContext& ctx) {
  if (Status st = tx.savepoint(); !st.ok()) return st;
  ParticipantReply r;
  try {
    r = h(ctx, tx.business());
    if (r.outcome == ReplyOutcome::kOk && !r.data.empty() && r.data != "{}") {
      if (Status st = check_json_object(r.data, "handler's reply data"); !st.ok())
        r = ParticipantReply::failed(st.message());
    }
  } catch (const std::exception& e) {
    r = ParticipantReply::failed(std::string("handler threw: ") + e.what());
  } catch (...) {
    r = ParticipantReply::failed("handler threw");
  }
  if (r.data.empty()) r.data = "{}";
  if (r.error.size() > kMaxErrorBytes || !is_valid_utf8(r.error)) r.error = bounded_text(r.error);
  if (r.outcome != ReplyOutcome::kOk) {
    if (Status st = tx.rollback_to_savepoint(); !st.ok()) return st;
  }
  return r;
}

}  // namespace

// The rules of participant.hpp over the step's record; updates `rec`.
Result<ParticipantReply> Participant::apply_rules(ParticipantStore::Transaction& tx,
                                                  const Message& m, const CommandContext& ctx,
                                                  StepRecord& rec) {
  auto& handlers = m.compensation ? compensations_ : actions_;
  auto h = handlers.find(m.type);
  if (!m.compensation) {
    if (rec.compensated) {
      stats_.refused_actions++;
      return ParticipantReply::rejected("action arrived after its compensation");
    }
    if (rec.action_done) {  // an earlier attempt succeeded
      stats_.duplicates++;
      return rec.action_reply;
    }
    if (h == handlers.end())
      return ParticipantReply::rejected("no handler for " + m.type + " at " + channel_);
    stats_.actions_run++;
    auto r = run_handler(tx, h->second, ctx);
    if (r.ok() && r->outcome == ReplyOutcome::kOk) {
      rec.action_done = true;
      rec.action_reply = *r;
    }
    return r;
  }
  if (rec.compensated) {
    stats_.duplicates++;
    return ParticipantReply::ok();
  }
  if (!rec.action_done) {
    // Never saw the action (or it had no effect): nothing to undo; refuse it from now on.
    stats_.noop_compensations++;
    rec.compensated = true;
    return ParticipantReply::ok();
  }
  if (h == handlers.end())
    return ParticipantReply::failed("no compensation handler for " + m.type + " at " + channel_);
  stats_.compensations_run++;
  auto r = run_handler(tx, h->second, ctx);
  if (r.ok() && r->outcome == ReplyOutcome::kOk) rec.compensated = true;
  return r;
}

void Participant::handle(Message m, Ack ack) {
  CommandIdParts parts;
  if (m.kind != Message::Kind::kCommand || !parse_command_id(m.command_id, &parts) ||
      parts.saga_id != m.saga_id || m.reply_to.empty()) {
    {
      std::lock_guard l(mu_);
      stats_.undecodable++;
    }
    ack.dead_letter(m.kind != Message::Kind::kCommand ? "not a command"
                    : m.reply_to.empty()              ? "command without reply_to"
                                         : "command id is not one an orchestrator sends");
    return;
  }
  CommandContext ctx{m.saga_id, m.command_id, parts.step,   parts.attempt,
                     m.type,    m.payload,    m.traceparent};
  Message reply;
  reply.kind = Message::Kind::kReply;
  reply.channel = m.reply_to;
  reply.type = m.type;
  reply.saga_id = m.saga_id;
  reply.command_id = m.command_id;
  reply.compensation = m.compensation;
  reply.traceparent = m.traceparent;
  {
    std::lock_guard l(mu_);
    // One local transaction: the record, the business effect and the reply commit together.
    Status st;
    bool uncertain = false;  // COMMIT failed: the effect may still be durable (fsync error)
    auto tx = store_.begin();
    if (tx.ok()) {
      ParticipantStore::Transaction& t = **tx;
      st = t.mark_sent(take_acked());
      auto seen = st.ok() ? t.reply(m.command_id) : Result<std::optional<Message>>(st);
      if (seen.ok() && seen->has_value()) {
        // At-least-once delivery: the same command again gets the same answer.
        stats_.duplicates++;
        reply = std::move(**seen);
        reply.channel = m.reply_to;
        (void)t.commit();  // only carries the acknowledgements
      } else {
        auto rec = seen.ok() ? t.step(m.saga_id, parts.step) : Result<StepRecord>(seen.status());
        auto r = rec.ok() ? apply_rules(t, m, ctx, *rec) : Result<ParticipantReply>(rec.status());
        st = r.status();
        if (st.ok()) {
          reply.outcome = r->outcome;
          reply.payload = r->data.empty() ? "{}" : r->data;
          reply.error = r->error;
          st = t.record(m.saga_id, parts.step, *rec, reply);
        }
        if (st.ok()) {
          st = t.commit();
          uncertain = !st.ok();
        }
      }
    } else {
      st = tx.status();
    }
    if (uncertain) {
      // No answer: `failed` would tell the orchestrator the step was not applied. Its timeout
      // treats the step as possibly applied; the retry is answered from the record if it is.
      // Not settled either: the command comes again after a restart.
      stats_.store_failures++;
      return;
    }
    if (!st.ok()) {
      // Nothing was applied or recorded: a technical failure the orchestrator may retry.
      stats_.store_failures++;
      reply.outcome = ReplyOutcome::kFailed;
      reply.payload = "{}";
      reply.error = "participant " + channel_ + " could not record the command: " + st.message();
    }
  }
  // Settled once committed; a command type nobody handles is answered (the saga needs an
  // answer) and copied to the dead letters (an operator needs to know).
  const auto& handlers = m.compensation ? compensations_ : actions_;
  if (handlers.count(m.type) == 0) {
    ack.dead_letter("no " + std::string(m.compensation ? "compensation " : "") + "handler for " +
                    m.type + " at " + channel_);
  } else {
    ack();
  }
  send_reply(std::move(reply));
}

}  // namespace saga

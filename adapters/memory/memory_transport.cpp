#include "saga/memory.hpp"

namespace saga {

MemoryTransport::MemoryTransport() : state_(std::make_shared<State>()) {}

bool MemoryTransport::deliver(const std::shared_ptr<Sub>& sub, const std::string& channel,
                              uint64_t seq, Message message) {
  std::lock_guard run(sub->running);
  if (!sub->active) return false;
  std::weak_ptr<State> weak = state_;
  Ack ack([weak, channel, seq](const std::string& dead_letter_reason) {
    auto state = weak.lock();
    if (!state) return;
    std::lock_guard l(state->mu);
    auto& pending = state->unsettled[channel];
    auto it = pending.find(seq);
    if (it == pending.end()) return;  // settled already
    if (!dead_letter_reason.empty())
      state->dead.push_back({std::move(it->second), dead_letter_reason});
    pending.erase(it);
  });
  sub->handler(std::move(message), std::move(ack));
  return true;
}

void MemoryTransport::send(Message message, Completion done) {
  const std::string channel = message.channel;
  std::shared_ptr<Sub> sub;
  {
    std::lock_guard l(mu_);
    auto it = subs_.find(message.channel);
    if (it != subs_.end()) sub = it->second;
  }
  bool delivered = false;
  if (sub) {
    uint64_t seq;
    {
      std::lock_guard l(state_->mu);
      seq = ++state_->next;
      state_->unsettled[message.channel].emplace(seq, message);
    }
    delivered = deliver(sub, channel, seq, std::move(message));
    if (!delivered) {  // unsubscribed meanwhile: the broker never took it
      std::lock_guard l(state_->mu);
      state_->unsettled[channel].erase(seq);
    }
  }
  if (!delivered) {
    done(Status::Unavailable("no subscriber for channel '" + channel + "'"));
    return;
  }
  done(Status::Ok());
}

Status MemoryTransport::subscribe(const std::string& channel, Handler handler) {
  auto sub = std::make_shared<Sub>();
  sub->handler = std::move(handler);
  {
    std::lock_guard l(mu_);
    if (!subs_.emplace(channel, sub).second)
      return Status::AlreadyExists("channel '" + channel + "' already has a handler");
  }
  // What earlier subscribers never settled is delivered again, in order.
  std::map<uint64_t, Message> again;
  {
    std::lock_guard l(state_->mu);
    if (auto it = state_->unsettled.find(channel); it != state_->unsettled.end())
      again = it->second;
  }
  for (auto& [seq, m] : again) deliver(sub, channel, seq, std::move(m));
  return Status::Ok();
}

void MemoryTransport::unsubscribe(const std::string& channel) {
  std::shared_ptr<Sub> sub;
  {
    std::lock_guard l(mu_);
    auto it = subs_.find(channel);
    if (it == subs_.end()) return;
    sub = std::move(it->second);
    subs_.erase(it);
  }
  std::lock_guard wait(sub->running);  // a handler still running finishes first
  sub->active = false;
}

std::vector<MemoryTransport::DeadLetter> MemoryTransport::dead_letters() const {
  std::lock_guard l(state_->mu);
  return state_->dead;
}

size_t MemoryTransport::unsettled(const std::string& channel) const {
  std::lock_guard l(state_->mu);
  auto it = state_->unsettled.find(channel);
  return it == state_->unsettled.end() ? 0 : it->second.size();
}

}  // namespace saga

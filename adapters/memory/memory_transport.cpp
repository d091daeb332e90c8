#include "saga/memory.hpp"

namespace saga {

void MemoryTransport::send(Message message, Completion done) {
  std::shared_ptr<Sub> sub;
  {
    std::lock_guard l(mu_);
    auto it = subs_.find(message.channel);
    if (it != subs_.end()) sub = it->second;
  }
  bool delivered = false;
  if (sub) {
    std::lock_guard run(sub->running);
    if (sub->active) {
      sub->handler(std::move(message));
      delivered = true;
    }
  }
  if (!delivered) {
    done(Status::Unavailable("no subscriber for channel '" + message.channel + "'"));
    return;
  }
  done(Status::Ok());
}

Status MemoryTransport::subscribe(const std::string& channel, Handler handler) {
  std::lock_guard l(mu_);
  auto sub = std::make_shared<Sub>();
  sub->handler = std::move(handler);
  if (!subs_.emplace(channel, std::move(sub)).second)
    return Status::AlreadyExists("channel '" + channel + "' already has a handler");
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

}  // namespace saga

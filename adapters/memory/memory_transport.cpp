#include "saga/memory.hpp"

namespace saga {

void MemoryTransport::send(Message message, Completion done) {
  Sub sub;
  {
    std::lock_guard l(mu_);
    auto it = subs_.find(message.channel);
    if (it != subs_.end()) sub = it->second;
  }
  if (!sub.handler) {
    done(Status::Unavailable("no subscriber for channel '" + message.channel + "'"));
    return;
  }
  {
    std::lock_guard run(*sub.running);
    sub.handler(std::move(message));
  }
  done(Status::Ok());
}

Status MemoryTransport::subscribe(const std::string& channel, Handler handler) {
  std::lock_guard l(mu_);
  auto [it, inserted] =
      subs_.emplace(channel, Sub{std::move(handler), std::make_shared<std::recursive_mutex>()});
  if (!inserted) return Status::AlreadyExists("channel '" + channel + "' already has a handler");
  return Status::Ok();
}

void MemoryTransport::unsubscribe(const std::string& channel) {
  std::shared_ptr<std::recursive_mutex> running;
  {
    std::lock_guard l(mu_);
    auto it = subs_.find(channel);
    if (it == subs_.end()) return;
    running = it->second.running;
    subs_.erase(it);
  }
  std::lock_guard wait(*running);  // a handler still running finishes first
}

}  // namespace saga

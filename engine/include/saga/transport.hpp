// Transport: the message broker port. Commands go to participants, replies come back to the
// orchestrator's reply channel. Delivery is at-least-once; ids make duplicates harmless.
//
// Thread-safety: send/subscribe/unsubscribe may be called from any thread. Handlers and
// completions run on the transport's threads ("transport thread -> application"): post work to
// your own executor instead of blocking there.
#pragma once

#include <functional>
#include <string>

#include "saga/state_machine.hpp"
#include "saga/status.hpp"

namespace saga {

// The envelope; its JSON form (docs/wire-format.md) is what goes over Kafka.
struct Message {
  enum class Kind : uint8_t { kCommand = 0, kReply };
  Kind kind = Kind::kCommand;
  std::string channel;  // destination: a participant, or the orchestrator's reply channel
  std::string type;     // command type; a reply repeats the type of its command
  std::string saga_id;  // also the partitioning key
  std::string command_id;
  std::string reply_to;
  bool compensation = false;
  ReplyOutcome outcome = ReplyOutcome::kOk;  // replies
  std::string error;                         // replies
  std::string payload;  // command: saga context; reply: data to merge (JSON object)
  std::string traceparent;

  bool operator==(const Message&) const = default;
};

std::string encode_json(const Message& m);
Result<Message> decode_json(const std::string& text);

class Transport {
 public:
  using Handler = std::function<void(Message)>;
  using Completion = std::function<void(Status)>;

  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport() = default;

  // `done` runs exactly once: Ok when the broker has the message, an error otherwise
  // (error.retriable() says whether sending again can help).
  virtual void send(Message message, Completion done) = 0;
  // Delivers every message addressed to `channel` to `handler`. One handler per channel.
  virtual Status subscribe(const std::string& channel, Handler handler) = 0;
  // After it returns, the handler is not running and will not be called again.
  virtual void unsubscribe(const std::string& channel) = 0;
};

class TransportWrapper : public Transport {
 public:
  // REQUIRES: *target outlives the wrapper.
  explicit TransportWrapper(Transport* target) : target_(target) {}
  void send(Message m, Completion done) override { target_->send(std::move(m), std::move(done)); }
  Status subscribe(const std::string& c, Handler h) override {
    return target_->subscribe(c, std::move(h));
  }
  void unsubscribe(const std::string& c) override { target_->unsubscribe(c); }
  Transport* target() const { return target_; }

 private:
  Transport* target_;
};

}  // namespace saga

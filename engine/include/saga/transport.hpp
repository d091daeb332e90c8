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

// Settles one delivered message, once: ack() when its effect is durable (the decision that
// consumed it committed, the participant's transaction committed) or when it needs nothing;
// dead_letter(reason) when it can never be processed (it goes to the dead-letter topic with
// the reason). A message never settled is delivered again when its channel is subscribed again
// (after a restart), and a broker's consumer offset never moves past it.
class Ack {
 public:
  using Fn = std::function<void(const std::string& dead_letter_reason)>;
  Ack() = default;  // settles nothing (a copy delivered by a test harness)
  explicit Ack(Fn fn) : fn_(std::move(fn)) {}
  void operator()() const {
    if (fn_) fn_("");
  }
  void dead_letter(const std::string& reason) const {
    if (fn_) fn_(reason.empty() ? "unprocessable" : reason);
  }

 private:
  Fn fn_;
};

class Transport {
 public:
  using Handler = std::function<void(Message, Ack)>;
  using Completion = std::function<void(Status)>;

  Transport() = default;
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;
  virtual ~Transport() = default;

  // `done` runs exactly once: Ok when the broker has the message, an error otherwise
  // (error.retriable() says whether sending again can help).
  virtual void send(Message message, Completion done) = 0;
  // Delivers every message addressed to `channel` to `handler`, with the Ack that settles it.
  // One handler per channel.
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

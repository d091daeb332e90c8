// KafkaTransport: the Transport on a Kafka cluster, through librdkafka (docs/protocol.md).
//
//   channel "inventory" (a participant)   -> topic "inventory.commands"
//   channel "orchestrator.replies" (a dot) -> topic "orchestrator.replies"
//   record key = saga id (one saga's messages stay in order), value = the JSON envelope,
//   headers saga-kind, saga-type, saga-id, saga-command-id, saga-reply-to, traceparent.
//
// Producer: idempotent, acks=all; send()'s completion runs on the delivery report. Consumers:
// one per subscribed channel (group "<group_prefix>.<channel>" unless group.id is given), or
// with Options::one_consumer one for all channels. Offsets stored only for settled messages
// and only in order per partition, so a message whose effect is not durable is delivered
// again after a restart. Messages that cannot be processed (not JSON, not an envelope, over the
// size limit, or dead-lettered by the handler) go to "<topic>.dlq" with the reason in the header
// saga-dlq-reason, and consumption goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "saga/transport.hpp"

namespace saga::kafka {

struct Options {
  // librdkafka properties, passed through untouched (bootstrap.servers, security.protocol,
  // sasl.*, ssl.*, ...), except those that run commands or load code, which are refused.
  std::map<std::string, std::string> properties;
  std::string group_prefix = "saga";
  size_t max_message_bytes = 1 << 20;  // larger records are dead letters
  // One consumer (one group member, one fetch loop and its threads) for every channel, in the
  // group the property group.id names (required then), instead of one per channel. Handlers
  // then share one thread: one that blocks holds up every channel, so a handler must not wait
  // for another channel's messages. A channel added or removed rebalances the group; what was
  // not settled comes again, as after a restart.
  bool one_consumer = false;
  // Sink for this transport's and librdkafka's log lines (never configuration values).
  std::function<void(const std::string& line)> log;
};

struct Stats {
  uint64_t produced = 0, delivery_failures = 0;
  uint64_t consumed = 0, dead_letters = 0;
  // Per subscribed channel: time from each record's timestamp to its delivery, summed (ms),
  // and the number of records measured. Their ratio is how far behind the consumer reads.
  struct Lag {
    uint64_t ms_sum = 0, samples = 0;
  };
  std::map<std::string, Lag> lag;
  size_t consumers = 0;  // librdkafka consumer instances (each a group member with threads)
};

// The topic a channel's messages travel on.
std::string topic_of(const std::string& channel);
// Refuses properties that run commands or load code, and debug contexts that print secrets.
Status check_properties(const std::map<std::string, std::string>& properties);

class KafkaTransport : public Transport {
 public:
  static Result<std::unique_ptr<KafkaTransport>> open(Options options);
  // Stops the consumers and waits up to 10 s for the producer's queue to drain; sends still
  // queued then complete with an error. REQUIRES: whoever holds its Acks (engine,
  // participants) is gone first.
  ~KafkaTransport() override;

  void send(Message message, Completion done) override;
  Status subscribe(const std::string& channel, Handler handler) override;
  // Once it returns the channel's handler is not running and is not called again.
  // REQUIRES: not called from that channel's handler when the channel is its consumer's last
  // (the consumer's thread is joined).
  void unsubscribe(const std::string& channel) override;

  // Waits until every message sent so far has its delivery report, or `timeout` passes.
  Status flush(Duration timeout);
  // Waits until every subscribed channel's consumer has joined its group and holds its
  // partitions (a group join takes seconds: the broker waits for more members). With
  // one_consumer, channels subscribed while a join is under way may be answered by the next
  // rebalance: with auto.offset.reset=latest, subscribe every channel before producing.
  Status wait_ready(Duration timeout);
  Stats stats() const;

  struct Impl;

 private:
  explicit KafkaTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace saga::kafka

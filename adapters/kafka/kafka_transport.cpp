#include "saga/kafka_transport.hpp"

#include <librdkafka/rdkafka.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

namespace saga::kafka {

namespace {

// Below librdkafka's default message.max.bytes (1,000,000), with room for the headers.
constexpr size_t kMaxDeadLetterBytes = 900 * 1000;

// Properties that make librdkafka run a program or load a library into this process.
constexpr const char* kForbidden[] = {"sasl.kerberos.kinit.cmd", "plugin.library.paths",
                                      "ssl.engine.location", "ssl.providers"};

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

void add_header(rd_kafka_headers_t* h, const char* name, const std::string& value) {
  if (!value.empty()) rd_kafka_header_add(h, name, -1, value.data(), value.size());
}

}  // namespace

std::string topic_of(const std::string& channel) {
  return channel.find('.') == std::string::npos ? channel + ".commands" : channel;
}

Status check_properties(const std::map<std::string, std::string>& properties) {
  for (const auto& [key, value] : properties) {
    for (const char* f : kForbidden) {
      if (key == f)
        return Status::InvalidArgument("kafka property '" + key +
                                       "' is refused: it runs a command or loads code into "
                                       "this process");
    }
    if (key == "debug" &&
        (value.find("conf") != std::string::npos || value.find("all") != std::string::npos)) {
      return Status::InvalidArgument(
          "kafka property 'debug' must not include 'conf' or 'all': librdkafka then logs "
          "configuration values, secrets included");
    }
  }
  return Status::Ok();
}

struct Consumer;

// What librdkafka's callbacks get as their opaque: the transport, and the consumer if any.
struct ClientContext {
  KafkaTransport::Impl* impl;
  Consumer* consumer;
};

struct KafkaTransport::Impl {
  ClientContext producer_ctx{this, nullptr};
  Options opts;
  KafkaPtr producer;
  std::thread poller;
  std::atomic<bool> stopping{false};
  std::mutex changes_mu;  // one subscribe or unsubscribe at a time
  std::mutex mu;
  // Consumers by consumer_key(), and the channels subscribed.
  std::unordered_map<std::string, std::shared_ptr<Consumer>> consumers;
  std::set<std::string> subscribed;
  std::atomic<uint64_t> produced{0}, delivery_failures{0}, consumed{0}, dead{0};
  std::mutex log_mu;
  std::set<std::string> logged;  // lines already logged (bounded: forgotten when full)

  void log(const std::string& line) {
    if (opts.log) opts.log(line);
  }
  // The consumer a channel is on: its own, or with one_consumer the one for all.
  std::string consumer_key(const std::string& channel) const {
    return opts.one_consumer ? std::string() : channel;
  }
  void log_once(const std::string& line) {
    {
      std::lock_guard l(log_mu);
      if (logged.size() >= 1000) logged.clear();  // lines carry ids: never grow without bound
      if (!logged.insert(line).second) return;
    }
    log(line);
  }
  Result<rd_kafka_conf_t*> conf(ClientContext* ctx, const std::string& group);
  // Produces one record; `done` runs on its delivery report.
  void produce(const std::string& topic, const std::string& key, const std::string& value,
               rd_kafka_headers_t* headers, Completion done);
  void dead_letter(const std::shared_ptr<Consumer>& consumer, const std::string& topic,
                   int32_t partition, int64_t offset, uint64_t generation, const std::string& key,
                   const std::string& value, const std::string& reason);
  void close(const std::shared_ptr<Consumer>& consumer);
};

// One consumer of one group: its poll thread, the channels it serves (one topic each), and
// per assigned partition the offsets delivered but not settled.
struct Consumer : std::enable_shared_from_this<Consumer> {
  KafkaTransport::Impl* impl = nullptr;
  ClientContext ctx{nullptr, this};
  std::string group;
  KafkaPtr rk;
  std::thread thread;
  std::atomic<bool> stop{false};

  struct Channel {
    std::string name;
    Transport::Handler handler;
    // Record timestamp to delivery, summed over delivered messages: how far behind it reads.
    std::atomic<uint64_t> lag_ms_sum{0}, lag_samples{0};
  };
  // Held by the poll thread while it delivers: once a channel is removed (under mu), taking
  // it once means that channel's handler is not running and will not run again.
  std::mutex dispatch_mu;

  // One assignment of one partition: acks of messages delivered under an earlier assignment
  // (before a rebalance took the partition away) store nothing.
  struct Offsets {
    uint64_t generation = 0;
    std::set<int64_t> pending;
    int64_t high = -1;    // one past the highest settled offset
    int64_t stored = -1;  // the offset last stored (the next one to consume)
  };
  using Key = std::pair<std::string, int32_t>;  // topic, partition
  std::mutex mu;
  std::unordered_map<std::string, std::shared_ptr<Channel>> channels;  // by topic
  std::condition_variable assigned_cv;
  // The group has answered the current subscription with an assignment (possibly empty,
  // when the group has more members than partitions).
  bool ready = false;
  bool closed = false;
  uint64_t generations = 0;
  std::map<Key, Offsets> partitions;

  // The current assignment of a partition, a new one if it has none. REQUIRES: mu held.
  Offsets& assignment(const Key& key) {
    Offsets& p = partitions[key];
    if (p.generation == 0) p.generation = ++generations;
    return p;
  }

  // The topics of its channels. REQUIRES: mu held.
  std::vector<std::string> topics() const {
    std::vector<std::string> out;
    for (const auto& [topic, channel] : channels) out.push_back(topic);
    return out;
  }

  // Makes `topics` the subscription (a change rebalances the group).
  rd_kafka_resp_err_t subscribe_to(const std::vector<std::string>& topics) {
    rd_kafka_topic_partition_list_t* list =
        rd_kafka_topic_partition_list_new(static_cast<int>(topics.size()));
    for (const auto& t : topics)
      rd_kafka_topic_partition_list_add(list, t.c_str(), RD_KAFKA_PARTITION_UA);
    bool was;
    {
      std::lock_guard l(mu);  // before: the assignment may come before subscribe returns
      was = std::exchange(ready, false);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk.get(), list);
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::lock_guard l(mu);
      ready = was;
    }
    return e;
  }

  // Runs inside rd_kafka_consumer_poll() on this consumer's thread.
  void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list) {
    const bool cooperative = std::string(rd_kafka_rebalance_protocol(rk.get())) == "COOPERATIVE";
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      if (cooperative) {
        rd_kafka_error_t* e = rd_kafka_incremental_assign(rk.get(), list);
        if (e) rd_kafka_error_destroy(e);
      } else {
        rd_kafka_assign(rk.get(), list);
      }
      // A subscription changed during a rebalance waits for it: this assignment may answer
      // the one before. Ready only when the group has the topics of every channel.
      std::set<std::string> subscription;
      rd_kafka_topic_partition_list_t* current = nullptr;
      if (rd_kafka_subscription(rk.get(), &current) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < current->cnt; ++i) subscription.insert(current->elems[i].topic);
        rd_kafka_topic_partition_list_destroy(current);
      }
      std::lock_guard l(mu);
      for (int i = 0; i < list->cnt; ++i) {
        const Key key{list->elems[i].topic, list->elems[i].partition};
        partitions.erase(key);
        assignment(key);
      }
      ready = subscription.size() == channels.size() &&
              std::all_of(channels.begin(), channels.end(),
                          [&](const auto& c) { return subscription.count(c.first) > 0; });
      assigned_cv.notify_all();
      return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
      // Anything else: librdkafka asks for everything to be unassigned.
      {
        std::lock_guard l(mu);
        partitions.clear();
        ready = false;
      }
      rd_kafka_assign(rk.get(), nullptr);
      return;
    }
    {
      // Revoked: their messages in flight go to the next owner; forget what was pending.
      std::lock_guard l(mu);
      for (int i = 0; i < list->cnt; ++i)
        partitions.erase(Key{list->elems[i].topic, list->elems[i].partition});
      ready = false;  // a rejoin follows
    }
    if (cooperative) {
      rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk.get(), list);
      if (e) rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk.get(), nullptr);
    }
  }

  void settle(const Key& key, int64_t offset, uint64_t generation) {
    std::lock_guard l(mu);
    if (closed) return;
    auto it = partitions.find(key);
    if (it == partitions.end() || it->second.generation != generation) return;
    Offsets& p = it->second;
    p.pending.erase(offset);
    p.high = std::max(p.high, offset + 1);
    // Never past a message still being processed: the first pending one is consumed again.
    const int64_t next = p.pending.empty() ? p.high : *p.pending.begin();
    if (next <= p.stored) return;
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, key.first.c_str(), key.second)->offset = next;
    if (rd_kafka_offsets_store(rk.get(), list) == RD_KAFKA_RESP_ERR_NO_ERROR) p.stored = next;
    rd_kafka_topic_partition_list_destroy(list);
  }

  // REQUIRES: dispatch_mu held.
  void deliver(const rd_kafka_message_t* m) {
    const std::string topic = rd_kafka_topic_name(m->rkt);
    Key key{topic, m->partition};
    const int64_t offset = m->offset;
    std::shared_ptr<Channel> found;
    uint64_t generation;
    {
      std::lock_guard l(mu);
      Offsets& p = assignment(key);
      p.pending.insert(offset);
      generation = p.generation;
      auto it = channels.find(topic);
      // Its channel just left: never settled, this offset holds back the partition's stored
      // offset until the partition is assigned again, and then it comes again.
      if (it == channels.end()) return;
      found = it->second;
    }
    Channel& channel = *found;
    impl->consumed++;
    if (const int64_t at = rd_kafka_message_timestamp(m, nullptr); at > 0) {
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      channel.lag_ms_sum += static_cast<uint64_t>(std::max<int64_t>(0, now - at));
      channel.lag_samples++;
    }
    std::string value(m->payload ? static_cast<const char*>(m->payload) : "", m->len);
    std::string record_key(m->key ? static_cast<const char*>(m->key) : "", m->key_len);
    std::weak_ptr<Consumer> weak = weak_from_this();
    const size_t size = m->len + m->key_len;
    const bool too_big = size > impl->opts.max_message_bytes;
    Ack ack([weak, key, offset, generation, record_key,
             value = too_big ? std::string() : value](const std::string& reason) {
      auto self = weak.lock();
      if (!self) return;
      if (reason.empty()) {
        self->settle(key, offset, generation);
      } else {
        self->impl->dead_letter(self, key.first, key.second, offset, generation, record_key, value,
                                reason);
      }
    });
    if (too_big) {
      return ack.dead_letter("record of " + std::to_string(size) + " bytes exceeds the limit of " +
                             std::to_string(impl->opts.max_message_bytes));
    }
    auto msg = decode_json(value);
    if (!msg.ok()) return ack.dead_letter("not a saga message: " + msg.status().message());
    msg->channel = channel.name;  // the topic it came on decides where it goes
    channel.handler(std::move(*msg), std::move(ack));
  }

  void run() {
    while (!stop.load()) {
      rd_kafka_message_t* m = rd_kafka_consumer_poll(rk.get(), 100);
      if (m == nullptr) continue;
      if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        std::lock_guard l(dispatch_mu);
        deliver(m);
      } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        impl->log_once("kafka consumer of group " + group + ": " + rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
    }
  }
};

namespace {

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* impl = static_cast<ClientContext*>(opaque)->impl;
  std::unique_ptr<Transport::Completion> done(static_cast<Transport::Completion*>(m->_private));
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    impl->produced++;
    if (done && *done) (*done)(Status::Ok());
  } else {
    impl->delivery_failures++;
    if (done && *done)
      (*done)(Status::Unavailable(std::string("kafka delivery to ") + rd_kafka_topic_name(m->rkt) +
                                  " failed: " + rd_kafka_err2str(m->err)));
  }
}

void on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* list,
                  void* opaque) {
  static_cast<ClientContext*>(opaque)->consumer->rebalance(err, list);
}

void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
  auto* ctx = static_cast<ClientContext*>(rd_kafka_opaque(rk));
  if (ctx != nullptr && level <= 4)  // warnings and worse
    ctx->impl->log_once(std::string("librdkafka ") + facility + ": " + text);
}

}  // namespace

Result<rd_kafka_conf_t*> KafkaTransport::Impl::conf(ClientContext* ctx, const std::string& group) {
  const bool consumer = ctx->consumer != nullptr;
  rd_kafka_conf_t* c = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(c, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK)
      return Status::InvalidArgument("kafka property '" + k + "': " + err);  // never the value
    return Status::Ok();
  };
  Status st;
  for (const auto& [k, v] : opts.properties) {
    if (consumer && (k == "enable.idempotence" || k == "acks")) continue;
    if (!consumer && k == "group.id") continue;
    if (st = set(k, v); !st.ok()) break;
  }
  if (st.ok() && consumer) {
    if (!opts.properties.count("group.id")) st = set("group.id", group);
    if (st.ok()) st = set("enable.auto.offset.store", "false");
    if (st.ok() && !opts.properties.count("auto.offset.reset"))
      st = set("auto.offset.reset", "earliest");
    // A saga step waits on a round trip: fetch soon rather than in large batches.
    if (st.ok() && !opts.properties.count("fetch.wait.max.ms")) st = set("fetch.wait.max.ms", "1");
  } else if (st.ok()) {
    st = set("enable.idempotence", "true");
    if (st.ok()) st = set("acks", "all");
    if (st.ok() && !opts.properties.count("linger.ms")) st = set("linger.ms", "1");
    rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
  }
  if (!st.ok()) {
    rd_kafka_conf_destroy(c);
    return st;
  }
  rd_kafka_conf_set_opaque(c, ctx);
  rd_kafka_conf_set_log_cb(c, on_log);
  return c;
}

void KafkaTransport::Impl::produce(const std::string& topic, const std::string& key,
                                   const std::string& value, rd_kafka_headers_t* headers,
                                   Completion done) {
  auto* ctx = new Completion(std::move(done));
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                        RD_KAFKA_V_KEY(const_cast<char*>(key.data()), key.size()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
                        RD_KAFKA_V_OPAQUE(ctx), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(headers);  // not taken over on failure
    std::unique_ptr<Completion> owned(ctx);
    delivery_failures++;
    if (*owned)
      (*owned)(Status::Unavailable("kafka producer refused a record for " + topic + ": " +
                                   rd_kafka_err2str(err)));
  }
}

void KafkaTransport::Impl::dead_letter(const std::shared_ptr<Consumer>& consumer,
                                       const std::string& topic, int32_t partition, int64_t offset,
                                       uint64_t generation, const std::string& key,
                                       const std::string& value, const std::string& reason) {
  rd_kafka_headers_t* h = rd_kafka_headers_new(3);
  add_header(h, "saga-dlq-reason", reason);
  add_header(h, "saga-dlq-source",
             topic + "/" + std::to_string(partition) + "/" + std::to_string(offset));
  log_once("dead letter from " + topic + ": " + reason);
  std::weak_ptr<Consumer> weak = consumer;
  // Settled only once the dead-letter topic has it: otherwise it comes again after a restart.
  // A record near the size limit would not fit beside the headers: keep its head.
  const bool cut = key.size() + value.size() > kMaxDeadLetterBytes;
  if (cut) add_header(h, "saga-dlq-truncated-from", std::to_string(value.size()));
  produce(topic + ".dlq", key.substr(0, 1024), cut ? value.substr(0, 64 << 10) : value, h,
          [this, weak, key = Consumer::Key{topic, partition}, offset, generation](Status st) {
            auto self = weak.lock();
            if (!self) return;
            if (st.ok()) {
              dead++;
              self->settle(key, offset, generation);
            } else {  // not settled: it comes again after a restart
              log("could not write a dead letter: " + st.message());
            }
          });
}

void KafkaTransport::Impl::close(const std::shared_ptr<Consumer>& c) {
  c->stop = true;
  c->thread.join();  // no handler is running and none will run again
  {
    std::lock_guard l(c->mu);
    c->closed = true;  // late acks store nothing: their messages come again
  }
  // Commit the offsets stored so far and leave the group, but not forever: with the broker
  // gone a plain consumer_close() waits for the coordinator without end.
  rd_kafka_queue_t* q = rd_kafka_queue_new(c->rk.get());
  if (rd_kafka_error_t* e = rd_kafka_consumer_close_queue(c->rk.get(), q)) {
    rd_kafka_error_destroy(e);
  } else {
    // Served as events: prefetched messages forwarded here cannot be served as callbacks
    // (librdkafka asserts), and the revoke arrives as a rebalance event.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!rd_kafka_consumer_closed(c->rk.get()) && std::chrono::steady_clock::now() < until) {
      rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 100);
      if (ev == nullptr) continue;
      if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_REBALANCE)
        c->rebalance(rd_kafka_event_error(ev), rd_kafka_event_topic_partition_list(ev));
      rd_kafka_event_destroy(ev);
    }
  }
  rd_kafka_queue_destroy(q);
  if (!rd_kafka_consumer_closed(c->rk.get()))
    log("kafka consumer of group " + c->group + " did not close within 10 s (broker away?)");
  rd_kafka_destroy_flags(c->rk.release(), RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

KafkaTransport::KafkaTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<KafkaTransport>> KafkaTransport::open(Options options) {
  if (Status st = check_properties(options.properties); !st.ok()) return st;
  if (!options.properties.count("bootstrap.servers"))
    return Status::InvalidArgument("kafka property 'bootstrap.servers' is required");
  if (options.one_consumer && !options.properties.count("group.id"))
    return Status::InvalidArgument(
        "one consumer for all channels needs the kafka property "
        "'group.id' (the group it joins)");
  auto impl = std::make_unique<Impl>();
  impl->opts = std::move(options);
  auto c = impl->conf(&impl->producer_ctx, "");
  if (!c.ok()) return c.status();
  char err[512];
  impl->producer.reset(rd_kafka_new(RD_KAFKA_PRODUCER, *c, err, sizeof err));
  if (!impl->producer) {
    rd_kafka_conf_destroy(*c);
    return Status::InvalidArgument(std::string("kafka producer: ") + err);
  }
  // Connect now rather than on the first send (best effort: the broker may be down).
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(impl->producer.get(), 1, nullptr, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
    rd_kafka_metadata_destroy(md);
  Impl* raw = impl.get();
  impl->poller = std::thread([raw] {
    while (!raw->stopping.load()) rd_kafka_poll(raw->producer.get(), 100);
  });
  return std::unique_ptr<KafkaTransport>(new KafkaTransport(std::move(impl)));
}

KafkaTransport::~KafkaTransport() {
  std::unordered_map<std::string, std::shared_ptr<Consumer>> consumers;
  {
    std::lock_guard l(impl_->mu);
    consumers.swap(impl_->consumers);
    impl_->subscribed.clear();
  }
  for (const auto& [group, c] : consumers) impl_->close(c);
  if (!flush(Duration(10000)).ok()) {
    // Every send is still answered: what could not be delivered fails with a purge error.
    rd_kafka_purge(impl_->producer.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    (void)flush(Duration(1000));
  }
  impl_->stopping = true;
  impl_->poller.join();
}

void KafkaTransport::send(Message message, Completion done) {
  const std::string topic = topic_of(message.channel);
  rd_kafka_headers_t* h = rd_kafka_headers_new(6);
  add_header(h, "saga-kind", message.kind == Message::Kind::kCommand ? "command" : "reply");
  add_header(h, "saga-type", message.type);
  add_header(h, "saga-id", message.saga_id);
  add_header(h, "saga-command-id", message.command_id);
  add_header(h, "saga-reply-to", message.reply_to);
  add_header(h, "traceparent", message.traceparent);
  impl_->produce(topic, message.saga_id, encode_json(message), h, std::move(done));
}

Status KafkaTransport::subscribe(const std::string& channel, Handler handler) {
  std::lock_guard changes(impl_->changes_mu);
  const auto& props = impl_->opts.properties;
  const std::string group =
      props.count("group.id") ? props.at("group.id") : impl_->opts.group_prefix + "." + channel;
  const std::string key = impl_->consumer_key(channel);
  std::shared_ptr<Consumer> c;
  {
    std::lock_guard l(impl_->mu);
    if (impl_->subscribed.count(channel))
      return Status::AlreadyExists("channel '" + channel + "' already has a handler");
    if (auto it = impl_->consumers.find(key); it != impl_->consumers.end()) c = it->second;
  }
  const std::string topic = topic_of(channel);
  auto ch = std::make_shared<Consumer::Channel>();
  ch->name = channel;
  ch->handler = std::move(handler);
  const bool fresh = c == nullptr;
  if (fresh) {
    c = std::make_shared<Consumer>();
    c->impl = impl_.get();
    c->ctx.impl = impl_.get();
    c->group = group;
    auto conf = impl_->conf(&c->ctx, group);
    if (!conf.ok()) return conf.status();
    rd_kafka_conf_set_rebalance_cb(*conf, on_rebalance);
    char err[512];
    c->rk.reset(rd_kafka_new(RD_KAFKA_CONSUMER, *conf, err, sizeof err));
    if (!c->rk) {
      rd_kafka_conf_destroy(*conf);
      return Status::InvalidArgument(std::string("kafka consumer: ") + err);
    }
    rd_kafka_poll_set_consumer(c->rk.get());
  }
  std::vector<std::string> topics;
  {
    std::lock_guard m(c->mu);
    if (auto it = c->channels.find(topic); it != c->channels.end())
      return Status::AlreadyExists("topic '" + topic + "' is already consumed for channel '" +
                                   it->second->name + "'");
    c->channels.emplace(topic, ch);
    topics = c->topics();
  }
  if (rd_kafka_resp_err_t e = c->subscribe_to(topics); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    std::lock_guard m(c->mu);
    c->channels.erase(topic);
    return Status::Unavailable("kafka subscribe to " + topic + ": " + rd_kafka_err2str(e));
  }
  if (fresh) c->thread = std::thread([raw = c.get()] { raw->run(); });
  std::lock_guard l(impl_->mu);
  if (fresh) impl_->consumers.emplace(key, c);
  impl_->subscribed.insert(channel);
  return Status::Ok();
}

void KafkaTransport::unsubscribe(const std::string& channel) {
  std::shared_ptr<Consumer> c;
  std::shared_ptr<Consumer::Channel> removed;
  bool last = false;
  {
    std::lock_guard changes(impl_->changes_mu);
    const std::string key = impl_->consumer_key(channel);
    {
      std::lock_guard l(impl_->mu);
      if (impl_->subscribed.erase(channel) == 0) return;
      c = impl_->consumers.at(key);
    }
    std::vector<std::string> topics;
    {
      std::lock_guard m(c->mu);
      auto it = c->channels.find(topic_of(channel));
      removed = std::move(it->second);
      c->channels.erase(it);
      topics = c->topics();
    }
    if (topics.empty()) {
      last = true;
      std::lock_guard l(impl_->mu);
      impl_->consumers.erase(key);
    } else if (rd_kafka_resp_err_t e = c->subscribe_to(topics); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      // The others go on; this topic's partitions go to the group's other members.
      impl_->log("kafka resubscribe of group " + c->group + ": " + rd_kafka_err2str(e));
    }
  }
  if (last) {
    impl_->close(c);  // joins the poll thread: no handler runs any more
  } else if (std::this_thread::get_id() != c->thread.get_id()) {
    std::lock_guard d(c->dispatch_mu);  // a delivery to the removed channel has ended
  }
  removed.reset();  // the handler and what it holds go outside every lock
}

Status KafkaTransport::flush(Duration timeout) {
  rd_kafka_resp_err_t e = rd_kafka_flush(impl_->producer.get(), static_cast<int>(timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
    return Status::Unavailable(std::to_string(rd_kafka_outq_len(impl_->producer.get())) +
                               " kafka records still undelivered: " + rd_kafka_err2str(e));
  return Status::Ok();
}

Status KafkaTransport::wait_ready(Duration timeout) {
  std::vector<std::shared_ptr<Consumer>> consumers;
  {
    std::lock_guard l(impl_->mu);
    for (const auto& [group, c] : impl_->consumers) consumers.push_back(c);
  }
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (const auto& c : consumers) {
    std::unique_lock l(c->mu);
    if (!c->assigned_cv.wait_until(l, until, [&] { return c->ready; }))
      return Status::Unavailable("kafka consumer of group " + c->group +
                                 " has no partitions yet (is the broker up?)");
  }
  return Status::Ok();
}

Stats KafkaTransport::stats() const {
  Stats s{impl_->produced.load(), impl_->delivery_failures.load(), impl_->consumed.load(),
          impl_->dead.load()};
  std::lock_guard l(impl_->mu);
  s.consumers = impl_->consumers.size();
  for (const auto& [key, c] : impl_->consumers) {
    std::lock_guard m(c->mu);
    for (const auto& [topic, ch] : c->channels)
      s.lag[ch->name] = {ch->lag_ms_sum.load(), ch->lag_samples.load()};
  }
  return s;
}

}  // namespace saga::kafka

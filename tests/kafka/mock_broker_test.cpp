// saga-mock-broker as a process (label `kafka`): the bootstrap line, the Kafka protocol with
// the real librdkafka client on 127.0.0.1, steering over stdin, SIGTERM.
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>

#include "testutil/child_process.hpp"
#include "testutil/testutil.hpp"

namespace saga {
namespace {

using namespace std::chrono_literals;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;

KafkaPtr client(rd_kafka_type_t type, const std::string& bootstrap,
                std::initializer_list<std::pair<const char*, const char*>> props = {}) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap.c_str(), err, sizeof err);
  for (const auto& [k, v] : props)
    EXPECT_EQ(rd_kafka_conf_set(conf, k, v, err, sizeof err), 0) << err;
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  EXPECT_NE(rk, nullptr) << err;
  return KafkaPtr(rk);
}

class MockBroker : public ::testing::Test {
 protected:
  void SetUp() override {
    log = testutil::temp_path("broker.log");
    broker = std::make_unique<testutil::ChildProcess>(
        std::vector<std::string>{SAGA_MOCK_BROKER, "--topic", "orders", "--partitions", "3"}, log,
        true);
    auto line = testutil::wait_for_line(log, "bootstrap=", 10s);
    ASSERT_TRUE(line.has_value()) << "no bootstrap line in " << log;
    bootstrap = line->substr(std::string("bootstrap=").size());
  }
  void TearDown() override {
    broker->kill(SIGTERM);
    EXPECT_EQ(broker->wait(10s), 0);
  }
  // Produces one message and waits for its delivery report; returns its error.
  rd_kafka_resp_err_t produce(rd_kafka_t* p, const std::string& value,
                              std::chrono::milliseconds limit) {
    rd_kafka_resp_err_t e =
        rd_kafka_producev(p, RD_KAFKA_V_TOPIC("orders"), RD_KAFKA_V_KEY("k", 1),
                          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e) return e;
    return rd_kafka_flush(p, static_cast<int>(limit.count()));
  }

  std::string log, bootstrap;
  std::unique_ptr<testutil::ChildProcess> broker;
};

TEST_F(MockBroker, ServesKafkaOnLoopbackWithTheTopicsItWasToldToCreate) {
  EXPECT_EQ(bootstrap.rfind("127.0.0.1:", 0), 0u) << bootstrap;
  auto producer = client(RD_KAFKA_PRODUCER, bootstrap);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* topic = rd_kafka_topic_new(producer.get(), "orders", nullptr);
  ASSERT_EQ(rd_kafka_metadata(producer.get(), 0, topic, &md, 5000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(md->topic_cnt, 1);
  EXPECT_EQ(md->topics[0].partition_cnt, 3);
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(topic);

  ASSERT_EQ(produce(producer.get(), "hello", 10s), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto consumer =
      client(RD_KAFKA_CONSUMER, bootstrap, {{"group.id", "t"}, {"auto.offset.reset", "earliest"}});
  rd_kafka_poll_set_consumer(consumer.get());
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, "orders", RD_KAFKA_PARTITION_UA);
  ASSERT_EQ(rd_kafka_subscribe(consumer.get(), topics), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(topics);
  std::string got;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer.get(), 100);
    if (m && !m->err) got.assign(static_cast<const char*>(m->payload), m->len);
    if (m) rd_kafka_message_destroy(m);
  }
  EXPECT_EQ(got, "hello");
  rd_kafka_consumer_close(consumer.get());
}

TEST_F(MockBroker, BrokerSetDownHoldsDeliveriesUntilItIsUpAgain) {
  auto producer = client(RD_KAFKA_PRODUCER, bootstrap, {{"enable.idempotence", "true"}});
  ASSERT_EQ(produce(producer.get(), "before", 10s), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(broker->write_line("down -1"));
  ASSERT_TRUE(testutil::wait_for_line(log, "ok down -1", 5s).has_value());
  EXPECT_EQ(produce(producer.get(), "while down", 1s), RD_KAFKA_RESP_ERR__TIMED_OUT);
  ASSERT_TRUE(broker->write_line("up -1"));
  EXPECT_EQ(rd_kafka_flush(producer.get(), 20000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

TEST_F(MockBroker, BadSteeringLineIsAnsweredWithAnErrorAndTheBrokerGoesOn) {
  ASSERT_TRUE(broker->write_line("explode now"));
  auto answer = testutil::wait_for_line(log, "error", 5s);
  ASSERT_TRUE(answer.has_value());
  EXPECT_NE(answer->find("unknown command 'explode'"), std::string::npos) << *answer;
  ASSERT_TRUE(broker->write_line("errors 0 7"));  // COUNT missing
  EXPECT_TRUE(testutil::wait_for_line(log, "error errors: expected", 5s).has_value());
  auto producer = client(RD_KAFKA_PRODUCER, bootstrap);
  EXPECT_EQ(produce(producer.get(), "still here", 10s), RD_KAFKA_RESP_ERR_NO_ERROR);
}

}  // namespace
}  // namespace saga

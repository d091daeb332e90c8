// kafka-ledger-participants: the crash test's three ledger participants (inventory, payment,
// orders, each on its own SQLite file in DIR) as one process over Kafka, for the Kafka crash
// test to kill. Prints "ready" once its consumers hold their partitions; SIGTERM stops it.
#include <signal.h>

#include <cstdio>
#include <string>

#include "saga/kafka_transport.hpp"
#include "testutil/ledger_system.hpp"

using namespace saga;

int main(int argc, char** argv) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  if (argc != 4 || std::string(argv[2]) != "--bootstrap") {
    std::fprintf(stderr, "usage: kafka-ledger-participants DIR --bootstrap HOST:PORT\n");
    return 2;
  }
  auto bus = kafka::KafkaTransport::open(
      {.properties = {{"bootstrap.servers", argv[3]}, {"session.timeout.ms", "6000"}}});
  if (!bus.ok()) {
    std::fprintf(stderr, "%s\n", bus.status().to_string().c_str());
    return 3;
  }
  {
    testutil::LedgerParticipants participants(**bus, testutil::OrderSystemFiles::in(argv[1]), {});
    Status st = participants.start();
    if (st.ok()) st = (*bus)->wait_ready(Duration(60000));
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.to_string().c_str());
      return 3;
    }
    std::printf("ready\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
  }
  return 0;
}

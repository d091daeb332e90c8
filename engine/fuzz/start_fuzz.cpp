// Fuzzes the engine's edges: a start request (definition, id, input, traceparent) and then a
// reply, both from fuzzer bytes, on a manual-mode engine. Every call is answered exactly once,
// nothing crashes or throws, and the state stays the fold of the stored log.
//
// Input: fields separated by '\x1f': definition, saga id, input, traceparent, then the reply
// envelope (JSON, see docs/wire-format.md).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "saga/engine.hpp"
#include "saga/memory.hpp"
#include "saga/state_machine.hpp"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

const saga::Definition& definition() {
  static const saga::Definition def =
      saga::Definition::Builder("PlaceOrder")
          .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
          .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
          .step("confirm_order", "orders.ConfirmOrder")
          .retry({saga::RetryPolicy::kForever, saga::Duration(100), 2.0, saga::Duration(1000), 0.2})
          .build()
          .value();
  return def;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace saga;
  std::vector<std::string> f(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0x1f && f.size() < 5) {
      f.emplace_back();
    } else {
      f.back().push_back(static_cast<char>(data[i]));
    }
  }
  f.resize(5);
  MemoryStore store;
  MemoryTransport bus;
  FakeClock clock;
  EngineOptions opts;
  opts.manual = true;
  opts.definitions = {definition()};
  opts.log = [](const std::string&) {};
  auto engine = Engine::open(opts, store, bus, clock);
  require(engine.ok());
  int answers = 0;
  (*engine)->start({.definition = f[0], .saga_id = f[1], .input = f[2], .traceparent = f[3]},
                   [&](Result<SagaOutcome>) { ++answers; });
  (*engine)->poll();
  auto reply = decode_json(f[4]);
  if (reply.ok()) {
    reply->channel = opts.reply_channel;
    bus.send(*reply, [](Status) {});
  }
  (*engine)->poll();
  clock.advance(Duration(60000));
  (*engine)->poll();
  auto events = store.events(f[1]);
  if (events.ok() && !events->empty()) {
    auto live = (*engine)->state(f[1]);
    require(live.ok() && *live == replay(f[1], *events));
  }
  require((*engine)->close().ok());
  require(answers == 1);
  return 0;
}

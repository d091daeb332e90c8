// Definition -> text -> Definition.
#include <gtest/gtest.h>

#include <random>

#include "dsl_test_util.hpp"
#include "saga/dsl.hpp"
#include "testutil/testutil.hpp"

namespace saga::dsl {
namespace {

TEST(DslPrinter, PrintsTheCanonicalSample) {
  EXPECT_EQ(print(test::place_order()), R"(saga PlaceOrder version 1 {
  timeout 2s
  retry 3 backoff 50ms..1s

  step reserve_inventory {
    command    inventory.ReserveItems
    compensate inventory.ReleaseReservation
  }

  step charge_payment {
    command    payment.ChargeCard
    compensate payment.RefundPayment
  }

  step confirm_order {
    command    orders.ConfirmOrder
    retry forever
  }
}
)");
}

TEST(DslPrinter, PrintsParallelBlocksAndOnlyWhatDiffersFromTheDefaults) {
  Definition::Builder b("Trip", 4);
  b.step("hold", "pay.Hold", "pay.Release");
  StepDef flight = b.make_step("flight", "air.Book", "air.Cancel");
  flight.timeout = Duration(90'000);
  flight.compensation_retry.max_attempts = RetryPolicy::kForever;
  b.parallel({flight, b.make_step("hotel", "hotel.Book", "hotel.Cancel")});
  b.step("capture", "pay.Capture")
      .retry({RetryPolicy::kForever, Duration(500), 1.5, Duration(3'600'000), 0.25});
  const Definition def = *b.build();
  EXPECT_EQ(print(def), R"(saga Trip version 4 {
  step hold {
    command    pay.Hold
    compensate pay.Release
  }

  parallel {
    step flight {
      command    air.Book
      compensate air.Cancel
      timeout 90s
      compensation retry forever
    }
    step hotel {
      command    hotel.Book
      compensate hotel.Cancel
    }
  }

  step capture {
    command    pay.Capture
    retry forever backoff 500ms..1h multiplier 1.5 jitter 0.25
  }
}
)");
}

TEST(DslPrinter, SamplesRoundTripAndPrintingIsStable) {
  for (const char* f : {"samples/place_order.saga", "samples/book_trip.saga"}) {
    const ParseResult first = parse_file(test::source_path(f));
    ASSERT_TRUE(first.ok()) << test::messages(first);
    const std::string text = print(first.definitions);
    const ParseResult second = parse(text, "printed.saga");
    ASSERT_TRUE(second.ok()) << test::messages(second) << text;
    EXPECT_EQ(second.definitions, first.definitions) << text;
    EXPECT_EQ(print(second.definitions), text);
  }
}

// A valid Definition with arbitrary values: compensatable steps in random stages, maybe a
// pivot, then retriable steps.
Definition random_definition(testutil::SeededRandom& rnd, int n) {
  auto& g = rnd.engine();
  const auto duration = [&] {
    // Mostly round values (printed with a unit), sometimes any millisecond count.
    static const int64_t units[] = {1, 1000, 60'000, 3'600'000};
    const int64_t unit = units[rnd.uniform(0, 3)];
    const int64_t max = 86'400'000 / unit;
    return Duration(std::uniform_int_distribution<int64_t>(1, max)(g) * unit);
  };
  const auto policy = [&] {
    RetryPolicy p;
    p.max_attempts = rnd.uniform(0, 4) == 0 ? RetryPolicy::kForever : rnd.uniform(1, 1000);
    p.initial_backoff = duration();
    p.max_backoff = duration();
    if (p.max_backoff < p.initial_backoff) std::swap(p.max_backoff, p.initial_backoff);
    if (rnd.uniform(0, 1)) p.multiplier = std::uniform_real_distribution<double>(1, 100)(g);
    if (rnd.uniform(0, 1)) p.jitter = std::uniform_real_distribution<double>(0, 1)(g);
    if (rnd.uniform(0, 3) == 0) p = RetryPolicy{};
    return p;
  };
  Definition d;
  d.name = "Saga" + std::to_string(n);
  d.version = rnd.uniform(1, 1'000'000);
  const int compensatable = rnd.uniform(0, 6);
  const bool pivot = compensatable == 0 || rnd.uniform(0, 1);
  const int retriable = pivot ? rnd.uniform(0, 3) : 0;
  const RetryPolicy plain_compensation = policy();  // unused by steps without one
  int stage = 0;
  for (int i = 0; i < compensatable + (pivot ? 1 : 0) + retriable; ++i) {
    StepDef s;
    s.name = "step_" + std::to_string(i);
    s.action = {"svc-" + std::to_string(i), "Do" + std::to_string(i)};
    const bool comp = i < compensatable;
    if (comp) s.compensation = CommandRef{"svc-" + std::to_string(i), "Undo"};
    if (rnd.uniform(0, 1)) s.timeout = duration();
    s.retry = policy();
    if (i > compensatable) s.retry.max_attempts = RetryPolicy::kForever;
    s.compensation_retry = comp ? policy() : plain_compensation;
    // Compensatable steps may join the stage before (a parallel block).
    const bool join = comp && i > 0 && d.steps.back().compensatable() && rnd.uniform(0, 2) == 0;
    s.stage = join ? stage : (i == 0 ? 0 : ++stage);
    d.steps.push_back(s);
  }
  return d;
}

TEST(DslPrinter, RandomDefinitionsRoundTrip) {
  testutil::SeededRandom rnd;
  for (int n = 0; n < 500; ++n) {
    const Definition def = random_definition(rnd, n);
    ASSERT_TRUE(validate(def).empty()) << check(def).to_string();
    const std::string text = print(def);
    const ParseResult r = parse(text, "random.saga");
    ASSERT_TRUE(r.ok()) << test::messages(r) << text;
    ASSERT_EQ(r.definitions.size(), 1u);
    ASSERT_EQ(r.definitions[0], def) << text;
  }
}

}  // namespace
}  // namespace saga::dsl

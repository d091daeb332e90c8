// .saga text -> Definition: a table of good files with the Definition each must give, and a
// table of bad files with the one diagnostic each must give.
#include <gtest/gtest.h>

#include <functional>

#include "dsl_test_util.hpp"
#include "saga/dsl.hpp"
#include "testutil/testutil.hpp"

namespace saga::dsl {
namespace {

using test::messages;

Duration ms(int64_t v) {
  return Duration(v);
}

struct GoodCase {
  const char* name;
  std::string text;
  std::function<std::vector<Definition>()> expected;
};

std::vector<GoodCase> good_cases() {
  return {
      {"Minimal", "saga A { step s { command a.B } }",
       [] { return std::vector{*Definition::Builder("A", 1).step("s", "a.B").build()}; }},

      {"CanonicalSample", test::read_file(test::source_path("samples/place_order.saga")),
       [] { return std::vector{test::place_order()}; }},

      {"IssueExampleWithParallelBlock", R"(
# Places an order across inventory and payment; releases stock if payment fails.
saga PlaceOrder version 2 {
  timeout 30s                       # default per-attempt timeout for every step
  retry 3 backoff 100ms..5s jitter  # default retry policy
  step reserve_inventory {
    command    inventory.ReserveItems
    compensate inventory.ReleaseReservation
  }
  parallel {
    step charge_payment { command payment.ChargeCard  compensate payment.RefundPayment  timeout 10s }
    step notify { command mail.Send compensate mail.Retract }
  }
  step confirm_order {              # the pivot: no compensation; retried until it succeeds
    command orders.ConfirmOrder
    retry forever backoff 200ms..30s
  }
}
)",
       [] {
         Definition::Builder b("PlaceOrder", 2);
         b.default_timeout(ms(30000)).default_retry({3, ms(100), 2.0, ms(5000), 0.2});
         b.step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation");
         StepDef charge =
             b.make_step("charge_payment", "payment.ChargeCard", "payment.RefundPayment");
         charge.timeout = ms(10000);
         b.parallel({charge, b.make_step("notify", "mail.Send", "mail.Retract")});
         b.step("confirm_order", "orders.ConfirmOrder")
             .retry({RetryPolicy::kForever, ms(200), 2.0, ms(30000), 0.2});
         return std::vector{*b.build()};
       }},

      {"StepRetryInheritsUnsetPartsFromTheSagaDefault", R"(
saga A {
  retry 5 backoff 1s..10s multiplier 3 jitter 0.5
  step a { command a.A  compensate a.U }
  step b { command b.B  retry forever }
  step c { command c.C  retry forever jitter 0 }
})",
       [] {
         return std::vector{*Definition::Builder("A")
                                 .default_retry({5, ms(1000), 3.0, ms(10000), 0.5})
                                 .step("a", "a.A", "a.U")
                                 .step("b", "b.B")
                                 .retry({RetryPolicy::kForever, ms(1000), 3.0, ms(10000), 0.5})
                                 .step("c", "c.C")
                                 .retry({RetryPolicy::kForever, ms(1000), 3.0, ms(10000), 0.0})
                                 .build()};
       }},

      {"OneBackoffValueIsAFixedDelay", "saga A { step a { command a.A retry 4 backoff 2s } }",
       [] {
         return std::vector{*Definition::Builder("A")
                                 .step("a", "a.A")
                                 .retry({4, ms(2000), 2.0, ms(2000), 0.2})
                                 .build()};
       }},

      {"CompensationRetryDefaultAndOverride", R"(
saga A {
  compensation retry forever backoff 1s..1m
  step a { command a.A compensate a.U }
  step b { command b.B compensate b.U  compensation retry 7 }
  step p { command p.P }
})",
       [] {
         return std::vector{*Definition::Builder("A")
                                 .default_compensation_retry(
                                     {RetryPolicy::kForever, ms(1000), 2.0, ms(60000), 0.2})
                                 .step("a", "a.A", "a.U")
                                 .step("b", "b.B", "b.U")
                                 .compensation_retry({7, ms(1000), 2.0, ms(60000), 0.2})
                                 .step("p", "p.P")
                                 .build()};
       }},

      {"DurationUnits", R"(saga A {
  step a { command a.A compensate a.U timeout 1500ms retry 2 backoff 1s..2m }
  step b { command b.B timeout 1h }
})",
       [] {
         return std::vector{*Definition::Builder("A")
                                 .step("a", "a.A", "a.U")
                                 .timeout(ms(1500))
                                 .retry({2, ms(1000), 2.0, ms(120000), 0.2})
                                 .step("b", "b.B")
                                 .timeout(ms(3600000))
                                 .build()};
       }},

      {"SeveralSagasAndVersions", R"(
saga A version 1 { step a { command a.A } }
saga A version 2 { step a { command a.A } }
saga B { step b { command b.B } })",
       [] {
         return std::vector{*Definition::Builder("A", 1).step("a", "a.A").build(),
                            *Definition::Builder("A", 2).step("a", "a.A").build(),
                            *Definition::Builder("B", 1).step("b", "b.B").build()};
       }},

      {"CrlfTabsAndComments",
       "# c\r\nsaga\tA # c\r\n{\r\n\tstep a {\t# c\r\n\t\tcommand a.A # c\r\n\t}\r\n}\r\n# end",
       [] { return std::vector{*Definition::Builder("A").step("a", "a.A").build()}; }},

      {"NamesWithDashes",
       "saga Place-Order { step reserve-stock { command stock-svc.Reserve-Items } }",
       [] {
         return std::vector{*Definition::Builder("Place-Order")
                                 .step("reserve-stock", "stock-svc.Reserve-Items")
                                 .build()};
       }},

      {"ParallelBlockOfThreeThenMore", R"(saga A {
  step first { command a.A compensate a.U }
  parallel {
    step x { command x.X compensate x.U }
    step y { command y.Y compensate y.U }
    step z { command z.Z compensate z.U }
  }
  step pivot { command p.P }
  step after { command q.Q retry forever }
})",
       [] {
         Definition::Builder b("A");
         b.step("first", "a.A", "a.U");
         b.parallel({b.make_step("x", "x.X", "x.U"), b.make_step("y", "y.Y", "y.U"),
                     b.make_step("z", "z.Z", "z.U")});
         b.step("pivot", "p.P")
             .step("after", "q.Q")
             .retry({RetryPolicy::kForever, ms(100), 2.0, ms(5000), 0.2});
         return std::vector{*b.build()};
       }},

      {"EmptyFileHasNoSagas", "  # only a comment\n", [] { return std::vector<Definition>{}; }},
  };
}

class GoodFile : public ::testing::TestWithParam<GoodCase> {};

TEST_P(GoodFile, ParsesIntoTheExpectedDefinitions) {
  const ParseResult r = parse(GetParam().text, "good.saga");
  ASSERT_TRUE(r.ok()) << messages(r);
  EXPECT_EQ(r.definitions, GetParam().expected());
}

TEST_P(GoodFile, RoundTripsThroughThePrinter) {
  const std::vector<Definition> defs = GetParam().expected();
  const std::string text = print(defs);
  const ParseResult r = parse(text, "printed.saga");
  ASSERT_TRUE(r.ok()) << messages(r) << text;
  EXPECT_EQ(r.definitions, defs) << text;
}

// Test names end in the case name: "Dsl/GoodFile.ParsesIntoTheExpectedDefinitions/Minimal".
void PrintTo(const GoodCase& c, std::ostream* os) {
  *os << c.name;
}
INSTANTIATE_TEST_SUITE_P(Dsl, GoodFile, ::testing::ValuesIn(good_cases()));

struct BadCase {
  const char* name;
  std::string text;
  int line, column;
  std::string message;
};

// A valid saga around `steps`.
std::string saga(const std::string& steps) {
  return "saga A {\n" + steps + "\n}\n";
}

std::vector<BadCase> bad_cases() {
  const std::string ok = "step a { command a.A compensate a.U }\n";
  return {
      {"MissingClosingBrace", "saga A {\n  step s { command a.B }\n", 2, 25,
       "expected '}' to close saga 'A' (opened at line 1), found end of file"},
      {"StepNotClosed", saga("step a { command a.A compensate a.U\nstep b { command b.B }"), 3, 1,
       "expected '}' to close step 'a' (opened at line 2), found 'step'"},
      {"DurationWithoutUnit", saga("step a { command a.A timeout 30 }"), 2, 30,
       "duration '30' needs a unit: ms, s, m or h"},
      {"UnknownUnit", saga("step a { command a.A timeout 30sec }"), 2, 30,
       "unknown unit 'sec' in '30sec'; use ms, s, m or h"},
      {"CompoundDuration", saga("step a { command a.A timeout 1m30s }"), 2, 30,
       "'1m30s' has more than one unit; use one, e.g. '90s' for '1m30s'"},
      {"FractionalDuration", saga("step a { command a.A timeout 1.5s }"), 2, 30,
       "'1.5s' is not a whole number of s; write '1500ms'"},
      {"TimeoutOverADay", saga("step a { command a.A timeout 48h }"), 2, 30,
       "step 'a': timeout must be positive and at most 24h [timeout-range]"},
      {"ZeroTimeout", saga("step a { command a.A timeout 0s }"), 2, 30,
       "step 'a': timeout must be positive and at most 24h [timeout-range]"},
      {"BadDefaultIsReportedOnceAtTheDefault",
       saga("timeout 25h\nstep a { command a.A compensate a.U }\nstep b { command b.B }"), 2, 9,
       "default timeout must be positive and at most 24h [timeout-range]"},
      {"RetryZero", saga("step a { command a.A retry 0 }"), 2, 28,
       "retry counts attempts, the first included: use 1 or more, or 'forever'"},
      {"TooManyAttempts", saga("step a { command a.A retry 1001 }"), 2, 22,
       "step 'a': retry attempts must be between 1 and 1000 (or forever) [retry-policy]"},
      {"BackoffRangeReversed", saga("step a { command a.A retry 3 backoff 5s..1s }"), 2, 22,
       "step 'a': retry max backoff must be at least the initial backoff and at most 24h "
       "[retry-policy]"},
      {"JitterAboveOne", saga("step a { command a.A retry 3 jitter 1.5 }"), 2, 22,
       "step 'a': retry jitter must be in [0, 1] [retry-policy]"},
      {"MultiplierBelowOne", saga("step a { command a.A retry 3 multiplier 0.5 }"), 2, 22,
       "step 'a': retry multiplier must be in [1, 100] [retry-policy]"},
      {"BadCompensationRetry",
       saga("step a { command a.A compensate a.U compensation retry 3 jitter 2 }"), 2, 37,
       "step 'a': compensation retry jitter must be in [0, 1] [retry-policy]"},
      {"NumberTooLarge", saga("step a { command a.A retry 99999999999 }"), 2, 28,
       "'99999999999' is too large"},
      {"BackoffRangeWithoutEnd", saga("step a { command a.A retry 3 backoff 1s.. }"), 2, 43,
       "expected a duration such as 5s after '..', found '}'"},
      {"MisspeltStepKeyword", saga("step a {\n  comand a.A\n}"), 3, 3,
       "unknown keyword 'comand' in step 'a'; did you mean 'command'?"},
      {"MisspeltSagaKeyword", saga("stpe a { command a.A }"), 2, 1,
       "unknown keyword 'stpe' in saga 'A'; did you mean 'step'?"},
      {"UnknownSagaKeyword", saga("describe a { command a.A }"), 2, 1,
       "unknown keyword 'describe' in saga 'A'; expected step, parallel, timeout, retry or "
       "compensation retry"},
      {"CommandOutsideStep", saga("command a.A\n" + ok), 2, 1, "'command' must be inside a step"},
      {"DefaultAfterFirstStep", saga(ok + "timeout 5s"), 3, 1,
       "saga defaults must come before the first step; move this 'timeout' up, or into a step"},
      {"BackoffWithoutRetry", saga("step a { command a.A backoff 1s }"), 2, 22,
       "'backoff' must follow 'retry', as in 'retry 3 backoff 1s..10s'"},
      {"DuplicateOption", saga("step a { command a.A timeout 1s timeout 2s }"), 2, 33,
       "step 'a' already has a timeout (line 2)"},
      {"StepWithoutCommand", saga("step a { compensate a.U }"), 2, 6, "step 'a' has no command"},
      {"DuplicateStepNames",
       saga(ok + "step a { command b.B compensate b.U }\nstep p { command p.P }"), 3, 6,
       "step 'a': another step has the same name (first at line 2) [unique-step-names]"},
      {"CompensationAfterPivot",
       saga(ok + "step p { command p.P }\nstep c { command c.C compensate c.U }"), 4, 33,
       "step 'c': comes after the pivot 'p' (no compensation: once it succeeds the saga must "
       "complete), so it would never be compensated; give 'p' a compensation, or move this step "
       "before it (if this step cannot be undone, drop its compensation and retry it forever) "
       "[compensation-after-pivot]"},
      {"SecondPivot", saga(ok + "step p { command p.P }\nstep q { command q.Q }"), 4, 6,
       "step 'q': has no compensation but 'p' is already the pivot; steps after the pivot must "
       "be retriable (retry forever) [at-most-one-pivot]"},
      {"PivotInsideParallel",
       saga("parallel {\n  step a { command a.A compensate a.U }\n  step b { command b.B }\n}"), 4,
       8,
       "step 'b': a step in a parallel block must have a compensation (the pivot and retriable "
       "steps run alone) [parallel-compensatable]"},
      {"ParallelOfOne", saga("parallel {\n" + ok + "}"), 2, 1,
       "a parallel block needs at least two steps; write a single step without 'parallel'"},
      {"EmptyParallel", saga(ok + "parallel { }"), 3, 1,
       "a parallel block needs at least two steps; this one is empty"},
      {"NestedParallel",
       saga("parallel {\n" + ok + "step b { command b.B compensate b.U }\nparallel { " + ok +
            "}\n}"),
       5, 1, "parallel blocks cannot be nested"},
      {"OptionInsideParallel",
       saga("parallel {\ntimeout 1s\n" + ok + "step b { command b.B compensate b.U }\n}"), 3, 1,
       "only steps can be inside a parallel block; put 'timeout' inside a step"},
      {"CompensationRetryWithoutCompensate", saga("step p { command p.P compensation retry 5 }"), 2,
       22, "step 'p' has a compensation retry policy but no 'compensate' command"},
      {"CompensateRetryMixup", saga("step a { command a.A compensate retry 10 }"), 2, 33,
       "expected a command after 'compensate', found 'retry'; a compensation's retry policy is "
       "set with 'compensation retry ...'"},
      {"CommandWithoutParticipant", saga("step a { command ReserveItems }"), 2, 18,
       "command 'ReserveItems' must name its participant: 'participant.ReserveItems'"},
      {"CommandWithSpaces", saga("step a { command inventory . Reserve }"), 2, 18,
       "write the command without spaces: 'inventory.Reserve'"},
      {"CommandWithTwoDots", saga("step a { command a.b.c }"), 2, 18,
       "a command is 'participant.Command', with one dot"},
      {"DuplicateSagaVersion", saga(ok) + "saga A version 1 { " + ok + "}", 5, 6,
       "saga 'A' version 1 is already defined at line 1"},
      {"SagaWithoutName", "saga { step a { command a.A } }", 1, 6,
       "expected a saga name after 'saga', found '{'"},
      {"VersionZero", "saga A version 0 { step a { command a.A } }", 1, 16,
       "version must be between 1 and 1000000 [version]"},
      {"VersionNotANumber", "saga A version two { step a { command a.A } }", 1, 16,
       "expected a version number after 'version', found 'two'"},
      {"SagaWithoutSteps", "saga A { }", 1, 6, "a saga needs at least one step [has-steps]"},
      {"StepAtTopLevel", "step a { command a.A }", 1, 1,
       "'step' must be inside a saga: saga Name version 1 { ... }"},
      {"GarbageAtTopLevel", "hello world", 1, 1, "expected 'saga', found 'hello'"},
      {"QuotedCommand", saga("step a { command \"a.A\" }"), 2, 18,
       "unexpected quote; names and commands are written without quotes"},
      {"ColonAfterOption", saga("step a { command a.A timeout: 3s }"), 2, 29,
       "unexpected ':'; write options as 'timeout 30s', without ':'"},
      {"NegativeDuration", saga("step a { command a.A timeout -3s }"), 2, 30,
       "unexpected '-'; numbers and durations cannot be negative"},
      {"SlashComment", saga("// a comment\n" + ok), 2, 1,
       "unexpected '//'; comments start with '#'"},
      {"NulBytes", saga(std::string("step a { command a.A }\0\0\0", 25)), 2, 23,
       "unexpected NUL byte (is this a binary file?)"},
      {"NonAscii", saga("step caf\xc3\xa9 { command a.A }"), 2, 9,
       "unexpected non-ASCII text; names are ASCII letters, digits, '_' and '-'"},
      {"IdentifierTooLong", saga("step " + std::string(129, 'x') + " { command a.A }"), 2, 6,
       "identifier is longer than 128 characters"},
  };
}

class BadFile : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadFile, GivesOneLocatedError) {
  const BadCase& c = GetParam();
  const ParseResult r = parse(c.text, "bad.saga");
  ASSERT_EQ(r.errors.size(), 1u) << messages(r);
  const Diagnostic& d = r.errors[0];
  EXPECT_EQ(d.message, c.message);
  EXPECT_EQ(d.line, c.line);
  EXPECT_EQ(d.column, c.column);
  EXPECT_EQ(d.file, "bad.saga");
  EXPECT_FALSE(r.ok());
}

void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.name;
}
INSTANTIATE_TEST_SUITE_P(Dsl, BadFile, ::testing::ValuesIn(bad_cases()));

TEST(DslParse, ReportsEveryErrorOfTheFileInOneRun) {
  const std::string text = R"(saga A version 1 {
  timeout 30
  step reserve { comand inventory.Reserve compensate inventory.Release }
  step charge {
    command payment.Charge
    compensate payment.Refund
    timeout 10x
  }
}
saga B {
  step p { command p.P }
  step q { command q.Q }
  step r { command r.R retry 3 backoff 5s..1s }
}
saga C version 0 { step c { command c.C } }
)";
  const ParseResult r = parse(text, "many.saga");
  std::vector<std::string> got;
  for (const Diagnostic& d : r.errors)
    got.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + " " + d.message);
  EXPECT_EQ(got,
            (std::vector<std::string>{
                "2:11 duration '30' needs a unit: ms, s, m or h",
                "3:18 unknown keyword 'comand' in step 'reserve'; did you mean 'command'?",
                "7:13 unknown unit 'x' in '10x'; use ms, s, m or h",
                "12:8 step 'q': has no compensation but 'p' is already the pivot; steps after the "
                "pivot must be retriable (retry forever) [at-most-one-pivot]",
                "13:8 step 'r': has no compensation but 'p' is already the pivot; steps after the "
                "pivot must be retriable (retry forever) [at-most-one-pivot]",
                "13:24 step 'r': retry max backoff must be at least the initial backoff and at "
                "most 24h [retry-policy]",
                "15:16 version must be between 1 and 1000000 [version]",
            }));
  EXPECT_TRUE(r.definitions.empty());
}

TEST(DslParse, ATypoInALaterStepDoesNotHideAnEarlierPivotError) {
  const ParseResult r = parse(R"(saga A {
  step a { command a.A compensate a.U }
  step p { command p.P retry forever }
  step b { command b.B compensate b.U }
  step c { comand c.C retry forever }
  step d { command d.D }
})",
                              "f.saga");
  std::vector<std::string> got;
  for (const Diagnostic& d : r.errors)
    got.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + " " + d.message);
  // 'comand' might have been 'compensate', so nothing is said about the pivot from step c on.
  EXPECT_EQ(got, (std::vector<std::string>{
                     "4:35 step 'b': comes after the pivot 'p' (no compensation: once it "
                     "succeeds the saga must complete), so it would never be compensated; give "
                     "'p' a compensation, or move this step before it (if this step cannot be "
                     "undone, drop its compensation and retry it forever) "
                     "[compensation-after-pivot]",
                     "5:12 unknown keyword 'comand' in step 'c'; did you mean 'command'?"}));
}

TEST(DslParse, ReturnsTheCleanSagasOfAFileWithErrors) {
  const ParseResult r =
      parse("saga Good { step a { command a.A } }\nsaga Bad { step a { command a } }", "f.saga");
  ASSERT_EQ(r.errors.size(), 1u) << messages(r);
  ASSERT_EQ(r.definitions.size(), 1u);
  EXPECT_EQ(r.definitions[0].name, "Good");
}

TEST(DslParse, AStrayCharacterFailsItsSaga) {
  const ParseResult r = parse("saga A { step a { command a.A }; }", "f.saga");
  EXPECT_EQ(r.errors.size(), 1u) << messages(r);
  EXPECT_TRUE(r.definitions.empty());
}

TEST(DslParse, FindsASagaByNameAndVersion) {
  const ParseResult r = parse(R"(saga A version 1 { step a { command a.A } }
saga A version 3 { step a { command a.A } }
saga A version 2 { step a { command a.A } })");
  ASSERT_TRUE(r.ok()) << messages(r);
  ASSERT_NE(r.find("A"), nullptr);
  EXPECT_EQ(r.find("A")->version, 3);
  ASSERT_NE(r.find("A", 2), nullptr);
  EXPECT_EQ(r.find("A", 2)->version, 2);
  EXPECT_EQ(r.find("A", 4), nullptr);
  EXPECT_EQ(r.find("B"), nullptr);
}

TEST(DslParse, EverySampleFileIsValid) {
  for (const char* f : {"samples/place_order.saga", "samples/book_trip.saga"}) {
    const ParseResult r = parse_file(test::source_path(f));
    EXPECT_TRUE(r.ok()) << messages(r);
    EXPECT_FALSE(r.definitions.empty()) << f;
    for (const Definition& d : r.definitions) EXPECT_OK(check(d));
  }
}

TEST(DslParse, LoadFileGivesTheDefinitionsOrTheFormattedErrors) {
  auto good = load_file(test::source_path("samples/place_order.saga"));
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  EXPECT_EQ(*good, std::vector{test::place_order()});

  auto missing = load_file("no/such/file.saga");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "no/such/file.saga: error: cannot read the file: No such file or directory");
}

TEST(DslParse, ADirectoryIsNotASagaFile) {
  const ParseResult r = parse_file(SAGA_SOURCE_DIR);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].line, 0);
  EXPECT_EQ(r.errors[0].message, "is a directory, not a .saga file");
}

}  // namespace
}  // namespace saga::dsl

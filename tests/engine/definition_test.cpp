#include "saga/definition.hpp"

#include <gtest/gtest.h>

#include "testutil/order_world.hpp"

namespace saga {
namespace {

std::string errors_of(const Definition& d) {
  std::string out;
  for (const auto& e : validate(d))
    out += std::to_string(e.step) + ":" + e.rule + ":" + e.message + "\n";
  return out;
}

TEST(Definition, AcceptsTheReferenceWorkload) {
  auto d = testutil::place_order_definition();
  EXPECT_TRUE(validate(d).empty()) << errors_of(d);
  EXPECT_EQ(d.kind(0), StepKind::kCompensatable);
  EXPECT_EQ(d.kind(2), StepKind::kPivot);
  EXPECT_EQ(d.stage_count(), 3);
}

TEST(Definition, RejectsDuplicateStepNamesNamingTheStepAndRule) {
  auto r = Definition::Builder("X").step("a", "p.A", "p.U").step("a", "p.B", "p.V").build();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("step 'a'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("unique-step-names"), std::string::npos);
}

TEST(Definition, RejectsASecondPivot) {
  Definition d;
  d.name = "X";
  d.steps = {StepDef{.name = "a", .action = {"p", "A"}},
             StepDef{.name = "b", .action = {"p", "B"}, .stage = 1}};
  auto errors = validate(d);
  ASSERT_EQ(errors.size(), 1u) << errors_of(d);
  EXPECT_EQ(errors[0].step, 1);
  EXPECT_EQ(errors[0].rule, "at-most-one-pivot");
  EXPECT_NE(errors[0].message.find("'a' is already the pivot"), std::string::npos);
}

TEST(Definition, RejectsCompensationAfterThePivot) {
  RetryPolicy forever{RetryPolicy::kForever};
  auto r = Definition::Builder("X").step("a", "p.A").step("b", "p.B", "p.U").retry(forever).build();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("compensation-after-pivot"), std::string::npos);
}

TEST(Definition, AcceptsRetriableStepsAfterThePivot) {
  RetryPolicy forever{RetryPolicy::kForever};
  auto r = Definition::Builder("X")
               .step("a", "p.A", "p.U")
               .step("pivot", "p.P")
               .step("r1", "p.R")
               .retry(forever)
               .build();
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->kind(2), StepKind::kRetriable);
}

TEST(Definition, RejectsPivotInsideParallelBlock) {
  Definition::Builder b("X");
  auto r = b.parallel({b.make_step("a", "p.A", "p.U"), b.make_step("b", "p.B")}).build();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("parallel-compensatable"), std::string::npos);
}

TEST(Definition, RejectsInsaneDurationsAndPolicies) {
  auto r = Definition::Builder("X")
               .step("a", "p.A", "p.U")
               .timeout(Duration(0))
               .retry({3, Duration(500), 0.5, Duration(100), 2.0})
               .build();
  ASSERT_FALSE(r.ok());
  const std::string m = r.status().message();
  EXPECT_NE(m.find("timeout-range"), std::string::npos) << m;
  EXPECT_NE(m.find("max backoff"), std::string::npos) << m;
  EXPECT_NE(m.find("multiplier"), std::string::npos) << m;
  EXPECT_NE(m.find("jitter"), std::string::npos) << m;
}

TEST(Definition, BuilderReportsMalformedCommand) {
  auto r = Definition::Builder("X").step("a", "ReserveItems", "p.U").build();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'participant.Command'"), std::string::npos);
}

TEST(Definition, RejectsEmptySagaAndBadNames) {
  Definition d;
  d.name = "bad name";
  d.version = 0;
  std::string e = errors_of(d);
  EXPECT_NE(e.find("saga-name"), std::string::npos);
  EXPECT_NE(e.find("version"), std::string::npos);
  EXPECT_NE(e.find("has-steps"), std::string::npos);
}

}  // namespace
}  // namespace saga

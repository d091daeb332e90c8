// Diagrams: DOT and Mermaid name every step, group parallel blocks, dash compensations and mark
// the pivot and retriable steps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dsl_test_util.hpp"
#include "saga/dsl.hpp"

namespace saga::dsl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Definition trip() {
  Definition::Builder b("Trip", 2);
  b.step("hold", "pay.Hold", "pay.Release");
  b.parallel({b.make_step("flight", "air.Book", "air.Cancel"),
              b.make_step("hotel", "hotel.Book", "hotel.Cancel")});
  b.step("capture", "pay.Capture").retry({RetryPolicy::kForever});
  b.step("mail", "mail.Send").retry({RetryPolicy::kForever});
  return *b.build();
}

TEST(DslGraph, DotShowsStepsInOrderWithCompensationsAndThePivot) {
  const std::string dot = to_dot(test::place_order());
  EXPECT_THAT(dot, HasSubstr("digraph \"PlaceOrder v1\" {"));
  EXPECT_THAT(dot,
              HasSubstr("s0 [label=\"reserve_inventory\\ninventory.ReserveItems\\nretry 3\"];"));
  EXPECT_THAT(dot, HasSubstr("c0 [label=\"inventory.ReleaseReservation\\nretry 10\", "
                             "style=\"rounded,dashed\""));
  EXPECT_THAT(dot, HasSubstr("s2 [label=\"confirm_order\\norders.ConfirmOrder\\nPIVOT · retry "
                             "forever\", fillcolor=\"#ffe082\", penwidth=3];"));
  for (const char* edge : {"start -> s0;", "s0 -> s1;", "s1 -> s2;", "s2 -> completed;"})
    EXPECT_THAT(dot, HasSubstr(edge));
  EXPECT_THAT(dot, HasSubstr("s0 -> c0 [style=dashed"));
  EXPECT_THAT(dot, HasSubstr("s1 -> c1 [style=dashed"));
  EXPECT_THAT(dot, HasSubstr("c1 -> c0 [style=dashed"));
  EXPECT_THAT(dot, HasSubstr("c0 -> compensated [style=dashed"));
  EXPECT_THAT(dot, Not(HasSubstr("c2")));  // the pivot has no compensation
  EXPECT_THAT(dot, Not(HasSubstr("cluster")));
}

TEST(DslGraph, DotGroupsAParallelBlockAndCompensatesItInReverseOrder) {
  const std::string dot = to_dot(trip());
  EXPECT_THAT(dot, HasSubstr("subgraph cluster_stage1 {\n"
                             "    label=\"parallel: all must succeed\";"));
  EXPECT_THAT(dot, HasSubstr("    s1 [label=\"flight\\nair.Book\\nretry 3\"];"));
  EXPECT_THAT(dot, HasSubstr("    s2 [label=\"hotel\\nhotel.Book\\nretry 3\"];"));
  for (const char* edge : {"s0 -> s1;", "s0 -> s2;", "s1 -> s3;", "s2 -> s3;", "s3 -> s4;"})
    EXPECT_THAT(dot, HasSubstr(edge));
  // The engine's order: hotel, flight (reverse of the written order), then hold.
  EXPECT_THAT(dot, HasSubstr("c2 -> c1 [style=dashed, color=\"#b71c1c\", constraint=false, "
                             "label=\"undo\"];"));
  EXPECT_THAT(dot, HasSubstr("c1 -> c0 [style=dashed"));
  EXPECT_THAT(dot, HasSubstr("s4 [label=\"mail\\nmail.Send\\nretriable · retry forever\", "
                             "fillcolor=\"#bbdefb\"];"));
}

TEST(DslGraph, NoCompensationsMeansNoCompensatedEnd) {
  const Definition d = *Definition::Builder("A").step("a", "a.A").build();
  EXPECT_THAT(to_dot(d), Not(HasSubstr("compensated")));
  EXPECT_THAT(to_mermaid(d), Not(HasSubstr("compensated")));
}

TEST(DslGraph, MermaidShowsTheSameDiagram) {
  const std::string m = to_mermaid(trip());
  EXPECT_THAT(m, HasSubstr("---\ntitle: Trip v2\n---\nflowchart LR\n"));
  EXPECT_THAT(m, HasSubstr("  s0[\"<b>hold</b><br/>pay.Hold<br/><i>retry 3</i>\"]\n"));
  EXPECT_THAT(m, HasSubstr("  subgraph stage1[\"parallel: all must succeed\"]\n"
                           "    s1[\"<b>flight</b>"));
  for (const char* line :
       {"  start --> s0\n", "  s0 --> s1\n", "  s0 --> s2\n", "  s1 --> s3\n", "  s2 --> s3\n",
        "  s4 --> completed\n", "  s1 -.- c1\n", "  c2 -. undo .-> c1\n", "  c1 -.-> c0\n",
        "  c0 -.-> compensated\n", "  class s3 pivot\n", "  class s4 retriable\n",
        "  class c0 compensation\n"})
    EXPECT_THAT(m, HasSubstr(line));
}

}  // namespace
}  // namespace saga::dsl

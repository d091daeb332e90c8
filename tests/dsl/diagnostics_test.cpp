// How diagnostics read: compiler style, with the source line and a caret under the column.
#include <gtest/gtest.h>

#include "dsl_test_util.hpp"
#include "saga/dsl.hpp"

namespace saga::dsl {
namespace {

TEST(DslDiagnostics, FormatsLikeACompilerWithSourceLineAndCaret) {
  const ParseResult r = parse(R"(saga PlaceOrder version 1 {
  step reserve_inventory {
    command    inventory.ReserveItems
    compensate inventory.ReleaseReservation
  }
  step confirm_order { command orders.ConfirmOrder }
  step charge_payment {
    command    payment.ChargeCard
    compensate payment.RefundPayment
  }
}
)",
                              "place_order.saga");
  ASSERT_EQ(r.errors.size(), 1u) << test::messages(r);
  EXPECT_EQ(format(r.errors[0]),
            "place_order.saga:9:16: error: step 'charge_payment': comes after the pivot "
            "'confirm_order' (no compensation: once it succeeds the saga must complete), so it "
            "would never be compensated; give 'confirm_order' a compensation, or move this step "
            "before it (if this step cannot be undone, drop its compensation and retry it "
            "forever) [compensation-after-pivot]\n"
            "    compensate payment.RefundPayment\n"
            "               ^~~~~~~~~~~~~~~~~~~~~\n");
}

TEST(DslDiagnostics, CaretFollowsTabsAndUtf8) {
  const ParseResult r = parse(
      "saga A {\n\tstep a { command a.A } # caf\xc3\xa9\n\tstep b { comand b.B }\n}", "t.saga");
  ASSERT_EQ(r.errors.size(), 1u) << test::messages(r);
  EXPECT_EQ(format(r.errors[0]),
            "t.saga:3:11: error: unknown keyword 'comand' in step 'b'; did you mean 'command'?\n"
            "\tstep b { comand b.B }\n"
            "\t         ^~~~~~\n");
  const ParseResult u = parse("saga A { step \xc3\xa9t\xc3\xa9 { comand b.B } }", "u.saga");
  ASSERT_FALSE(u.ok());
  // One column per character on screen: "é" is two bytes but one caret position.
  EXPECT_EQ(format(u.errors[0]),
            "u.saga:1:15: error: unexpected non-ASCII text; names are ASCII letters, digits, '_' "
            "and '-'\n"
            "saga A { step \xc3\xa9t\xc3\xa9 { comand b.B } }\n"
            "              ^\n");
}

TEST(DslDiagnostics, LongLinesAreShownAroundTheColumn) {
  const std::string text = "saga A { step a { command a.A }" + std::string(5000, ' ') + "oops }";
  const ParseResult r = parse(text, "long.saga");
  ASSERT_EQ(r.errors.size(), 1u) << test::messages(r);
  const Diagnostic& d = r.errors[0];
  EXPECT_EQ(d.column, 5032);
  EXPECT_LE(d.source_line.size(), 170u);
  EXPECT_EQ(d.source_line.substr(0, 3), "...");
  EXPECT_EQ(d.source_line.substr(d.caret, 4), "oops");
}

TEST(DslDiagnostics, WholeFileErrorsHaveNoLine) {
  Diagnostic d;
  d.file = "x.saga";
  d.message = "file is too large";
  EXPECT_EQ(format(d), "x.saga: error: file is too large\n");
}

TEST(DslDiagnostics, AnErrorAtTheEndOfFileShowsTheLastLine) {
  const ParseResult r = parse("saga A {\n  step a { command a.A }\n\n", "eof.saga");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(format(r.errors[0]),
            "eof.saga:2:25: error: expected '}' to close saga 'A' (opened at line 1), found end "
            "of file\n"
            "  step a { command a.A }\n"
            "                        ^\n");
}

}  // namespace
}  // namespace saga::dsl

#include "dsl_test_util.hpp"

#include <fstream>
#include <sstream>

namespace saga::dsl::test {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string source_path(const std::string& relative) {
  return std::string(SAGA_SOURCE_DIR) + "/" + relative;
}

Definition place_order() {
  return *Definition::Builder("PlaceOrder", 1)
              .default_timeout(Duration(2000))
              .default_retry({3, Duration(50), 2.0, Duration(1000), 0.2})
              .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
              .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
              .step("confirm_order", "orders.ConfirmOrder")
              .retry({RetryPolicy::kForever, Duration(50), 2.0, Duration(1000), 0.2})
              .build();
}

std::string messages(const ParseResult& r) {
  std::string out;
  for (const Diagnostic& d : r.errors)
    out += d.file + ":" + std::to_string(d.line) + ":" + std::to_string(d.column) + ": " +
           d.message + "\n";
  return out;
}

}  // namespace saga::dsl::test

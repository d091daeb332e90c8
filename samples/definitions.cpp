#include "definitions.hpp"

namespace saga::samples {

// Until the DSL lands this builds PlaceOrder in code; it is replaced by dsl::parse_file.
Result<std::vector<Definition>> load_definitions(const std::string&) {
  auto d = Definition::Builder("PlaceOrder", 1)
               .default_timeout(Duration(2000))
               .default_retry({3, Duration(50), 2.0, Duration(1000), 0.2})
               .step("reserve_inventory", "inventory.ReserveItems", "inventory.ReleaseReservation")
               .step("charge_payment", "payment.ChargeCard", "payment.RefundPayment")
               .step("confirm_order", "orders.ConfirmOrder")
               .retry({RetryPolicy::kForever, Duration(50), 2.0, Duration(1000), 0.2})
               .build();
  if (!d.ok()) return d.status();
  return std::vector<Definition>{*d};
}

}  // namespace saga::samples

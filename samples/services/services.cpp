#include "services.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

namespace saga::samples {

using nlohmann::json;

std::unique_ptr<SqliteParticipantStore> open_service_db(const std::string& path) {
  auto db = SqliteParticipantStore::open({.path = path});
  if (!db.ok()) throw std::runtime_error(db.status().to_string());
  return std::move(*db);
}

namespace {
void run_or_throw(SqliteParticipantStore& db, const std::function<void(SqliteTx&)>& fn) {
  if (Status st = db.run(fn); !st.ok()) throw std::runtime_error(st.to_string());
}

long long read_int(SqliteParticipantStore& db, std::string_view sql,
                   std::initializer_list<SqlArg> args = {}) {
  long long v = 0;
  run_or_throw(db, [&](SqliteTx& tx) { v = tx.query_int(sql, args).value_or(0); });
  return v;
}
// Takes `qty` of `sku` off the stock; the refusal when it cannot (`short_of` + the sku).
std::optional<ParticipantReply> take_stock(SqliteTx& tx, const std::string& sku, int qty,
                                           const std::string& short_of) {
  if (qty < 1) return ParticipantReply::rejected("qty must be at least 1");
  if (tx.exec("UPDATE stock SET qty = qty - ?2 WHERE sku = ?1 AND qty >= ?2", {sku, qty}) == 0)
    return ParticipantReply::rejected(short_of + sku);
  return std::nullopt;
}

}  // namespace

InventoryService::InventoryService(Transport& t, const std::string& path, int initial_stock)
    : db_(open_service_db(path)), participant_(t, "inventory", *db_) {
  run_or_throw(*db_, [&](SqliteTx& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS stock(sku TEXT PRIMARY KEY, qty INTEGER NOT NULL)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS reservations(id TEXT PRIMARY KEY, sku TEXT, qty INTEGER,"
        " status TEXT)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS picks(id TEXT PRIMARY KEY, sku TEXT, qty INTEGER,"
        " status TEXT)");
    if (!tx.query_int("SELECT qty FROM stock WHERE sku = 'widget'"))
      tx.exec("INSERT INTO stock VALUES('widget', ?1)", {initial_stock});
  });
  participant_.on("ReserveItems", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    auto in = json::parse(c.payload);
    const std::string sku = in.value("sku", "widget");
    const int qty = in.value("qty", 1);
    if (auto refused = take_stock(tx, sku, qty, "out of stock: ")) return *refused;
    const std::string id = "res-" + c.saga_id;
    tx.exec("INSERT INTO reservations VALUES(?1, ?2, ?3, 'held')", {id, sku, qty});
    return ParticipantReply::ok(json{{"reservation_id", id}}.dump());
  });
  participant_.on_compensate("ReleaseReservation", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    const std::string id = json::parse(c.payload).value("reservation_id", "");
    tx.exec(
        "UPDATE stock SET qty = qty + (SELECT qty FROM reservations WHERE id = ?1)"
        " WHERE sku = (SELECT sku FROM reservations WHERE id = ?1)",
        {id});
    tx.exec("UPDATE reservations SET status = 'released' WHERE id = ?1", {id});
    return ParticipantReply::ok();
  });
  // ShipOrder: items picked off the shelf for a parcel, and put back when it cannot leave.
  participant_.on("PickItems", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    auto in = json::parse(c.payload);
    const std::string sku = in.value("sku", "widget");
    const int qty = in.value("qty", 1);
    if (auto refused = take_stock(tx, sku, qty, "not enough on the shelf: ")) return *refused;
    tx.exec("INSERT INTO picks VALUES(?1, ?2, ?3, 'picked')", {c.saga_id, sku, qty});
    return ParticipantReply::ok();
  });
  participant_.on_compensate("ReturnItems", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    tx.exec(
        "UPDATE stock SET qty = qty + (SELECT qty FROM picks WHERE id = ?1)"
        " WHERE sku = (SELECT sku FROM picks WHERE id = ?1)",
        {c.saga_id});
    tx.exec("UPDATE picks SET status = 'returned' WHERE id = ?1", {c.saga_id});
    return ParticipantReply::ok();
  });
}

long long InventoryService::stock(const std::string& sku) {
  return read_int(*db_, "SELECT qty FROM stock WHERE sku = ?1", {sku});
}

long long InventoryService::reservations(const std::string& status) {
  return read_int(*db_, "SELECT count(*) FROM reservations WHERE status = ?1", {status});
}

PaymentService::PaymentService(Transport& t, const std::string& path, long long card_limit,
                               int flaky_every)
    : db_(open_service_db(path)),
      limit_(card_limit),
      flaky_every_(flaky_every),
      participant_(t, "payment", *db_) {
  run_or_throw(*db_, [](SqliteTx& tx) {
    tx.exec(
        "CREATE TABLE IF NOT EXISTS charges(id TEXT PRIMARY KEY, amount INTEGER,"
        " refunded INTEGER NOT NULL DEFAULT 0)");
  });
  participant_.on("ChargeCard", [this](const CommandContext& c, ParticipantTx& t) {
    if (flaky_every_ > 0 && ++calls_ % flaky_every_ == 0)
      return ParticipantReply::failed("payment gateway timed out");
    const long long amount = json::parse(c.payload).value("amount", 0LL);
    if (amount > limit_)
      return ParticipantReply::rejected("card declined: " + std::to_string(amount) +
                                        " exceeds the limit of " + std::to_string(limit_));
    const std::string id = "pay-" + c.saga_id;
    SqliteTx::of(t).exec("INSERT INTO charges(id, amount) VALUES(?1, ?2)", {id, amount});
    return ParticipantReply::ok(json{{"payment_id", id}}.dump());
  });
  participant_.on_compensate("RefundPayment", [](const CommandContext& c, ParticipantTx& t) {
    const std::string id = json::parse(c.payload).value("payment_id", "");
    SqliteTx::of(t).exec("UPDATE charges SET refunded = 1 WHERE id = ?1", {id});
    return ParticipantReply::ok();
  });
}

long long PaymentService::charged_total() {
  return read_int(*db_, "SELECT coalesce(sum(amount), 0) FROM charges WHERE refunded = 0");
}

long long PaymentService::charges_kept() {
  return read_int(*db_, "SELECT count(*) FROM charges WHERE refunded = 0");
}

OrdersService::OrdersService(Transport& t, const std::string& path)
    : db_(open_service_db(path)), participant_(t, "orders", *db_) {
  run_or_throw(*db_, [](SqliteTx& tx) {
    tx.exec("CREATE TABLE IF NOT EXISTS confirmed(order_id TEXT PRIMARY KEY)");
    // ShipOrder: the couriers by region (the north's has no tracking service set up yet), and
    // the parcels handed to them.
    tx.exec("CREATE TABLE IF NOT EXISTS couriers(region TEXT PRIMARY KEY, tracking TEXT)");
    if (tx.query_int("SELECT count(*) FROM couriers").value_or(0) == 0)
      tx.exec("INSERT INTO couriers VALUES('south', 'SP'), ('north', NULL)");
    tx.exec(
        "CREATE TABLE IF NOT EXISTS parcels(order_id TEXT PRIMARY KEY, region TEXT,"
        " tracking_id TEXT)");
  });
  participant_.on("ConfirmOrder", [](const CommandContext& c, ParticipantTx& t) {
    const std::string order = json::parse(c.payload).value("order_id", c.saga_id);
    SqliteTx::of(t).exec("INSERT INTO confirmed VALUES(?1)", {order});
    return ParticipantReply::ok();
  });
  participant_.on("HandToCourier", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    const std::string region = json::parse(c.payload).value("region", "");
    if (tx.query_int("SELECT count(*) FROM couriers WHERE region = ?1", {region}).value_or(0) == 0)
      return ParticipantReply::rejected("no courier serves region '" + region + "'");
    tx.exec("INSERT INTO parcels(order_id, region) VALUES(?1, ?2)", {c.saga_id, region});
    return ParticipantReply::ok(json{{"courier", region}}.dump());
  });
  participant_.on("RegisterTracking", [](const CommandContext& c, ParticipantTx& t) {
    SqliteTx& tx = SqliteTx::of(t);
    const std::string region = json::parse(c.payload).value("region", "");
    const std::string tracking =
        tx.query_text("SELECT coalesce(tracking, '') FROM couriers WHERE region = ?1", {region})
            .value_or("");
    if (tracking.empty())
      return ParticipantReply::rejected("the courier of region '" + region +
                                        "' has no tracking service set up");
    const std::string id = tracking + "-" + c.saga_id;
    tx.exec("UPDATE parcels SET tracking_id = ?2 WHERE order_id = ?1", {c.saga_id, id});
    return ParticipantReply::ok(json{{"tracking_id", id}}.dump());
  });
}

long long OrdersService::confirmed() {
  return read_int(*db_, "SELECT count(*) FROM confirmed");
}

}  // namespace saga::samples

#include "services.hpp"

#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

namespace saga::samples {

using nlohmann::json;

Db::Db(const std::string& path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK)
    throw std::runtime_error("cannot open " + path + ": " + sqlite3_errmsg(db_));
  exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
}

Db::~Db() {
  sqlite3_close(db_);
}

void Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + msg + " in: " + sql);
  }
}

long long Db::scalar(const std::string& sql, std::initializer_list<std::string> args) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db_));
  int i = 1;
  for (const auto& a : args) sqlite3_bind_text(st, i++, a.c_str(), -1, SQLITE_TRANSIENT);
  long long v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return v;
}

namespace {
// Binds text parameters ?1..?n and runs one statement; returns sqlite3_changes().
int run(sqlite3* db, const char* sql, std::initializer_list<std::string> args) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK)
    throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  int i = 1;
  for (const auto& a : args) sqlite3_bind_text(st, i++, a.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) throw std::runtime_error(std::string("sqlite: ") + sqlite3_errmsg(db));
  return sqlite3_changes(db);
}
}  // namespace

InventoryService::InventoryService(Transport& t, const std::string& path, int initial_stock)
    : db_(path), participant_(t, "inventory") {
  db_.exec(
      "CREATE TABLE IF NOT EXISTS stock(sku TEXT PRIMARY KEY, qty INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS reservations(id TEXT PRIMARY KEY, sku TEXT, qty INTEGER,"
      " status TEXT);");
  db_.exec("INSERT OR IGNORE INTO stock VALUES('widget', " + std::to_string(initial_stock) + ");");
  participant_.on("ReserveItems", [this](const CommandContext& c) {
    auto in = json::parse(c.payload);
    const std::string sku = in.value("sku", "widget");
    const int qty = in.value("qty", 1);
    const std::string id = "res-" + c.saga_id;
    db_.exec("BEGIN IMMEDIATE");
    const int changed =
        run(db_.handle(), "UPDATE stock SET qty = qty - ?2 WHERE sku = ?1 AND qty >= ?2",
            {sku, std::to_string(qty)});
    if (changed == 0) {
      db_.exec("ROLLBACK");
      return ParticipantReply::rejected("out of stock: " + sku);
    }
    run(db_.handle(), "INSERT INTO reservations VALUES(?1, ?2, ?3, 'held')",
        {id, sku, std::to_string(qty)});
    db_.exec("COMMIT");
    return ParticipantReply::ok(json{{"reservation_id", id}}.dump());
  });
  participant_.on_compensate("ReleaseReservation", [this](const CommandContext& c) {
    const std::string id = json::parse(c.payload).value("reservation_id", "");
    db_.exec("BEGIN IMMEDIATE");
    if (run(db_.handle(), "UPDATE reservations SET status='released' WHERE id=?1 AND status='held'",
            {id}) == 1) {
      run(db_.handle(),
          "UPDATE stock SET qty = qty + (SELECT qty FROM reservations WHERE id=?1)"
          " WHERE sku = (SELECT sku FROM reservations WHERE id=?1)",
          {id});
    }
    db_.exec("COMMIT");
    return ParticipantReply::ok();
  });
}

long long InventoryService::stock(const std::string& sku) {
  return db_.scalar("SELECT qty FROM stock WHERE sku = ?1", {sku});
}

long long InventoryService::reservations(const std::string& status) {
  return db_.scalar("SELECT count(*) FROM reservations WHERE status = ?1", {status});
}

PaymentService::PaymentService(Transport& t, const std::string& path, long long card_limit,
                               int flaky_every)
    : db_(path), limit_(card_limit), flaky_every_(flaky_every), participant_(t, "payment") {
  db_.exec(
      "CREATE TABLE IF NOT EXISTS charges(id TEXT PRIMARY KEY, amount INTEGER,"
      " refunded INTEGER NOT NULL DEFAULT 0);");
  participant_.on("ChargeCard", [this](const CommandContext& c) {
    if (flaky_every_ > 0 && ++calls_ % flaky_every_ == 0)
      return ParticipantReply::failed("payment gateway timed out");
    const long long amount = json::parse(c.payload).value("amount", 0LL);
    if (amount > limit_)
      return ParticipantReply::rejected("card declined: " + std::to_string(amount) +
                                        " exceeds the limit of " + std::to_string(limit_));
    const std::string id = "pay-" + c.saga_id;
    run(db_.handle(), "INSERT INTO charges(id, amount) VALUES(?1, ?2)",
        {id, std::to_string(amount)});
    return ParticipantReply::ok(json{{"payment_id", id}}.dump());
  });
  participant_.on_compensate("RefundPayment", [this](const CommandContext& c) {
    const std::string id = json::parse(c.payload).value("payment_id", "");
    run(db_.handle(), "UPDATE charges SET refunded=1 WHERE id=?1", {id});
    return ParticipantReply::ok();
  });
}

long long PaymentService::charged_total() {
  return db_.scalar("SELECT coalesce(sum(amount),0) FROM charges WHERE refunded=0");
}

OrdersService::OrdersService(Transport& t, const std::string& path)
    : db_(path), participant_(t, "orders") {
  db_.exec("CREATE TABLE IF NOT EXISTS confirmed(order_id TEXT PRIMARY KEY);");
  participant_.on("ConfirmOrder", [this](const CommandContext& c) {
    const std::string order = json::parse(c.payload).value("order_id", c.saga_id);
    run(db_.handle(), "INSERT OR IGNORE INTO confirmed VALUES(?1)", {order});
    return ParticipantReply::ok();
  });
}

long long OrdersService::confirmed() {
  return db_.scalar("SELECT count(*) FROM confirmed");
}

}  // namespace saga::samples

#include <algorithm>

#include "saga/memory.hpp"

namespace saga::testing {

// Writes through under the store's lock, held while the transaction is open. A test double:
// it does not roll back (nothing of the handler's lives in it anyway).
class VolatileParticipantStore::Tx : public ParticipantStore::Transaction {
 public:
  explicit Tx(VolatileParticipantStore& s) : s_(s), lock_(s.mu_) {}
  ParticipantTx& business() override { return business_; }
  Result<StepRecord> step(const std::string& saga_id, const std::string& step) override {
    auto it = s_.steps_.find(key(saga_id, step));
    return it == s_.steps_.end() ? StepRecord{} : it->second;
  }
  Result<std::optional<Message>> reply(const std::string& command_id) override {
    auto it = s_.replies_.find(command_id);
    if (it == s_.replies_.end()) return std::optional<Message>();
    return std::optional<Message>(it->second.reply);
  }
  Status savepoint() override { return Status::Ok(); }
  Status rollback_to_savepoint() override { return Status::Ok(); }
  Status record(const std::string& saga_id, const std::string& step, const StepRecord& rec,
                const Message& reply) override {
    s_.steps_[key(saga_id, step)] = rec;
    s_.replies_[reply.command_id] = Row{++s_.seq_, reply, false};
    return Status::Ok();
  }
  Status mark_sent(const std::vector<std::string>& ids) override {
    for (const auto& id : ids)
      if (auto it = s_.replies_.find(id); it != s_.replies_.end()) it->second.sent = true;
    return Status::Ok();
  }
  Status commit() override { return Status::Ok(); }

 private:
  static std::string key(const std::string& saga_id, const std::string& step) {
    std::string k;
    k.reserve(saga_id.size() + step.size() + 1);
    k.append(saga_id).push_back('/');
    k.append(step);
    return k;
  }
  VolatileParticipantStore& s_;
  std::unique_lock<std::mutex> lock_;
  ParticipantTx business_;
};

Result<std::unique_ptr<ParticipantStore::Transaction>> VolatileParticipantStore::begin() {
  return std::unique_ptr<Transaction>(std::make_unique<Tx>(*this));
}

Result<std::vector<Message>> VolatileParticipantStore::unsent() {
  std::lock_guard l(mu_);
  std::vector<std::pair<uint64_t, Message>> rows;
  for (const auto& [id, row] : replies_)
    if (!row.sent) rows.emplace_back(row.seq, row.reply);
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<Message> out;
  for (auto& [seq, m] : rows) out.push_back(std::move(m));
  return out;
}

}  // namespace saga::testing

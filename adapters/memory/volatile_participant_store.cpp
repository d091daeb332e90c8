#include <algorithm>

#include "saga/memory.hpp"

namespace saga::testing {

// Stages every write and applies them at commit(); holds tx_mu_ while open.
class VolatileParticipantStore::Tx : public ParticipantStore::Transaction {
 public:
  explicit Tx(VolatileParticipantStore& s) : s_(s), lock_(s.tx_mu_) {}
  ParticipantTx& business() override { return business_; }
  Result<StepRecord> step(const std::string& saga_id, const std::string& step) override {
    const std::string key = saga_id + '/' + step;
    if (auto it = steps_.find(key); it != steps_.end()) return it->second;
    std::lock_guard l(s_.mu_);
    auto it = s_.steps_.find(key);
    return it == s_.steps_.end() ? StepRecord{} : it->second;
  }
  Result<std::optional<Message>> reply(const std::string& command_id) override {
    if (auto it = replies_.find(command_id); it != replies_.end())
      return std::optional<Message>(it->second);
    std::lock_guard l(s_.mu_);
    auto it = s_.replies_.find(command_id);
    if (it == s_.replies_.end()) return std::optional<Message>();
    return std::optional<Message>(it->second.reply);
  }
  Status savepoint() override { return Status::Ok(); }
  Status rollback_to_savepoint() override { return Status::Ok(); }
  Status record(const std::string& saga_id, const std::string& step, const StepRecord& rec,
                const Message& reply) override {
    steps_[saga_id + '/' + step] = rec;
    replies_[reply.command_id] = reply;
    return Status::Ok();
  }
  Status mark_sent(const std::vector<std::string>& ids) override {
    sent_.insert(sent_.end(), ids.begin(), ids.end());
    return Status::Ok();
  }
  Status commit() override {
    std::lock_guard l(s_.mu_);
    for (auto& [k, v] : steps_) s_.steps_[k] = std::move(v);
    for (auto& [id, m] : replies_) s_.replies_[id] = Row{++s_.seq_, std::move(m), false};
    for (const auto& id : sent_)
      if (auto it = s_.replies_.find(id); it != s_.replies_.end()) it->second.sent = true;
    steps_.clear();
    replies_.clear();
    sent_.clear();
    return Status::Ok();
  }

 private:
  VolatileParticipantStore& s_;
  std::unique_lock<std::mutex> lock_;
  ParticipantTx business_;
  std::map<std::string, StepRecord> steps_;
  std::map<std::string, Message> replies_;
  std::vector<std::string> sent_;
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

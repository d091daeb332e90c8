#include "testutil/testutil.hpp"

#include <sys/wait.h>
#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace saga {

void PrintTo(const SagaState& s, std::ostream* os) {
  *os << "{id=" << s.id << " def=" << s.definition << "@" << s.version
      << " status=" << status_name(s.status) << " seq=" << s.seq << " reason='" << s.reason
      << "' context=" << s.context << " stuck_comp=" << s.stuck_compensating << " steps=[";
  for (const auto& p : s.steps)
    *os << phase_name(p.phase) << "/a" << p.attempt << "/c" << p.comp_attempt
        << (p.maybe_applied ? "/maybe" : "") << "/'" << p.error << "' ";
  *os << "]}";
}

void PrintTo(const Event& e, std::ostream* os) {
  *os << "{#" << e.seq << " " << event_name(e.type) << " step=" << e.step
      << " attempt=" << e.attempt << (e.compensation ? " comp" : "") << " value=" << e.value
      << " detail='" << e.detail << "' data=" << e.data << "}";
}

}  // namespace saga

namespace saga::testutil {

std::string temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = std::filesystem::temp_directory_path().string() + "/saga-tests";
  if (info) dir += std::string("/") + info->test_suite_name() + "." + info->name();
  std::filesystem::create_directories(dir);
  std::string path = dir + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"})  // a directory is the caller's to clear
    if (!std::filesystem::is_directory(path + suffix)) std::filesystem::remove(path + suffix);
  return path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Message command(const std::string& channel, const std::string& type, const std::string& saga_id,
                const std::string& command_id, const std::string& reply_to, bool compensation,
                const std::string& payload) {
  Message m;
  m.kind = Message::Kind::kCommand;
  m.channel = channel;
  m.type = type;
  m.saga_id = saga_id;
  m.command_id = command_id;
  m.reply_to = reply_to;
  m.compensation = compensation;
  m.payload = payload;
  return m;
}

CommandOutcome run_command(const std::string& command) {
  const std::string out = temp_path("stdout");
  const std::string err = temp_path("stderr");
  const std::string cmd = command + " >'" + out + "' 2>'" + err + "'";
  const int status = std::system(cmd.c_str());
  CommandOutcome r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

static uint64_t pick_seed() {
  if (const char* s = std::getenv("SAGA_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

SeededRandom::SeededRandom()
    : seed_(pick_seed()),
      rng_(seed_),
      trace_(__FILE__, __LINE__, "SAGA_SEED=" + std::to_string(seed_)) {}

Status FaultyStore::commit(const WriteBatch& batch) {
  {
    std::lock_guard l(mu_);
    if (crash_after_ == 0) crashed_ = true;
    if (crashed_) return Status::Unavailable("injected: crashed");
    if (fail_ > 0) {
      --fail_;
      return Status::Unavailable("injected: commit failed");
    }
  }
  Status st = EventStoreWrapper::commit(batch);
  std::lock_guard l(mu_);
  if (st.ok()) ++commits_;
  if (st.ok() && crash_after_ > 0 && --crash_after_ == 0) crashed_ = true;
  if (st.ok() && ghost_ > 0) {
    --ghost_;
    return Status::Unavailable("injected: commit timed out (but was written)");
  }
  return st;
}

void FaultyTransport::send(Message m, Completion done) {
  {
    std::lock_guard l(mu_);
    if (drop_) return;
    if (fail_ > 0) {
      --fail_;
      done(Status::Unavailable("injected: send failed"));
      return;
    }
    if (hold_) {
      held_.emplace_back(std::move(m), std::move(done));
      return;
    }
    sent_.push_back(m);
  }
  TransportWrapper::send(std::move(m), std::move(done));
}

bool FaultyTransport::release_one() {
  std::pair<Message, Completion> item;
  {
    std::lock_guard l(mu_);
    if (held_.empty()) return false;
    item = std::move(held_.front());
    held_.pop_front();
    sent_.push_back(item.first);
  }
  TransportWrapper::send(std::move(item.first), std::move(item.second));
  return true;
}

bool FaultyTransport::release_random(std::mt19937_64& rng, double dup) {
  std::pair<Message, Completion> item;
  bool twice;
  {
    std::lock_guard l(mu_);
    if (held_.empty()) return false;
    const size_t i = std::uniform_int_distribution<size_t>(0, held_.size() - 1)(rng);
    item = std::move(held_[i]);
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    twice = std::uniform_real_distribution<double>(0, 1)(rng) < dup;
    sent_.push_back(item.first);
  }
  if (twice) TransportWrapper::send(item.first, [](Status) {});
  TransportWrapper::send(std::move(item.first), std::move(item.second));
  return true;
}

std::vector<std::string> FaultyTransport::sent_ids() const {
  std::lock_guard l(mu_);
  std::vector<std::string> ids;
  for (const auto& m : sent_) ids.push_back(m.command_id);
  return ids;
}

}  // namespace saga::testutil

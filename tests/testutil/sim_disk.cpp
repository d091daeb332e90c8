#include "testutil/sim_disk.hpp"

#include <sqlite3.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <vector>

namespace saga::testutil {

namespace {

constexpr size_t kSector = 512;

// What the platter holds for one file, and what is only in the page cache.
struct FileState {
  struct Op {
    bool truncate = false;
    int64_t offset = 0;  // write offset, or the truncated size
    std::string data;
  };
  std::string durable;
  std::vector<Op> pending;
  bool deleted = false;

  static void apply(const Op& op, std::string& image) {
    if (op.truncate) {
      image.resize(static_cast<size_t>(op.offset));
      return;
    }
    const size_t end = static_cast<size_t>(op.offset) + op.data.size();
    if (image.size() < end) image.resize(end, '\0');
    std::memcpy(image.data() + op.offset, op.data.data(), op.data.size());
  }
};

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

struct SimDisk::Impl {
  std::string name;
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;
  mutable std::mutex mu;
  uint64_t calls = 0, injected = 0, fail_at = 0;
  bool persistent = false, full = false, syncs_fail = false, dead = false;
  std::map<std::string, std::unique_ptr<FileState>> files;

  // Numbers one I/O call and says whether it fails (0: it goes through). `write_like` calls
  // also fail once the power is cut.
  int fault(int code, bool write_like) {
    std::lock_guard l(mu);
    ++calls;
    if (write_like && dead) return code;
    if (fail_at != 0 && (calls == fail_at || (persistent && calls > fail_at))) {
      ++injected;
      return code;
    }
    if (syncs_fail && code == SQLITE_IOERR_FSYNC) {
      ++injected;
      return code;
    }
    if (full && code == SQLITE_IOERR_WRITE) {
      ++injected;
      return SQLITE_FULL;
    }
    return SQLITE_OK;
  }
};

namespace {

struct SimFile {
  sqlite3_file base;
  SimDisk::Impl* disk;
  FileState* state;  // null: not tracked (temporary files)
  sqlite3_file* real;
};

SimFile* sim(sqlite3_file* f) {
  return reinterpret_cast<SimFile*>(f);
}
SimDisk::Impl* impl_of(sqlite3_vfs* v) {
  return static_cast<SimDisk::Impl*>(v->pAppData);
}

int x_close(sqlite3_file* f) {
  return sim(f)->real->pMethods->xClose(sim(f)->real);
}

int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (int rc = sim(f)->disk->fault(SQLITE_IOERR_READ, false)) return rc;
  return sim(f)->real->pMethods->xRead(sim(f)->real, buf, n, off);
}

int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  SimFile* p = sim(f);
  if (int rc = p->disk->fault(SQLITE_IOERR_WRITE, true)) return rc;
  if (p->state) {
    std::lock_guard l(p->disk->mu);
    p->state->pending.push_back({false, off, std::string(static_cast<const char*>(buf), n)});
  }
  return p->real->pMethods->xWrite(p->real, buf, n, off);
}

int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
  SimFile* p = sim(f);
  if (int rc = p->disk->fault(SQLITE_IOERR_TRUNCATE, true)) return rc;
  if (p->state) {
    std::lock_guard l(p->disk->mu);
    p->state->pending.push_back({true, size, {}});
  }
  return p->real->pMethods->xTruncate(p->real, size);
}

int x_sync(sqlite3_file* f, int flags) {
  SimFile* p = sim(f);
  if (int rc = p->disk->fault(SQLITE_IOERR_FSYNC, true)) return rc;
  int rc = p->real->pMethods->xSync(p->real, flags);
  if (rc == SQLITE_OK && p->state) {
    std::lock_guard l(p->disk->mu);
    for (const auto& op : p->state->pending) FileState::apply(op, p->state->durable);
    p->state->pending.clear();
  }
  return rc;
}

int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = sim(f)->disk->fault(SQLITE_IOERR_FSTAT, false)) return rc;
  return sim(f)->real->pMethods->xFileSize(sim(f)->real, size);
}

int x_lock(sqlite3_file* f, int lock) {
  return sim(f)->real->pMethods->xLock(sim(f)->real, lock);
}
int x_unlock(sqlite3_file* f, int lock) {
  return sim(f)->real->pMethods->xUnlock(sim(f)->real, lock);
}
int x_check_reserved(sqlite3_file* f, int* out) {
  return sim(f)->real->pMethods->xCheckReservedLock(sim(f)->real, out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
  return sim(f)->real->pMethods->xFileControl(sim(f)->real, op, arg);
}
int x_sector_size(sqlite3_file* f) {
  return sim(f)->real->pMethods->xSectorSize(sim(f)->real);
}
int x_device_characteristics(sqlite3_file* f) {
  return sim(f)->real->pMethods->xDeviceCharacteristics(sim(f)->real);
}
int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return sim(f)->real->pMethods->xShmMap(sim(f)->real, region, size, extend, out);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return sim(f)->real->pMethods->xShmLock(sim(f)->real, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) {
  sim(f)->real->pMethods->xShmBarrier(sim(f)->real);
}
int x_shm_unmap(sqlite3_file* f, int del) {
  return sim(f)->real->pMethods->xShmUnmap(sim(f)->real, del);
}

// Version 2: shared memory for WAL, no memory-mapped I/O (every page goes through xRead).
const sqlite3_io_methods kMethods = {
    2,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    nullptr,
    nullptr,
};

int x_open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  SimDisk::Impl* d = impl_of(v);
  SimFile* p = sim(f);
  p->base.pMethods = nullptr;
  p->disk = d;
  p->state = nullptr;
  p->real = reinterpret_cast<sqlite3_file*>(p + 1);
  int rc = d->real->xOpen(d->real, name, p->real, flags, out_flags);
  if (rc != SQLITE_OK) return rc;
  p->base.pMethods = &kMethods;
  const int tracked = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_JOURNAL;
  if (name != nullptr && (flags & tracked) != 0) {
    std::lock_guard l(d->mu);
    auto& state = d->files[name];
    if (!state || state->deleted) {
      state = std::make_unique<FileState>();
      state->durable = read_whole(name);
    }
    p->state = state.get();
  }
  return SQLITE_OK;
}

int x_delete(sqlite3_vfs* v, const char* name, int sync_dir) {
  SimDisk::Impl* d = impl_of(v);
  if (int rc = d->fault(SQLITE_IOERR_DELETE, true)) return rc;
  int rc = d->real->xDelete(d->real, name, sync_dir);
  if (rc == SQLITE_OK) {
    std::lock_guard l(d->mu);
    if (auto it = d->files.find(name); it != d->files.end()) {
      it->second->deleted = true;
      it->second->durable.clear();
      it->second->pending.clear();
    }
  }
  return rc;
}

int x_access(sqlite3_vfs* v, const char* name, int flags, int* out) {
  return impl_of(v)->real->xAccess(impl_of(v)->real, name, flags, out);
}
int x_full_pathname(sqlite3_vfs* v, const char* name, int n, char* out) {
  return impl_of(v)->real->xFullPathname(impl_of(v)->real, name, n, out);
}
void* x_dl_open(sqlite3_vfs* v, const char* name) {
  return impl_of(v)->real->xDlOpen(impl_of(v)->real, name);
}
void x_dl_error(sqlite3_vfs* v, int n, char* out) {
  impl_of(v)->real->xDlError(impl_of(v)->real, n, out);
}
void (*x_dl_sym(sqlite3_vfs* v, void* h, const char* sym))(void) {
  return impl_of(v)->real->xDlSym(impl_of(v)->real, h, sym);
}
void x_dl_close(sqlite3_vfs* v, void* h) {
  impl_of(v)->real->xDlClose(impl_of(v)->real, h);
}
int x_randomness(sqlite3_vfs* v, int n, char* out) {
  return impl_of(v)->real->xRandomness(impl_of(v)->real, n, out);
}
int x_sleep(sqlite3_vfs* v, int us) {
  return impl_of(v)->real->xSleep(impl_of(v)->real, us);
}
int x_current_time(sqlite3_vfs* v, double* out) {
  return impl_of(v)->real->xCurrentTime(impl_of(v)->real, out);
}
int x_last_error(sqlite3_vfs* v, int n, char* out) {
  return impl_of(v)->real->xGetLastError(impl_of(v)->real, n, out);
}
int x_current_time_i64(sqlite3_vfs* v, sqlite3_int64* out) {
  return impl_of(v)->real->xCurrentTimeInt64(impl_of(v)->real, out);
}

}  // namespace

SimDisk::SimDisk(const std::string& name) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.name = name;
  d.real = sqlite3_vfs_find(nullptr);
  if (d.real == nullptr || d.real->iVersion < 2) throw std::runtime_error("no default VFS");
  sqlite3_vfs& v = d.vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(SimFile)) + d.real->szOsFile;
  v.mxPathname = d.real->mxPathname;
  v.zName = d.name.c_str();
  v.pAppData = &d;
  v.xOpen = x_open;
  v.xDelete = x_delete;
  v.xAccess = x_access;
  v.xFullPathname = x_full_pathname;
  v.xDlOpen = x_dl_open;
  v.xDlError = x_dl_error;
  v.xDlSym = x_dl_sym;
  v.xDlClose = x_dl_close;
  v.xRandomness = x_randomness;
  v.xSleep = x_sleep;
  v.xCurrentTime = x_current_time;
  v.xGetLastError = x_last_error;
  v.xCurrentTimeInt64 = x_current_time_i64;
  if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) throw std::runtime_error("vfs register");
}

SimDisk::~SimDisk() {
  sqlite3_vfs_unregister(&impl_->vfs);
}

const std::string& SimDisk::name() const {
  return impl_->name;
}

uint64_t SimDisk::calls() const {
  std::lock_guard l(impl_->mu);
  return impl_->calls;
}

uint64_t SimDisk::injected() const {
  std::lock_guard l(impl_->mu);
  return impl_->injected;
}

void SimDisk::fail_at(uint64_t call, bool persistent) {
  std::lock_guard l(impl_->mu);
  impl_->fail_at = call;
  impl_->persistent = persistent;
}

void SimDisk::set_disk_full(bool full) {
  std::lock_guard l(impl_->mu);
  impl_->full = full;
}

void SimDisk::set_syncs_fail(bool fail) {
  std::lock_guard l(impl_->mu);
  impl_->syncs_fail = fail;
}

void SimDisk::clear_faults() {
  std::lock_guard l(impl_->mu);
  impl_->syncs_fail = false;
  impl_->fail_at = 0;
  impl_->persistent = false;
  impl_->full = false;
}

void SimDisk::cut_power() {
  std::lock_guard l(impl_->mu);
  impl_->dead = true;
}

void SimDisk::restore_power(Loss loss, uint64_t seed) {
  std::lock_guard l(impl_->mu);
  std::mt19937_64 rng(seed);
  for (auto& [path, state] : impl_->files) {
    if (state->deleted) continue;
    std::string image = state->durable;
    for (const FileState::Op& op : state->pending) {
      if (loss == Loss::kDropUnsynced) break;
      const auto fate = rng() % 3;  // 0 lost, 1 written, 2 torn: some of its sectors written
      if (fate == 1 || (fate == 2 && op.truncate)) {
        FileState::apply(op, image);
      } else if (fate == 2) {
        for (size_t at = 0; at < op.data.size(); at += kSector) {
          if (rng() % 2 == 0) continue;
          FileState::apply(
              {false, op.offset + static_cast<int64_t>(at), op.data.substr(at, kSector)}, image);
        }
      }
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(image.data(), static_cast<std::streamsize>(image.size()));
    out.close();
    std::remove((path + "-shm").c_str());
    state->durable = std::move(image);
    state->pending.clear();
  }
  impl_->dead = false;
}

}  // namespace saga::testutil

// SimDisk: a SQLite VFS over the default one that fails I/O on demand and simulates power loss,
// the way SQLite tests itself (test_vfs.c, test6.c). Open a store through it with
// SqliteOptions::vfs = disk.name().
//
// Faults: every read, write, sync, truncate, file-size and delete call is numbered from 1; the
// call numbered N (and, if persistent, every later one) fails with the matching SQLITE_IOERR_*
// code, or writes fail with SQLITE_FULL while the disk is full.
//
// Power loss: writes reach the real file at once (as they reach the page cache), and the disk
// remembers, per file, the bytes as of the last sync. cut_power() makes every later write, sync,
// truncate and delete fail (nothing more reaches the platter); once every connection is closed,
// restore_power() rewrites each file as a disk would hold it after the cut: the synced bytes
// plus none or a random torn subset (512-byte sectors) of the unsynced writes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace saga::testutil {

class SimDisk {
 public:
  explicit SimDisk(const std::string& name = "simdisk");  // registers the VFS (not as default)
  ~SimDisk();                                             // unregisters it
  SimDisk(const SimDisk&) = delete;
  SimDisk& operator=(const SimDisk&) = delete;

  const std::string& name() const;

  // ---- faults ----
  uint64_t calls() const;     // I/O calls numbered so far
  uint64_t injected() const;  // calls failed on purpose so far
  void fail_at(uint64_t call, bool persistent);
  void set_disk_full(bool full);
  void set_syncs_fail(bool fail);  // every fsync fails (SQLITE_IOERR_FSYNC) while set
  void clear_faults();             // also ends a persistent failure

  // ---- power loss ----
  enum class Loss {
    kDropUnsynced,  // every write since the file's last sync is gone
    kTearUnsynced,  // each unsynced write kept, dropped or torn at a sector, at random
  };
  void cut_power();
  // REQUIRES: no connection open on the files. Rewrites them and deletes their -shm files.
  void restore_power(Loss loss, uint64_t seed);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace saga::testutil

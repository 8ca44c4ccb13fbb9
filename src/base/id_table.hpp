// IdTable: keys interned to small, stable 32-bit ids, for control-plane tables of up to millions of small
// keys (VIP pairs). The keys sit in one vector indexed by id; callers keep their per-key values in vectors
// indexed by the same id. A key is found through an open-addressing index of ids: linear probing, at most
// half full, deletion by backward shift (no tombstones). Nothing is allocated per key: a std::unordered_map
// node of a 34-byte key and a pointer is an 80-byte heap chunk plus its bucket, where here a key costs
// itself and two to four 4-byte index slots.
//
// An id stays the key's until erase(); a later insert may reuse it. Not thread-safe: the owner's lock
// covers it.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

namespace pspgw {

template <class Key, class Hash = std::hash<Key>>
class IdTable {
 public:
  using Id = uint32_t;
  static constexpr Id kNone = UINT32_MAX;

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Ids below this are live or free: the range to scan when visiting every key.
  Id id_limit() const { return static_cast<Id>(keys_.size()); }
  bool live(Id id) const { return id < live_.size() && live_[id]; }
  const Key& key(Id id) const { return keys_[id]; }

  // The key's id, kNone if absent.
  Id find(const Key& k) const {
    if (slots_.empty()) return kNone;
    for (std::size_t i = home(k);; i = (i + 1) & mask()) {
      const Id id = slots_[i];
      if (id == kNone) return kNone;
      if (keys_[id] == k) return id;
    }
  }

  // The key's id: its own if present (second: false), else a new one, a freed id first (second: true).
  std::pair<Id, bool> insert(const Key& k) {
    if (const Id id = find(k); id != kNone) return {id, false};
    if ((size_ + 1) * 2 > slots_.size()) grow();
    Id id;
    if (!free_.empty()) {
      id = free_.back();
      free_.pop_back();
      keys_[id] = k;
      live_[id] = true;
    } else {
      id = static_cast<Id>(keys_.size());
      keys_.push_back(k);
      live_.push_back(true);
    }
    place(id);
    ++size_;
    return {id, true};
  }

  // Frees the key's id; false if absent.
  bool erase(const Key& k) {
    if (slots_.empty()) return false;
    std::size_t hole = home(k);
    for (;; hole = (hole + 1) & mask()) {
      const Id id = slots_[hole];
      if (id == kNone) return false;
      if (keys_[id] == k) break;
    }
    const Id gone = slots_[hole];
    // Backward shift: each later id of the run moves into the hole unless the hole lies before its home.
    for (std::size_t j = (hole + 1) & mask(); slots_[j] != kNone; j = (j + 1) & mask()) {
      const std::size_t h = home(keys_[slots_[j]]);
      if (((j - h) & mask()) >= ((j - hole) & mask())) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = kNone;
    live_[gone] = false;
    keys_[gone] = Key{};
    free_.push_back(gone);
    --size_;
    return true;
  }

  void clear() {
    keys_.clear();
    live_.clear();
    free_.clear();
    slots_.clear();
    size_ = 0;
  }

 private:
  std::size_t mask() const { return slots_.size() - 1; }
  // Fibonacci hashing on top of the caller's hash: the index uses the top bits of the product, so a hash
  // whose low bits vary little (byte-wise FNV of addresses) still spreads.
  std::size_t home(const Key& k) const {
    const uint64_t h = static_cast<uint64_t>(Hash{}(k)) * 0x9e3779b97f4a7c15ULL;
    return static_cast<std::size_t>(h >> (64 - shift_));
  }
  void place(Id id) {
    std::size_t i = home(keys_[id]);
    while (slots_[i] != kNone) i = (i + 1) & mask();
    slots_[i] = id;
  }
  void grow() {
    const std::size_t n = slots_.empty() ? 16 : slots_.size() * 2;
    shift_ = std::countr_zero(n);
    slots_.assign(n, kNone);
    for (Id id = 0; id < keys_.size(); ++id) {
      if (live_[id]) place(id);
    }
  }

  std::vector<Key> keys_;   // by id; a freed id holds Key{}
  std::vector<bool> live_;  // by id
  std::vector<Id> free_;
  std::vector<Id> slots_;  // the index: ids, kNone where empty; a power of two, at most half full
  int shift_ = 0;          // log2(slots_.size())
  std::size_t size_ = 0;
};

}  // namespace pspgw

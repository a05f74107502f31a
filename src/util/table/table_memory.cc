#include "util/table/table_memory.h"

#include <sys/stat.h>

#include "util/log/log.h"
#include "util/table/table_source.h"

namespace postern::table {

std::string MemoryTable::fold(std::string_view key) const {
    return (flags() & kFoldFix) ? fold_key(key, (flags() & kUtf8) != 0) : std::string(key);
}

LookupResult MemoryTable::lookup(std::string_view key) {
    if ((flags() & kUtf8) && !valid_utf8(key)) {
        log::warn("%s: non-UTF-8 key \"%s\": malformed UTF-8 or invalid codepoint", spec().c_str(),
                  printable(key).c_str());
        return LookupResult::miss();
    }
    auto it = index_.find(fold(key));
    if (it == index_.end()) return LookupResult::miss();
    return LookupResult::hit(entries_[it->second].second);
}

Status MemoryTable::for_each(const std::function<bool(std::string_view, std::string_view)>& fn) {
    for (const auto& [k, v] : entries_)
        if (!fn(k, v)) break;
    return Status::success();
}

void MemoryTable::put(std::string_view key, std::string_view value) {
    std::string k = fold(key);
    auto it = index_.find(k);
    if (it != index_.end()) {
        entries_[it->second].second.assign(value);
        return;
    }
    index_.emplace(k, entries_.size());
    entries_.emplace_back(std::move(k), std::string(value));
}

void MemoryTable::watch_file(const std::string& path) {
    struct stat st;
    if (::stat(path.c_str(), &st) < 0) return;
    watched_path_ = path;
    watched_ino_ = st.st_ino;
    watched_mtime_ = st.st_mtime;
}

bool MemoryTable::changed() const {
    if (watched_path_.empty()) return false;
    struct stat st;
    if (::stat(watched_path_.c_str(), &st) < 0) return true;
    return st.st_ino != watched_ino_ || st.st_mtime != watched_mtime_;
}

bool MemoryTable::contains(std::string_view key) const { return index_.count(fold(key)) != 0; }

}  // namespace postern::table

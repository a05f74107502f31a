// An in-memory fixed-string table: the store behind texthash: and inline: (Postfix's
// internal "ht" dictionary). Keys are folded on insert and lookup when kFoldFix is set.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "util/table/table.h"

namespace postern::table {

class MemoryTable : public Table {
public:
    MemoryTable(std::string spec, unsigned flags) : Table(std::move(spec), flags) {}

    LookupResult lookup(std::string_view key) override;
    Status for_each(const std::function<bool(std::string_view, std::string_view)>& fn) override;

    bool changed() const override;
    // Remembers the file the table was read from, for changed().
    void watch_file(const std::string& path);

    // Loading, before the table is handed out. put() replaces; contains() for duplicates.
    void put(std::string_view key, std::string_view value);
    bool contains(std::string_view key) const;

private:
    std::string fold(std::string_view key) const;

    std::vector<std::pair<std::string, std::string>> entries_;  // first-insertion order
    std::unordered_map<std::string, size_t> index_;
    std::string watched_path_;
    unsigned long watched_ino_ = 0;
    long watched_mtime_ = 0;
};

}  // namespace postern::table

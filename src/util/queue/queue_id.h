// Queue IDs: the file name of a message in every queue, unique and sortable by time.
//
// Two forms, as Postfix's enable_long_queue_ids chooses:
//   long : seconds (base 52, >= 6 chars) + microseconds (base 52, exactly 4 chars) + 'z'
//          + inode number (base 51, so it never contains 'z'), e.g. "4Xb7Kq1ZzTz9Hk".
//   short: microseconds as 5 upper-case hex digits + inode in upper-case hex.
// The 52-character alphabet is in ASCII order, so comparing two long IDs as strings
// compares their arrival times (to the microsecond) before anything else.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace postern::queue {

std::string make_long_id(uint64_t sec, uint32_t usec, uint64_t inode);
std::string make_short_id(uint32_t usec, uint64_t inode);

// The inode part alone, as the queue file's new name needs after a copy (postsuper -s).
std::string encode_inode(uint64_t inode, bool long_form);

struct ParsedId {
    bool long_form = false;
    std::optional<uint64_t> seconds;  // long form only
    uint32_t usec = 0;
    uint64_t inode = 0;
};

// Decodes a well-formed ID of either form; nullopt for anything else.
std::optional<ParsedId> parse_id(std::string_view id);

// The microseconds of an ID as 5 upper-case hex digits: the string Postfix hashes to
// choose the subdirectory of a hashed queue (short IDs already start with it).
std::string hash_source(std::string_view id);

// True when `id` may be used as a file name in a queue directory: 1..255 characters,
// letters, digits and '_' only (Postfix's mail_queue_id_ok; '_' is for flush logs).
// No '/', no "..", no NUL can ever reach a path built from it.
bool id_ok(std::string_view id);

// True for the names of queue subdirectories (alphanumeric, 1..100 characters).
bool queue_name_ok(std::string_view name);

}  // namespace postern::queue

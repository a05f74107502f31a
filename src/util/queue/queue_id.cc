#include "util/queue/queue_id.h"

#include <algorithm>
#include <cstdio>

namespace postern::queue {
namespace {

// Digits and consonants: no vowels, so an ID never spells a word.
constexpr std::string_view kSafe = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
constexpr unsigned kTimeBase = 52;
constexpr unsigned kInodeBase = 51;
constexpr size_t kSecPad = 6;
constexpr size_t kUsecPad = 4;
constexpr char kInodeSep = 'z';

std::string encode(uint64_t value, unsigned base, size_t pad) {
    std::string out;
    do {
        out.push_back(kSafe[value % base]);
        value /= base;
    } while (value != 0);
    while (out.size() < pad) out.push_back('0');
    std::reverse(out.begin(), out.end());
    return out;
}

std::optional<uint64_t> decode(std::string_view s, unsigned base) {
    if (s.empty() || s.size() > 12) return std::nullopt;
    uint64_t value = 0;
    for (char c : s) {
        size_t digit = kSafe.find(c);
        if (digit == std::string_view::npos || digit >= base) return std::nullopt;
        value = value * base + digit;
    }
    return value;
}

std::optional<uint64_t> decode_hex(std::string_view s) {
    if (s.empty() || s.size() > 16) return std::nullopt;
    uint64_t value = 0;
    for (char c : s) {
        unsigned digit;
        if (c >= '0' && c <= '9') digit = c - '0';
        else if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        else return std::nullopt;
        value = value * 16 + digit;
    }
    return value;
}

}  // namespace

std::string make_long_id(uint64_t sec, uint32_t usec, uint64_t inode) {
    return encode(sec, kTimeBase, kSecPad) + encode(usec % 1000000, kTimeBase, kUsecPad) +
           kInodeSep + encode(inode, kInodeBase, 0);
}

std::string make_short_id(uint32_t usec, uint64_t inode) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%05X%lX", usec % 1000000, static_cast<unsigned long>(inode));
    return buf;
}

std::string encode_inode(uint64_t inode, bool long_form) {
    if (long_form) return encode(inode, kInodeBase, 0);
    char buf[24];
    std::snprintf(buf, sizeof buf, "%lX", static_cast<unsigned long>(inode));
    return buf;
}

std::optional<ParsedId> parse_id(std::string_view id) {
    ParsedId out;
    size_t sep = id.rfind(kInodeSep);
    if (sep != std::string_view::npos && sep >= kSecPad + kUsecPad) {
        auto sec = decode(id.substr(0, sep - kUsecPad), kTimeBase);
        auto usec = decode(id.substr(sep - kUsecPad, kUsecPad), kTimeBase);
        auto inode = decode(id.substr(sep + 1), kInodeBase);
        if (!sec || !usec || !inode || *usec >= 1000000) return std::nullopt;
        out.long_form = true;
        out.seconds = *sec;
        out.usec = static_cast<uint32_t>(*usec);
        out.inode = *inode;
        return out;
    }
    if (id.size() < 6) return std::nullopt;
    auto usec = decode_hex(id.substr(0, 5));
    auto inode = decode_hex(id.substr(5));
    if (!usec || !inode || *usec >= 1000000) return std::nullopt;
    out.usec = static_cast<uint32_t>(*usec);
    out.inode = *inode;
    return out;
}

std::string hash_source(std::string_view id) {
    size_t sep = id.rfind(kInodeSep);
    if (sep != std::string_view::npos && sep >= kSecPad + kUsecPad) {
        // Postfix hashes long IDs by their microseconds converted to short-ID hex, so
        // both forms of ID land in the same spread of subdirectories.
        auto usec = decode(id.substr(sep - kUsecPad, kUsecPad), kTimeBase);
        char buf[24];
        std::snprintf(buf, sizeof buf, "%05X", static_cast<unsigned>(usec.value_or(0)));
        return buf;
    }
    return std::string(id);
}

bool id_ok(std::string_view id) {
    if (id.empty() || id.size() > 255) return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               c == '_';
    });
}

bool queue_name_ok(std::string_view name) {
    if (name.empty() || name.size() > 100) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    });
}

}  // namespace postern::queue

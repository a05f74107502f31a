// mynetworks-style address lists (Postfix's addr_match_list): "net/len", "[ipv6]/len",
// bare addresses, "!" exclusions, "/file" includes and "type:table" lookups of the
// client address. The first matching entry decides.
#include <arpa/inet.h>

#include <cstring>

#include "smtpd/smtpd_check_internal.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"

namespace postern::smtpd::check {
namespace {

bool parse_address(const std::string& text, int& family, unsigned char* out) {
    if (inet_pton(AF_INET, text.c_str(), out) == 1) {
        family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), out) == 1) {
        family = AF_INET6;
        return true;
    }
    return false;
}

bool prefix_match(const unsigned char* a, const unsigned char* net, unsigned prefix) {
    for (unsigned i = 0; prefix > 0; ++i) {
        unsigned bits = prefix >= 8 ? 8 : prefix;
        unsigned char mask = static_cast<unsigned char>(0xff00u >> bits);
        if ((a[i] & mask) != (net[i] & mask)) return false;
        prefix -= bits;
    }
    return true;
}

}  // namespace

Status NetList::add(NetList& list, std::string_view param, std::string item, int depth) {
    Entry e;
    if (!item.empty() && item.front() == '!') {
        e.negate = true;
        item.erase(0, 1);
    }
    if (!item.empty() && item.front() == '/' && depth < 10) {
        auto text = read_file(item);
        if (!text) return make_error(text.error());
        for (auto line : split_tokens(*text, "\n")) {
            line = trim(line);
            if (line.empty() || line.front() == '#') continue;
            for (auto word : split_tokens(line, ", \t"))
                if (Status st = add(list, param, std::string(word), depth + 1); !st) return st;
        }
        return Status::success();
    }
    if (item.find(':') != std::string::npos && item.front() != '[' &&
        item.find_first_not_of("0123456789abcdefABCDEF:./") != std::string::npos) {
        auto tables = open_tables({item});
        e.table = tables.front();
        list.entries_.push_back(std::move(e));
        return Status::success();
    }
    std::string addr = item, len;
    if (size_t slash = addr.find('/'); slash != std::string::npos) {
        len = addr.substr(slash + 1);
        addr.erase(slash);
    }
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
    if (!parse_address(addr, e.family, e.net))
        return make_error(strprintf("%.*s: bad address pattern: \"%s\"", static_cast<int>(param.size()),
                                    param.data(), item.c_str()));
    unsigned max = e.family == AF_INET ? 32 : 128;
    long n = max;
    if (!len.empty() && (!parse_long(len, n) || n < 0 || n > static_cast<long>(max)))
        return make_error(strprintf("%.*s: bad net/mask pattern: \"%s\"", static_cast<int>(param.size()),
                                    param.data(), item.c_str()));
    e.prefix = static_cast<unsigned>(n);
    list.entries_.push_back(std::move(e));
    return Status::success();
}

Result<NetList> NetList::create(std::string_view param, const std::vector<std::string>& items) {
    NetList list;
    for (const auto& item : items)
        if (Status st = add(list, param, lowercase(item), 0); !st) return make_error(st.error());
    return list;
}

NetList::Match NetList::match(std::string_view address) const {
    std::string a(address);
    unsigned char buf[16];
    int family = 0;
    if (!parse_address(a, family, buf)) return Match::No;
    // An IPv4-mapped IPv6 client matches IPv4 networks, as Postfix normalizes it.
    unsigned char v4[4];
    bool mapped = family == AF_INET6 && std::memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0;
    if (mapped) std::memcpy(v4, buf + 12, 4);
    for (const Entry& e : entries_) {
        bool hit = false;
        if (e.table) {
            auto r = e.table->lookup(a);
            if (r.status == table::LookupResult::Status::Error) return Match::Error;
            hit = r.found();
        } else if (e.family == family) {
            hit = prefix_match(buf, e.net, e.prefix);
        } else if (mapped && e.family == AF_INET) {
            hit = prefix_match(v4, e.net, e.prefix);
        }
        if (hit) return e.negate ? Match::No : Match::Yes;
    }
    return Match::No;
}

}  // namespace postern::smtpd::check

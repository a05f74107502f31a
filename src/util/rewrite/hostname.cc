// Domain syntax as Postfix's valid_hostname.c: labels of letters, digits, '_' and
// inner '-', at most 63 bytes each and 255 in all, and not all-numeric.
#include <arpa/inet.h>

#include <cctype>

#include "util/base/strings.h"
#include "util/rewrite/resolve.h"

namespace postern::rewrite {

bool valid_hostname(std::string_view name) {
    if (name.empty() || name.size() > 255) return false;
    size_t label = 0;
    bool non_numeric = false;
    for (size_t i = 0; i < name.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(name[i]);
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        if (c == '-') {
            if (label == 0) return false;
            non_numeric = true;
        } else if (std::isalpha(c) || c == '_') {
            non_numeric = true;
        } else if (!std::isdigit(c)) {
            return false;
        }
        if (++label > 63) return false;
    }
    if (label == 0 || name.back() == '-') return false;
    return non_numeric;
}

bool valid_hostaddr(std::string_view addr) {
    std::string s(addr);
    unsigned char buf[16];
    if (s.find(':') != std::string::npos) return inet_pton(AF_INET6, s.c_str(), buf) == 1;
    return inet_pton(AF_INET, s.c_str(), buf) == 1;
}

bool valid_mailhost_literal(std::string_view literal) {
    if (literal.size() < 3 || literal.front() != '[' || literal.back() != ']') return false;
    std::string_view inner = literal.substr(1, literal.size() - 2);
    if (istarts_with(inner, "IPv6:")) {
        std::string s(inner.substr(5));
        unsigned char buf[16];
        return inet_pton(AF_INET6, s.c_str(), buf) == 1;
    }
    std::string s(inner);
    unsigned char buf[4];
    return inet_pton(AF_INET, s.c_str(), buf) == 1;
}

}  // namespace postern::rewrite

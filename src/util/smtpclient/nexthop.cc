#include "util/smtpclient/nexthop.h"

#include <netdb.h>

#include <algorithm>

#include "util/base/strings.h"

namespace postern::smtpclient {

namespace {

Result<int> parse_port(std::string_view text, bool lmtp) {
    long n = 0;
    if (parse_long(text, n)) {
        if (n < 1 || n > 65535) return make_error(strprintf("bad port number: %.*s", static_cast<int>(text.size()), text.data()));
        return static_cast<int>(n);
    }
    std::string name(text);
    servent* se = getservbyname(name.c_str(), "tcp");
    if (se == nullptr) {
        if (name == (lmtp ? "lmtp" : "smtp")) return lmtp ? 24 : 25;
        return make_error("unknown service: " + name + "/tcp");
    }
    return static_cast<int>(ntohs(static_cast<uint16_t>(se->s_port)));
}

}  // namespace

Result<NextHop> parse_nexthop(std::string_view text, bool lmtp, int default_port) {
    NextHop hop;
    hop.port = default_port > 0 ? default_port : lmtp ? 24 : 25;
    std::string_view rest = trim(text);
    if (lmtp) {
        if (istarts_with(rest, "unix:")) {
            hop.kind = NextHop::Kind::Unix;
            hop.path = std::string(rest.substr(5));
            if (hop.path.empty()) return make_error("empty pathname in destination: " + std::string(text));
            return hop;
        }
        if (istarts_with(rest, "inet:")) rest.remove_prefix(5);
    }
    if (rest.empty()) return make_error("empty destination");
    std::string_view port;
    if (rest[0] == '[') {
        size_t close = rest.find(']');
        if (close == std::string_view::npos || close == 1)
            return make_error("malformed destination: " + std::string(text));
        hop.host = std::string(rest.substr(1, close - 1));
        std::string_view after = rest.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':' || after.size() == 1) return make_error("malformed destination: " + std::string(text));
            port = after.substr(1);
        }
        if (istarts_with(hop.host, "ipv6:")) hop.host.erase(0, 5);
    } else {
        size_t colon = rest.rfind(':');
        // A bare IPv6 address has more than one colon and no port.
        if (colon != std::string_view::npos && rest.find(':') == colon) {
            port = rest.substr(colon + 1);
            rest = rest.substr(0, colon);
        }
        hop.host = std::string(rest);
        hop.mx_lookup = !lmtp;
    }
    if (hop.host.empty()) return make_error("malformed destination: " + std::string(text));
    if (!port.empty()) {
        auto p = parse_port(port, lmtp);
        if (!p) return make_error(p.error());
        hop.port = *p;
    }
    return hop;
}

std::vector<dns::Mx> order_mx(std::vector<dns::Mx> mx, std::mt19937& rng, int own_preference) {
    if (own_preference >= 0)
        std::erase_if(mx, [&](const dns::Mx& m) { return m.preference >= own_preference; });
    std::shuffle(mx.begin(), mx.end(), rng);
    std::stable_sort(mx.begin(), mx.end(), [](const dns::Mx& a, const dns::Mx& b) { return a.preference < b.preference; });
    return mx;
}

bool is_null_mx(const std::vector<dns::Mx>& mx) {
    return mx.size() == 1 && (mx[0].host == "." || mx[0].host.empty());
}

}  // namespace postern::smtpclient

#include "util/rewrite/resolve_support.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netdb.h>

#include <cctype>
#include <memory>

#include "util/base/strings.h"
#include "util/config/master_cf.h"

namespace postern::rewrite {

std::vector<std::string> list_param(const config::Config& c, std::string_view param) {
    std::vector<std::string> out;
    const std::string value = c.get(param);
    for (std::string_view item : config::split_outside_braces(value, " \t\r\n,"))
        out.emplace_back(item);
    return out;
}

Result<Maps> open_maps(const config::Config& c, std::string_view param) {
    Maps m;
    m.param = std::string(param);
    for (const std::string& spec : list_param(c, param)) {
        auto t = table::open_table(spec, table::kReadOnly | table::kFoldFix);
        if (!t) return make_error(t.error());
        m.tables.push_back(std::shared_ptr<table::Table>(std::move(*t)));
    }
    return m;
}

bool maps_changed(const Maps& m) {
    for (const auto& t : m.tables)
        if (t->changed()) return true;
    return false;
}

table::LookupResult find_in(const Maps& m, const std::vector<access::Probe>& probes) {
    std::vector<table::Table*> tables;
    for (const auto& t : m.tables) tables.push_back(t.get());
    access::Outcome o = access::find(tables, probes);
    if (o.status == access::Outcome::Status::Error)
        return table::LookupResult::fail(o.error.empty() ? o.table + " lookup error" : o.error);
    if (o.found()) return table::LookupResult::hit(o.value);
    return table::LookupResult::miss();
}

std::string strip_extension(std::string_view address, std::string_view delimiters) {
    if (delimiters.empty()) return {};
    size_t at = address.rfind('@');
    std::string_view local = address.substr(0, at);
    std::string_view rest = at == std::string_view::npos ? "" : address.substr(at);
    if (local.empty() || iequals(local, "postmaster") || iequals(local, "mailer-daemon") ||
        iequals(local, "double-bounce"))
        return {};
    if (delimiters.find('-') != std::string_view::npos &&
        (istarts_with(local, "owner-") ||
         (local.size() > 8 && iequals(local.substr(local.size() - 8), "-request"))))
        return {};
    size_t cut = local.find_first_of(delimiters);
    if (cut == 0 || cut == std::string_view::npos) return {};
    return std::string(local.substr(0, cut)) + std::string(rest);
}

std::vector<access::Probe> transport_probes(std::string_view address, std::string_view domain,
                                            std::string_view delimiters, bool parent_style) {
    std::vector<access::Probe> p{{std::string(address), false}};
    std::string bare = strip_extension(address, delimiters);
    if (!bare.empty()) p.push_back({bare, true});
    for (size_t pos = 0; pos < domain.size();) {
        p.push_back({std::string(domain.substr(pos)), true});
        size_t dot = domain.find('.', pos + 1);
        if (dot == std::string_view::npos) break;
        pos = parent_style ? dot + 1 : dot;
    }
    p.push_back({"*", false});
    return p;
}

std::vector<access::Probe> address_probes(std::string_view address, std::string_view delimiters,
                                          bool domain_is_local) {
    std::vector<access::Probe> p{{std::string(address), false}};
    std::string bare = strip_extension(address, delimiters);
    if (!bare.empty()) p.push_back({bare, true});
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) return p;
    if (domain_is_local) {
        p.push_back({std::string(address.substr(0, at)), true});
        if (!bare.empty()) p.push_back({bare.substr(0, bare.rfind('@')), true});
    }
    p.push_back({std::string(address.substr(at)), true});
    return p;
}

std::string normalize_address(std::string_view text) {
    std::string s(text);
    if (istarts_with(s, "ipv6:")) s.erase(0, 5);
    unsigned char buf[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1) return inet_ntop(AF_INET, buf, out, sizeof out);
    if (inet_pton(AF_INET6, s.c_str(), buf) == 1) return inet_ntop(AF_INET6, buf, out, sizeof out);
    return {};
}

namespace {

void add_sockaddr(std::vector<std::string>& out, const sockaddr* sa) {
    char text[INET6_ADDRSTRLEN];
    if (sa == nullptr) return;
    if (sa->sa_family == AF_INET)
        out.push_back(inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, text, sizeof text));
    else if (sa->sa_family == AF_INET6)
        out.push_back(inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, text, sizeof text));
}

void add_all_interfaces(std::vector<std::string>& out) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, freeifaddrs);
    for (ifaddrs* i = list; i; i = i->ifa_next) add_sockaddr(out, i->ifa_addr);
}

// A name or address from inet_interfaces/proxy_interfaces.
void add_named(std::vector<std::string>& out, std::string_view item) {
    std::string s(item);
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
    std::string n = normalize_address(s);
    if (!n.empty()) {
        out.push_back(n);
        return;
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(s.c_str(), nullptr, &hints, &res) != 0) return;
    for (addrinfo* a = res; a; a = a->ai_next) add_sockaddr(out, a->ai_addr);
    freeaddrinfo(res);
}

}  // namespace

std::vector<std::string> interface_addresses(const config::Config& c, bool with_proxy) {
    std::vector<std::string> out;
    for (const std::string& item : list_param(c, "inet_interfaces")) {
        if (iequals(item, "all")) {
            add_all_interfaces(out);
        } else if (iequals(item, "loopback-only")) {
            out.push_back("127.0.0.1");
            out.push_back("::1");
        } else {
            add_named(out, item);
        }
    }
    if (with_proxy)
        for (const std::string& item : list_param(c, "proxy_interfaces")) add_named(out, item);
    return out;
}

}  // namespace postern::rewrite

#include "util/dns/client_names.h"

#include <arpa/inet.h>

#include <cstring>
#include <memory>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"

namespace postern::dns {
namespace {

NameStatus status_of(Rcode rcode) {
    return rcode == Rcode::TempFail ? NameStatus::TempFail : NameStatus::PermFail;
}

struct Lookup {
    Resolver* resolver;
    std::string address;  // canonical
    std::function<void(const ClientNames&)> done;
    ClientNames names;
    bool found = false;
    Rcode worst = Rcode::NotFound;
    int pending = 0;
};

void forward_done(const std::shared_ptr<Lookup>& l) {
    if (--l->pending > 0) return;
    ClientNames& n = l->names;
    if (l->found) {
        n.name = n.reverse_name;
        n.name_status = NameStatus::Ok;
    } else if (l->worst == Rcode::TempFail) {
        n.name_status = NameStatus::TempFail;
        log::warn("hostname %s does not resolve to address %s: Temporary failure in name resolution",
                  n.reverse_name.c_str(), l->address.c_str());
    } else if (l->worst == Rcode::Ok) {
        n.name_status = NameStatus::PermFail;
        log::warn("hostname %s does not resolve to address %s", n.reverse_name.c_str(), l->address.c_str());
    } else {
        n.name_status = NameStatus::PermFail;
        log::warn("hostname %s does not resolve to address %s: Name or service not known",
                  n.reverse_name.c_str(), l->address.c_str());
    }
    l->done(n);
}

}  // namespace

std::string canonical_address(std::string_view address) {
    std::string a(address);
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET6, a.c_str(), buf) == 1) {
        if (std::memcmp(buf, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) {
            inet_ntop(AF_INET, buf + 12, text, sizeof text);
            return text;
        }
        inet_ntop(AF_INET6, buf, text, sizeof text);
        return text;
    }
    return a;
}

void lookup_client_names(Resolver& resolver, std::string_view address, std::function<void(const ClientNames&)> done) {
    auto l = std::make_shared<Lookup>();
    l->resolver = &resolver;
    l->address = canonical_address(address);
    l->done = std::move(done);
    // As Postfix's getnameinfo()/getaddrinfo(): /etc/hosts first, then DNS.
    resolver.host_by_address(l->address, [l](const Answer& a) {
        ClientNames& n = l->names;
        std::string name = a.ok() && !a.records.empty() ? lowercase(a.records.front()) : "";
        if (!name.empty() && name.back() == '.') name.pop_back();
        if (!a.ok()) {
            n.reverse_name_status = n.name_status = status_of(a.rcode);
            return l->done(n);
        }
        // A PTR answer that is not a host name (or looks like an address) is unknown.
        if (!rewrite::valid_hostname(name) || rewrite::valid_hostaddr(name)) {
            log::warn("numeric hostname: %s", name.c_str());
            return l->done(n);
        }
        n.reverse_name = name;
        n.reverse_name_status = NameStatus::Ok;
        bool v6 = l->address.find(':') != std::string::npos;
        l->pending = 1;
        l->resolver->host_by_name(name, v6, [l](const Answer& f) {
            if (f.ok()) {
                for (const auto& rec : f.records)
                    if (canonical_address(rec) == l->address) l->found = true;
                l->worst = Rcode::Ok;
            } else if (l->worst != Rcode::Ok) {
                l->worst = f.rcode == Rcode::TempFail ? Rcode::TempFail : l->worst;
            }
            forward_done(l);
        });
    });
}

}  // namespace postern::dns

#include "util/smtpclient/tls_site_policy.h"

#include <cctype>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"

namespace postern::smtpclient {

namespace {

using tls::ClientLevel;

void mark_invalid(tls::ClientPolicy& p) {
    p.level = ClientLevel::Invalid;
    p.dsn = "4.7.5";
    p.reason = "client TLS configuration problem";
}

// A host name (letters, digits, '-', '_', UTF-8; no empty label), as Postfix's
// valid_utf8_hostname() lets parent-domain lookups happen only for those.
bool plain_domain(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string_view::npos) return false;
    for (unsigned char c : s)
        if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c >= 0x80)) return false;
    return true;
}

Status add_match(tls::ClientPolicy& p, std::string_view value) {
    if (!tls::level_must_match(p.level))
        return make_error("attribute \"match\" is only valid with security levels fingerprint, verify and secure");
    // Fingerprints hold colons: they are separated by "|"; names by ":".
    for (std::string_view m : split_tokens(value, p.level == ClientLevel::Fingerprint ? "|" : ":"))
        p.match.emplace_back(m);
    return {};
}

// "dane"/"dane-only" without the DNSSEC answers DANE needs (see the header).
void dane_fallback(tls::ClientPolicy& p, std::string_view nexthop, bool dnssec_lookups, bool mx_lookup) {
    if (p.level != ClientLevel::Dane && p.level != ClientLevel::DaneOnly) return;
    if (!dnssec_lookups) {
        log::warn("%s: %s configured with dnssec lookups disabled", std::string(nexthop).c_str(),
                  tls::client_level_name(p.level));
        if (p.level == ClientLevel::Dane)
            p.level = ClientLevel::Encrypt;
        else
            mark_invalid(p);
        return;
    }
    if (p.level == ClientLevel::Dane) {
        p.level = ClientLevel::May;
        return;
    }
    p.level = ClientLevel::Invalid;
    p.dsn = "4.7.5";
    // Postfix's words for an unsigned MX answer, and for a host whose TLSA lookup
    // found nothing usable.
    p.reason = mx_lookup ? "non DNSSEC destination" : "no TLSA records found";
}

}  // namespace

Result<tls::ClientPolicy> parse_tls_policy(std::string_view value) {
    tls::ClientPolicy p;
    auto tokens = split_tokens(value, " \t\r\n,");
    if (tokens.empty()) return make_error("empty TLS policy");
    p.level = tls::client_level(tokens[0]);
    if (p.level == ClientLevel::Invalid)
        return make_error("invalid security level \"" + std::string(tokens[0]) + "\"");
    for (size_t i = 1; i < tokens.size(); ++i) {
        std::string_view tok = tokens[i];
        size_t eq = tok.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return make_error("malformed attribute/value pair \"" + std::string(tok) + "\"");
        std::string name = lowercase(tok.substr(0, eq));
        std::string_view val = tok.substr(eq + 1);
        if (name == "match") {
            if (Status st = add_match(p, val); !st) return make_error(st.error());
        } else if (name == "protocols") {
            p.protocols = std::string(val), p.has_protocols = true;
        } else if (name == "ciphers") {
            p.ciphers = std::string(val), p.has_ciphers = true;
        } else if (name == "exclude") {
            p.exclude = std::string(val), p.has_exclude = true;
        } else if (name == "servername") {
            if (!iequals(val, "hostname") && !iequals(val, "nexthop") && !rewrite::valid_hostname(val))
                return make_error("\"servername=" + std::string(val) + "\" specifies an invalid hostname");
            p.servername = std::string(val), p.has_servername = true;
        } else if (name == "tafile") {
            p.tafiles.push_back(std::string(val));
        } else if (name != "connection_reuse") {
            return make_error("invalid attribute name: \"" + name + "\"");
        }
    }
    return p;
}

std::vector<std::string> tls_policy_keys(std::string_view nexthop) {
    std::vector<std::string> keys{std::string(nexthop)};
    if (!plain_domain(nexthop)) return keys;
    for (size_t dot = nexthop.find('.', 1); dot != std::string_view::npos; dot = nexthop.find('.', dot + 1))
        keys.emplace_back(nexthop.substr(dot));
    return keys;
}

tls::ClientPolicy tls_policy_for(std::string_view nexthop, std::string_view domain, const TlsPolicyInputs& in) {
    tls::ClientPolicy p;
    p.level = in.default_level;
    bool found = false;
    for (const std::string& key : tls_policy_keys(nexthop)) {
        for (size_t t = 0; !found && in.maps != nullptr && t < in.maps->size(); ++t) {
            auto r = (*in.maps)[t]->lookup(key);
            if (r.status == table::LookupResult::Status::Error) {
                log::warn("%s: %s lookup error for \"%s\": %s", std::string(in.param).c_str(),
                          (*in.maps)[t]->spec().c_str(), key.c_str(), r.error.c_str());
                mark_invalid(p);
                p.dsn = "4.3.0";
                return p;
            }
            if (!r.found()) continue;
            found = true;
            auto parsed = parse_tls_policy(r.value);
            if (!parsed) {
                log::warn("%s, next-hop destination \"%s\": %s", std::string(in.param).c_str(), key.c_str(),
                          parsed.error().c_str());
                mark_invalid(p);
                return p;
            }
            p = *parsed;
        }
        if (found) break;
    }
    p.nexthop = std::string(domain);
    dane_fallback(p, nexthop, in.dnssec_lookups, in.mx_lookup);
    return p;
}

}  // namespace postern::smtpclient

#include "util/access/access_map.h"

#include <arpa/inet.h>

#include "util/base/strings.h"

namespace postern::access {
namespace {

// Postfix's valid_hostaddr(): numerical names get no parent-domain walk.
bool is_ip_address(std::string_view s) {
    std::string text(s);
    unsigned char buf[16];
    if (text.find(':') != std::string::npos) return inet_pton(AF_INET6, text.c_str(), buf) == 1;
    return inet_pton(AF_INET, text.c_str(), buf) == 1;
}

// Postfix's split_addr(): where the extension starts in `local`, or npos when the
// local part must not be split.
size_t extension_start(std::string_view local, const LookupParams& p) {
    if (p.recipient_delimiter.empty()) return std::string_view::npos;
    if (iequals(local, "postmaster") || iequals(local, "mailer-daemon") ||
        iequals(local, p.double_bounce_sender))
        return std::string_view::npos;
    if (p.owner_request_special && p.recipient_delimiter.find('-') != std::string::npos) {
        if (istarts_with(local, "owner-")) return std::string_view::npos;
        if (local.size() > 8 && iequals(local.substr(local.size() - 8), "-request"))
            return std::string_view::npos;
    }
    size_t pos = local.find_first_of(p.recipient_delimiter);
    if (pos == 0 || pos == std::string_view::npos) return std::string_view::npos;
    return pos;
}

// Postfix's is_822_dot_string(): may the local part go unquoted?
bool is_dot_string(std::string_view local) {
    if (local.empty()) return true;
    if (local.front() == '.' || local.back() == '.') return false;
    for (size_t i = 0; i < local.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(local[i]);
        if (c == '.' && i + 1 < local.size() && local[i + 1] == '.') return false;
        if (c == ' ' || c < 32 || c == 127) return false;
        if (std::string_view("()<>@,;:\\\"[]").find(static_cast<char>(c)) != std::string_view::npos)
            return false;
    }
    return true;
}

// mail_addr_find's find_addr(): the external (quoted) form first, then the internal one.
void add_address_key(std::vector<Probe>& out, const std::string& key, bool partial) {
    std::string quoted = quote_local_part(key);
    if (quoted != key) out.push_back(Probe{quoted, partial});
    out.push_back(Probe{key, partial});
}

}  // namespace

std::string quote_local_part(std::string_view address) {
    size_t at = address.rfind('@');
    std::string_view local = address.substr(0, at);
    if (is_dot_string(local)) return std::string(address);
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('"');
    if (at != std::string_view::npos) out.append(address.substr(at));
    return out;
}

std::vector<Probe> address_probes(std::string_view address, const LookupParams& params) {
    std::vector<Probe> out;
    size_t at = address.rfind('@');
    if (at == std::string_view::npos) return out;
    std::string full(address);
    std::string_view local = address.substr(0, at);
    size_t ext = extension_start(local, params);
    std::string bare;
    if (ext != std::string_view::npos) bare = std::string(local.substr(0, ext)) + full.substr(at);

    add_address_key(out, full, false);
    if (!bare.empty()) add_address_key(out, bare, true);

    // The domain, then its parents: "example.com" or ".example.com" style.
    for (size_t pos = at + 1; pos < full.size();) {
        out.push_back(Probe{full.substr(pos), true});
        size_t next = full.find('.', pos + 1);
        if (next == std::string::npos) break;
        pos = params.parent_matches_subdomains ? next + 1 : next;
    }

    // localpart@, with and without the extension.
    add_address_key(out, full.substr(0, at + 1), true);
    if (!bare.empty()) add_address_key(out, bare.substr(0, ext + 1), true);
    return out;
}

std::vector<Probe> domain_probes(std::string_view name, const LookupParams& params) {
    std::vector<Probe> out;
    if (name.empty()) return out;
    out.push_back(Probe{std::string(name), false});
    if (is_ip_address(name)) return out;
    for (size_t pos = 0;;) {
        size_t next = name.find('.', pos + 1);
        if (next == std::string_view::npos) break;
        pos = params.parent_matches_subdomains ? next + 1 : next;
        if (pos >= name.size()) break;
        out.push_back(Probe{std::string(name.substr(pos)), true});
    }
    return out;
}

std::vector<Probe> ip_probes(std::string_view address) {
    std::vector<Probe> out;
    std::string s(address);
    char delim = s.find(':') != std::string::npos ? ':' : '.';
    out.push_back(Probe{s, false});
    for (size_t cut; (cut = s.rfind(delim)) != std::string::npos;) {
        s.resize(cut);
        out.push_back(Probe{s, true});
    }
    return out;
}

Outcome find(std::span<table::Table* const> tables, const std::vector<Probe>& probes) {
    Outcome out;
    for (const Probe& probe : probes) {
        if (probe.key.empty()) continue;
        for (table::Table* t : tables) {
            if (probe.partial && t->is_pattern()) continue;
            table::LookupResult r = t->lookup(probe.key);
            if (r.status == table::LookupResult::Status::NotFound) continue;
            out.key = probe.key;
            out.table = t->spec();
            if (r.found()) {
                out.status = Outcome::Status::Found;
                out.value = std::move(r.value);
            } else {
                out.status = Outcome::Status::Error;
                out.error = strprintf("%s lookup error for \"%s\"", t->spec().c_str(),
                                      probe.key.c_str());
                if (!r.error.empty()) out.error += ": " + r.error;
            }
            return out;
        }
    }
    return out;
}

Outcome check_client(std::span<table::Table* const> tables, std::string_view hostname,
                     std::string_view address, const LookupParams& params) {
    std::vector<Probe> probes = domain_probes(hostname, params);
    for (Probe& p : ip_probes(address)) probes.push_back(std::move(p));
    return find(tables, probes);
}

Outcome check_address(std::span<table::Table* const> tables, std::string_view address) {
    return find(tables, ip_probes(address));
}

Outcome check_domain(std::span<table::Table* const> tables, std::string_view name,
                     const LookupParams& params) {
    return find(tables, domain_probes(name, params));
}

Outcome check_mail(std::span<table::Table* const> tables, std::string_view address,
                   const LookupParams& params) {
    if (address.empty()) return check_exact(tables, params.null_access_key);
    return find(tables, address_probes(address, params));
}

Outcome check_exact(std::span<table::Table* const> tables, std::string_view key) {
    return find(tables, {Probe{std::string(key), false}});
}

}  // namespace postern::access

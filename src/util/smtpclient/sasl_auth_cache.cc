#include "util/smtpclient/sasl_auth_cache.h"

#include <openssl/evp.h>

#include <vector>

#include "util/base/base64.h"
#include "util/base/strings.h"
#include "util/dsn/dsn_text.h"
#include "util/log/log.h"
#include "util/table/table.h"

namespace postern::smtpclient {

namespace {

constexpr std::string_view kProxy = "proxy:";

// The table for one operation: opened now, closed when the caller is done, so that
// every smtp process sees the others' updates. A table that is not there is created.
Result<std::unique_ptr<table::Table>> open_writable(const std::string& spec) {
    auto t = table::open_table(spec, table::kLock);
    if (t) return t;
    auto created = table::open_table(spec, table::kCreate);
    if (!created) return make_error(created.error());
    if (auto st = (*created)->sync(); !st) return make_error(st.error());
    created->reset();
    return table::open_table(spec, table::kLock);
}

}  // namespace

Result<SaslAuthCache> SaslAuthCache::open(std::string_view name, long ttl) {
    if (name.find_first_of(", \t\r\n") != std::string_view::npos)
        return make_error(strprintf("SASL authentication cache name \"%.*s\" contains multiple values",
                                    static_cast<int>(name.size()), name.data()));
    if (!name.starts_with(kProxy))
        return make_error(strprintf("SASL authentication cache name \"%.*s\" must start with \"proxy:",
                                    static_cast<int>(name.size()), name.data()));
    return SaslAuthCache(std::string(name), std::string(name.substr(kProxy.size())), ttl < 0 ? 0 : ttl);
}

std::string SaslAuthCache::key(std::string_view host, std::string_view user) {
    return std::string(host) + ";" + std::string(user);
}

std::string SaslAuthCache::password_hash(std::string_view password) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(password.data(), password.size(), md, &len, EVP_sha1(), nullptr);
    return base64::encode(std::string_view(reinterpret_cast<const char*>(md), len));
}

std::string SaslAuthCache::value(std::string_view password, std::string_view dsn, std::string_view text,
                                 time_t now) {
    return strprintf("%lu;%s;%.*s;%.*s", static_cast<unsigned long>(now), password_hash(password).c_str(),
                     static_cast<int>(dsn.size()), dsn.data(), static_cast<int>(text.size()), text.data());
}

std::optional<SaslAuthCache::Entry> SaslAuthCache::find(std::string_view host, std::string_view user,
                                                        std::string_view password, time_t now) const {
    auto t = open_writable(spec_);
    std::string k = key(host, user);
    if (!t) {
        log::warn("SASL auth failure map %s: lookup failed for %s", name_.c_str(), k.c_str());
        return std::nullopt;
    }
    auto found = (*t)->lookup(k);
    if (found.status == table::LookupResult::Status::Error)
        log::warn("SASL auth failure map %s: lookup failed for %s", name_.c_str(), k.c_str());
    if (!found.found()) return std::nullopt;
    // "time;hash;dsn;text"
    std::string_view v = found.value;
    std::vector<std::string_view> parts;
    for (int i = 0; i < 3; ++i) {
        size_t semi = v.find(';');
        if (semi == std::string_view::npos) break;
        parts.push_back(v.substr(0, semi));
        v.remove_prefix(semi + 1);
    }
    v = v.substr(0, v.find('\n'));
    long stamp = 0;
    bool ok = parts.size() == 3 && !v.empty() && !parts[1].empty() &&
              parse_long(parts[0], stamp) && stamp >= 0 && dsn::is_status_code(parts[2]);
    if (!ok) log::warn("bad smtp_sasl_auth_cache entry: %.100s", found.value.c_str());
    bool valid = ok && static_cast<time_t>(stamp + ttl_) >= now && parts[1] == password_hash(password);
    if (valid) return Entry{std::string(parts[2]), std::string(v)};
    // Expired, another password, or malformed: forget it.
    auto removed = (*t)->remove(k);
    if (!removed)
        log::warn("SASL auth failure map %s: entry not deleted: %s", name_.c_str(), k.c_str());
    return std::nullopt;
}

void SaslAuthCache::store(std::string_view host, std::string_view user, std::string_view password,
                          std::string_view dsn, std::string_view text, time_t now) const {
    auto t = open_writable(spec_);
    std::string k = key(host, user);
    if (!t) {
        log::warn("SASL auth failure map %s: update failed for %s: %s", name_.c_str(), k.c_str(),
                  t.error().c_str());
        return;
    }
    auto st = (*t)->update(k, value(password, dsn, text, now));
    if (st) st = (*t)->sync();
    if (!st) log::warn("SASL auth failure map %s: update failed for %s: %s", name_.c_str(), k.c_str(),
                       st.error().c_str());
}

}  // namespace postern::smtpclient

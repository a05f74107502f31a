// smtp_sasl_auth_cache_name / smtp_sasl_auth_cache_time: the SASL authentication
// failure cache of smtp(8)/lmtp(8). A server that answered AUTH with 535 is remembered
// per (server host name, user name, password) so that the client does not try the same
// bad password again until the entry expires or the password changes; the mail then
// defers (or bounces, smtp_sasl_auth_soft_bounce = no) with the cached reply.
//
// The table and its entries are Postfix's: key "host;user", value
// "time;base64(SHA1(password));dsn;server reply". Postfix reaches the table through
// proxywrite ("proxy:btree:/var/lib/postfix/sasl_auth_cache"); Postern opens the
// writable table behind "proxy:" itself for each lookup or update (with the table's
// exclusive lock for updates), and creates it when it does not exist yet.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"

namespace postern::smtpclient {

class SaslAuthCache {
public:
    // `name` as configured: "proxy:type:path" (Postfix's requirement); the error reads
    // as Postfix's fatal one otherwise. `ttl`: smtp_sasl_auth_cache_time in seconds.
    static Result<SaslAuthCache> open(std::string_view name, long ttl);

    struct Entry {
        std::string dsn;   // "5.7.8"
        std::string text;  // the server's whole reply ("535 5.7.8 Error: ...")
    };
    // The cached failure for this server, user and password; an expired entry, one for
    // another password, or a malformed one is deleted (malformed: with Postfix's warning).
    std::optional<Entry> find(std::string_view host, std::string_view user, std::string_view password,
                              time_t now) const;
    // Records a 535 reply.
    void store(std::string_view host, std::string_view user, std::string_view password, std::string_view dsn,
               std::string_view text, time_t now) const;

    // The parts, for tests: the key and value formats and the password hash.
    static std::string key(std::string_view host, std::string_view user);
    static std::string value(std::string_view password, std::string_view dsn, std::string_view text, time_t now);
    static std::string password_hash(std::string_view password);

private:
    SaslAuthCache(std::string name, std::string spec, long ttl)
        : name_(std::move(name)), spec_(std::move(spec)), ttl_(ttl) {}
    std::string name_;  // as configured, for warnings
    std::string spec_;  // without "proxy:"
    long ttl_;
};

}  // namespace postern::smtpclient

// Client-side TLS for smtp(8)/lmtp(8): one OpenSSL client context per process from the
// <prefix>_tls_* parameters (CAfile, CApath, protocols, ciphers, client certificate,
// loglevel, session cache), and per connection the security level of the destination
// (Postfix's smtp_tls_security_level or the smtp_tls_policy_maps entry): the protocols
// and ciphers it allows, the names or fingerprints the server certificate must match,
// and after the handshake whether the certificate passed.
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/config/config.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;
typedef struct x509_store_st X509_STORE;

namespace postern::tls {

// Postfix's levels, weakest first. Invalid: a broken policy; delivery defers.
enum class ClientLevel { None, May, Encrypt, Fingerprint, Verify, Secure, Dane, DaneOnly, Invalid };

// "none", "may", ... "dane-only" (case-insensitive); Invalid for anything else.
ClientLevel client_level(std::string_view name);
const char* client_level_name(ClientLevel level);
// TLS must succeed (no plaintext fallback): encrypt and up.
inline bool level_is_mandatory(ClientLevel l) { return l >= ClientLevel::Encrypt; }
// The certificate must match names or fingerprints: fingerprint, verify, secure.
inline bool level_must_match(ClientLevel l) { return l >= ClientLevel::Fingerprint && l <= ClientLevel::Secure; }

// The TLS policy for one destination: the level and what overrides the parameters.
struct ClientPolicy {
    ClientLevel level = ClientLevel::None;
    // match= (or smtp_tls_{verify,secure,fingerprint}_cert_match when empty): names,
    // the words "hostname", "nexthop", "dot-nexthop", or fingerprints.
    std::vector<std::string> match;
    std::string protocols, ciphers, exclude;  // "" = the parameters
    bool has_protocols = false, has_ciphers = false, has_exclude = false;
    // servername= (or <prefix>_tls_servername when unset): the SNI name, "hostname"
    // (the server's name), "nexthop" (the next-hop domain), or "" for none.
    std::string servername;
    bool has_servername = false;
    std::string nexthop;      // the next-hop domain, for "nexthop"/"dot-nexthop"
    // tafile= (one or more): trust anchors instead of <prefix>_tls_trust_anchor_file.
    std::vector<std::string> tafiles;
    std::string dsn, reason;  // Invalid: why delivery defers
};

// What the handshake showed about the server certificate.
struct PeerVerdict {
    bool ok = true;              // the level's requirements hold
    const char* trust = "Anonymous";  // Anonymous / Untrusted / Trusted / Verified
};

class TlsClientContext {
public:
    // prefix: "smtp" or "lmtp". A broken parameter is an error (the caller logs it and
    // sends without TLS).
    static Result<std::unique_ptr<TlsClientContext>> from_config(const config::Config& config,
                                                                 std::string_view prefix);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    // <prefix>_tls_security_level (dane fallbacks not applied).
    ClientLevel level() const { return level_; }
    int log_level() const { return log_level_; }
    // <prefix>_dns_support_level is dnssec (DANE possible in principle).
    bool dnssec_lookups() const { return dnssec_; }

    // A client SSL for `policy` towards server `host` (its name as found: MX host or
    // next hop) at `relay` ("host[addr]:port", the session cache key); nullptr on
    // failure, logged. The caller owns it.
    SSL* new_ssl(const ClientPolicy& policy, std::string_view host, std::string_view relay);
    // After the handshake: checks the certificate as `policy` demands, logs what
    // Postfix logs about it (verification failures; peer details at loglevel 2), and
    // forgets a cached session that failed.
    PeerVerdict check_peer(SSL* ssl, const ClientPolicy& policy, std::string_view relay);

private:
    struct Grade {
        std::string protocols, ciphers;
        std::vector<std::string> exclude;
    };
    struct CachedSession;
    TlsClientContext() = default;
    static int on_new_session(SSL* ssl, SSL_SESSION* session);
    bool apply_protocols_ciphers(SSL* ssl, const ClientPolicy& policy, std::string_view relay) const;
    bool set_match(SSL* ssl, const ClientPolicy& policy, std::string_view host) const;
    bool set_servername(SSL* ssl, const ClientPolicy& policy, std::string_view host, std::string_view relay,
                        std::string* sni) const;
    std::vector<std::string> match_list(const ClientPolicy& policy) const;

    const config::Config* config_ = nullptr;
    SSL_CTX* ctx_ = nullptr;
    ClientLevel level_ = ClientLevel::None;
    int log_level_ = 0;
    bool dnssec_ = false;
    Grade opportunistic_, mandatory_;
    std::vector<std::string> verify_match_, secure_match_, fingerprint_match_;
    std::string digest_ = "sha256";
    std::string servername_;  // <prefix>_tls_servername
    X509_STORE* ta_store_ = nullptr;  // <prefix>_tls_trust_anchor_file, for verify and secure
    std::map<std::string, X509_STORE*> policy_ta_stores_;  // tafile= lists, loaded once
    X509_STORE* trust_anchors(const ClientPolicy& policy);
    // <prefix>_tls_session_cache_database set: sessions kept in this process for
    // <prefix>_tls_session_cache_timeout, by server and policy.
    bool cache_sessions_ = false;
    long cache_timeout_ = 3600;
    std::map<std::string, CachedSession> sessions_;
};

// Postfix's line after a client handshake: "Untrusted TLS connection established to
// host[addr]:port: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
// key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256".
// `trust` overrides the word ("Verified") when not null.
std::string established_to_log_line(SSL* ssl, std::string_view namaddrport, const char* trust = nullptr);

}  // namespace postern::tls

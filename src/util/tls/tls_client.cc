#include "util/tls/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/rewrite/resolve.h"
#include "util/tls/tls_chain.h"
#include "util/tls/tls_policy.h"
#include "util/tls/tls_server.h"

namespace postern::tls {

struct TlsClientContext::CachedSession {
    SSL_SESSION* session = nullptr;
    time_t expires = 0;
};

namespace {

constexpr std::array<const char*, 9> kLevelNames{"none", "may", "encrypt", "fingerprint", "verify",
                                                 "secure", "dane", "dane-only", "invalid"};

// Per SSL: the session cache key and the first certificate error the chain check saw.
struct SslState {
    std::string cache_key;
    int error = 0, error_depth = -1;
    std::string error_issuer;
    bool failed = false;  // the certificate did not pass: never cache the session
    bool trust_anchors = false;  // verified against smtp_tls_trust_anchor_file
};

void free_state(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<SslState*>(ptr); }

int state_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_state);
    return index;
}

SslState* state_of(SSL* ssl) { return static_cast<SslState*>(SSL_get_ex_data(ssl, state_index())); }

// Keeps going whatever the chain looks like (the level decides afterwards, as Postfix
// does), remembering the first error for the log.
int verify_callback(int ok, X509_STORE_CTX* store) {
    if (ok) return 1;
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    SslState* st = ssl != nullptr ? state_of(ssl) : nullptr;
    if (st != nullptr && st->error == 0) {
        st->error = X509_STORE_CTX_get_error(store);
        st->error_depth = X509_STORE_CTX_get_error_depth(store);
        char buf[512] = "";
        if (X509* cert = X509_STORE_CTX_get_current_cert(store))
            X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof buf);
        st->error_issuer = buf;
    }
    return 1;
}

bool untrusted_issuer(int err) {
    return err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           err == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || err == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           err == X509_V_ERR_CERT_UNTRUSTED;
}

// Postfix's tls_log_verify_error() wording.
void log_verify_error(const SslState& st, std::string_view relay) {
    std::string who = st.error_depth > 0 ? "CA" : "server";
    std::string r(relay);
    if (untrusted_issuer(st.error) && st.trust_anchors)
        // Postfix checks trust anchors as DANE TLSA records: no anchor is no TLSA match.
        log::info("CA certificate verification failed for %s: num=%d:%s", r.c_str(), X509_V_ERR_DANE_NO_MATCH,
                  X509_verify_cert_error_string(X509_V_ERR_DANE_NO_MATCH));
    else if (untrusted_issuer(st.error))
        log::info("certificate verification failed for %s: untrusted issuer %s", r.c_str(), st.error_issuer.c_str());
    else if (st.error == X509_V_ERR_CERT_NOT_YET_VALID)
        log::info("%s certificate verification failed for %s: certificate not yet valid", who.c_str(), r.c_str());
    else if (st.error == X509_V_ERR_CERT_HAS_EXPIRED)
        log::info("%s certificate verification failed for %s: certificate has expired", who.c_str(), r.c_str());
    else
        log::info("%s certificate verification failed for %s: num=%d:%s", who.c_str(), r.c_str(), st.error,
                  X509_verify_cert_error_string(st.error));
}

// Trust anchors (CA or server certificates) that replace CAfile/CApath at verify and
// secure; any certificate in the files may end the chain (partial chains).
Result<X509_STORE*> load_trust_anchors(const std::vector<std::string>& files) {
    X509_STORE* store = X509_STORE_new();
    if (store == nullptr) return make_error("cannot create a certificate store");
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    for (const std::string& file : files) {
        if (!X509_STORE_load_file(store, file.c_str())) {
            log_library_errors();
            X509_STORE_free(store);
            return make_error("cannot load trust anchors from " + file);
        }
    }
    return store;
}

// An address is matched against the certificate's IP entries; ".1.2.3.4" is a name.
bool is_ip_literal(std::string_view s) {
    return !s.empty() && s.front() != '.' &&
           (s.find(':') != std::string_view::npos || s.find_first_not_of("0123456789.") == std::string_view::npos);
}

}  // namespace

ClientLevel client_level(std::string_view name) {
    for (size_t i = 0; i + 1 < kLevelNames.size(); ++i)
        if (iequals(name, kLevelNames[i])) return static_cast<ClientLevel>(i);
    return ClientLevel::Invalid;
}

const char* client_level_name(ClientLevel level) { return kLevelNames[static_cast<size_t>(level)]; }

// The context keeps a pointer to `config`: one config object lives as long as the process.
Result<std::unique_ptr<TlsClientContext>> TlsClientContext::from_config(const config::Config& config,
                                                                        std::string_view prefix) {
    std::string p(prefix);
    std::unique_ptr<TlsClientContext> c(new TlsClientContext());
    c->config_ = &config;
    std::string level = config.get(p + "_tls_security_level");
    c->level_ = level.empty() ? ClientLevel::None : client_level(level);
    if (c->level_ == ClientLevel::Invalid) return make_error("invalid " + p + "_tls_security_level: " + level);
    long n = 0;
    if (parse_long(config.get(p + "_tls_loglevel"), n)) c->log_level_ = static_cast<int>(n);
    c->dnssec_ = lowercase(config.get(p + "_dns_support_level")) == "dnssec";
    c->opportunistic_ = {config.get(p + "_tls_protocols"), config.get(p + "_tls_ciphers"),
                         config.get_list(p + "_tls_exclude_ciphers")};
    c->mandatory_ = {config.get(p + "_tls_mandatory_protocols"), config.get(p + "_tls_mandatory_ciphers"),
                     c->opportunistic_.exclude};
    for (auto& ex : config.get_list(p + "_tls_mandatory_exclude_ciphers")) c->mandatory_.exclude.push_back(ex);
    c->verify_match_ = config.get_list(p + "_tls_verify_cert_match");
    c->secure_match_ = config.get_list(p + "_tls_secure_cert_match");
    c->fingerprint_match_ = config.get_list(p + "_tls_fingerprint_cert_match");
    if (std::string d = config.get(p + "_tls_fingerprint_digest"); !d.empty()) c->digest_ = lowercase(d);
    c->servername_ = config.get(p + "_tls_servername");
    c->cache_sessions_ = !config.get(p + "_tls_session_cache_database").empty();
    c->cache_timeout_ = config.get_time(p + "_tls_session_cache_timeout");
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    if (c->ctx_ == nullptr) return make_error("cannot create the TLS client context");
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_NONE, &verify_callback);
    long depth = 0;
    if (parse_long(config.get(p + "_tls_scert_verifydepth"), depth) && depth > 0)
        SSL_CTX_set_verify_depth(c->ctx_, static_cast<int>(depth));
    std::string cafile = config.get(p + "_tls_CAfile"), capath = config.get(p + "_tls_CApath");
    if ((!cafile.empty() || !capath.empty()) &&
        !SSL_CTX_load_verify_locations(c->ctx_, cafile.empty() ? nullptr : cafile.c_str(),
                                       capath.empty() ? nullptr : capath.c_str())) {
        log::warn("cannot load certificate authority data from %s", cafile.empty() ? capath.c_str() : cafile.c_str());
        log_library_errors();
    }
    if (auto tafiles = config.get_list(p + "_tls_trust_anchor_file"); !tafiles.empty()) {
        auto store = load_trust_anchors(tafiles);
        if (!store) return make_error(store.error());
        c->ta_store_ = *store;
    }
    bool chains = false;
    if (Status st = load_chain_files(c->ctx_, config, p, "", chains); !st) {
        log_library_errors();
        return make_error(st.error());
    }
    std::string cert = config.get(p + "_tls_cert_file"), key = config.get(p + "_tls_key_file");
    if (!chains && !cert.empty()) {
        if (key.empty()) key = cert;
        if (SSL_CTX_use_certificate_chain_file(c->ctx_, cert.c_str()) <= 0 ||
            SSL_CTX_use_PrivateKey_file(c->ctx_, key.c_str(), SSL_FILETYPE_PEM) <= 0 ||
            !SSL_CTX_check_private_key(c->ctx_)) {
            log_library_errors();
            return make_error("cannot load client certificate from \"" + cert + "\" and key from \"" + key + "\"");
        }
    }
    if (c->cache_sessions_) {
        SSL_CTX_set_session_cache_mode(c->ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_set_app_data(c->ctx_, c.get());
        SSL_CTX_sess_set_new_cb(c->ctx_, &TlsClientContext::on_new_session);
    }
    return c;
}

TlsClientContext::~TlsClientContext() {
    for (auto& [key, cached] : sessions_) SSL_SESSION_free(cached.session);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (ta_store_ != nullptr) X509_STORE_free(ta_store_);
    for (auto& [files, store] : policy_ta_stores_) X509_STORE_free(store);
}

// OpenSSL hands over a session (for TLS 1.3 when the ticket arrives, after the
// handshake). The cache keeps a copy: a connection that ends without a TLS shutdown
// marks its own session not resumable.
int TlsClientContext::on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<TlsClientContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    SslState* st = state_of(ssl);
    if (self == nullptr || st == nullptr || st->cache_key.empty() || st->failed) return 0;
    SSL_SESSION* copy = SSL_SESSION_dup(session);
    if (copy == nullptr) return 0;
    CachedSession& slot = self->sessions_[st->cache_key];
    if (slot.session != nullptr) SSL_SESSION_free(slot.session);
    slot = {copy, time(nullptr) + self->cache_timeout_};
    return 0;
}

bool TlsClientContext::apply_protocols_ciphers(SSL* ssl, const ClientPolicy& policy, std::string_view relay) const {
    const Grade& g = level_is_mandatory(policy.level) ? mandatory_ : opportunistic_;
    auto range = parse_protocols(policy.has_protocols ? policy.protocols : g.protocols);
    if (!range) {
        log::warn("%s", range.error().c_str());
        return false;
    }
    SSL_set_min_proto_version(ssl, range->min_version);
    SSL_set_max_proto_version(ssl, range->max_version);
    SSL_set_options(ssl, range->no_ops);
    std::vector<std::string> exclude = g.exclude;
    if (policy.has_exclude) exclude.push_back(policy.exclude);
    auto list = cipher_list(*config_, policy.has_ciphers ? policy.ciphers : g.ciphers, exclude);
    if (!list) {
        log::warn("%s", list.error().c_str());
        return false;
    }
    if (!SSL_set_cipher_list(ssl, list->c_str())) {
        log::warn("invalid cipher list \"%s\"", list->c_str());
        log_library_errors();
        return false;
    }
    if (log_level_ >= 2) log::info("%s: TLS cipher list \"%s\"", std::string(relay).c_str(), list->c_str());
    return true;
}

std::vector<std::string> TlsClientContext::match_list(const ClientPolicy& policy) const {
    if (!policy.match.empty()) return policy.match;
    switch (policy.level) {
    case ClientLevel::Verify: return verify_match_;
    case ClientLevel::Secure: return secure_match_;
    case ClientLevel::Fingerprint: return fingerprint_match_;
    default: return {};
    }
}

// verify/secure: the names the certificate must carry, checked by OpenSSL during the
// handshake ("hostname" is the server's name, "nexthop" the destination, "dot-nexthop"
// any name below it; a name starting with "." matches any name below it).
// The SNI name (RFC 6066 section 3): the policy's servername= or <prefix>_tls_servername;
// "hostname" is the server's name, "nexthop" the next-hop domain. None for an empty value
// or an address (RFC 6066 allows no literal addresses); a name that is no valid host
// name is a configuration problem (Postfix defers).
bool TlsClientContext::set_servername(SSL* ssl, const ClientPolicy& policy, std::string_view host,
                                      std::string_view relay, std::string* sni) const {
    std::string name = policy.has_servername ? policy.servername : servername_;
    if (iequals(name, "hostname"))
        name = std::string(host);
    else if (iequals(name, "nexthop"))
        name = policy.nexthop;
    if (name.empty() || rewrite::valid_hostaddr(name)) return true;
    if (!rewrite::valid_hostname(name)) {
        log::warn("%s: TLS SNI name is not a valid hostname: %s", std::string(relay).c_str(), name.c_str());
        return false;
    }
    if (!SSL_set_tlsext_host_name(ssl, name.c_str())) {
        log::warn("%s: error setting SNI hostname to: %s", std::string(relay).c_str(), name.c_str());
        log_library_errors();
        return false;
    }
    *sni = name;
    return true;
}

bool TlsClientContext::set_match(SSL* ssl, const ClientPolicy& policy, std::string_view host) const {
    if (policy.level != ClientLevel::Verify && policy.level != ClientLevel::Secure) return true;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    bool any = false, ip_set = false;
    for (const std::string& word : match_list(policy)) {
        std::string name = iequals(word, "hostname")      ? std::string(host)
                           : iequals(word, "nexthop")     ? policy.nexthop
                           : iequals(word, "dot-nexthop") ? "." + policy.nexthop
                                                          : word;
        if (name.empty() || name == ".") continue;
        if (is_ip_literal(name)) {
            if (!ip_set && X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())) ip_set = any = true;
            continue;
        }
        if (X509_VERIFY_PARAM_add1_host(param, name.c_str(), name.size())) any = true;
    }
    if (!any) log::warn("%s: no names to match the server certificate against", std::string(host).c_str());
    return any;
}

SSL* TlsClientContext::new_ssl(const ClientPolicy& policy, std::string_view host, std::string_view relay) {
    SSL* ssl = ctx_ != nullptr ? SSL_new(ctx_) : nullptr;
    if (ssl == nullptr) {
        log_library_errors();
        return nullptr;
    }
    if (log_level_ >= 2) log::info("setting up TLS connection to %s", std::string(relay).c_str());
    auto* st = new SslState();
    SSL_set_ex_data(ssl, state_index(), st);
    std::string sni;
    if (!apply_protocols_ciphers(ssl, policy, relay) || !set_match(ssl, policy, host) ||
        !set_servername(ssl, policy, host, relay, &sni)) {
        SSL_free(ssl);
        return nullptr;
    }
    if (policy.level == ClientLevel::Verify || policy.level == ClientLevel::Secure) {
        if (!policy.tafiles.empty() && trust_anchors(policy) == nullptr) {
            SSL_free(ssl);
            return nullptr;
        }
        if (X509_STORE* store = trust_anchors(policy)) {
            SSL_set1_verify_cert_store(ssl, store);
            st->trust_anchors = true;
        }
    }
    if (cache_sessions_) {
        st->cache_key = std::string(relay) + "&" + client_level_name(policy.level) + "&" + policy.nexthop + "&" + sni;
        for (const std::string& m : match_list(policy)) st->cache_key += "&" + m;
        auto it = sessions_.find(st->cache_key);
        if (it != sessions_.end() && it->second.expires <= time(nullptr)) {
            SSL_SESSION_free(it->second.session);
            sessions_.erase(it);
        } else if (it != sessions_.end()) {
            SSL_set_session(ssl, it->second.session);
        }
    }
    return ssl;
}

// The policy's tafile= anchors (loaded once per list), else the parameter's; nullptr for
// none or when a tafile= file does not load (logged).
X509_STORE* TlsClientContext::trust_anchors(const ClientPolicy& policy) {
    if (policy.tafiles.empty()) return ta_store_;
    std::string key;
    for (const auto& f : policy.tafiles) key += f + "\n";
    if (auto it = policy_ta_stores_.find(key); it != policy_ta_stores_.end()) return it->second;
    auto store = load_trust_anchors(policy.tafiles);
    if (!store) {
        log::warn("%s", store.error().c_str());
        return nullptr;
    }
    return policy_ta_stores_[key] = *store;
}

PeerVerdict TlsClientContext::check_peer(SSL* ssl, const ClientPolicy& policy, std::string_view relay) {
    PeerVerdict v;
    SslState* st = state_of(ssl);
    std::string r(relay);
    if (log_level_ >= 2 && SSL_session_reused(ssl)) log::info("%s: Reusing old session", r.c_str());
    X509* peer = SSL_get0_peer_certificate(ssl);
    bool trusted = peer != nullptr && SSL_get_verify_result(ssl) == X509_V_OK;
    bool matched = false;
    if (peer != nullptr) {
        v.trust = trusted ? "Trusted" : "Untrusted";
        if (policy.level == ClientLevel::Fingerprint) {
            const EVP_MD* md = EVP_get_digestbyname(digest_.c_str());
            unsigned char buf[EVP_MAX_MD_SIZE];
            unsigned len = 0;
            std::string cert_fp, key_fp;
            if (md != nullptr && X509_digest(peer, md, buf, &len)) cert_fp = hex_fingerprint(buf, len);
            if (md != nullptr && X509_pubkey_digest(peer, md, buf, &len)) key_fp = hex_fingerprint(buf, len);
            for (const std::string& fp : match_list(policy))
                if (iequals(fp, cert_fp) || iequals(fp, key_fp)) matched = true;
            if (!matched) log::info("%s: certificate fingerprint mismatch: %s", r.c_str(), cert_fp.c_str());
        } else if (level_must_match(policy.level)) {
            matched = trusted;  // the names were part of OpenSSL's check
        }
    }
    if (matched) v.trust = "Verified";
    if (log_level_ >= 2 && peer != nullptr) {
        TlsSessionInfo info = session_info(ssl);
        if (matched) log::info("%s: matched peername", r.c_str());
        log::info("%s: subject_CN=%s, issuer_CN=%s, fingerprint=%s, pkey_fingerprint=%s", r.c_str(),
                  info.peer_cn.c_str(), info.issuer_cn.c_str(), info.peer_cert_fingerprint.c_str(),
                  info.peer_pubkey_fingerprint.c_str());
    }
    if (level_must_match(policy.level) && !matched) {
        v.ok = false;
        if (policy.level != ClientLevel::Fingerprint && st != nullptr && st->error != 0) log_verify_error(*st, relay);
        if (st != nullptr) st->failed = true;
        if (st != nullptr && !st->cache_key.empty()) {
            auto it = sessions_.find(st->cache_key);
            if (it != sessions_.end()) {
                SSL_SESSION_free(it->second.session);
                sessions_.erase(it);
            }
        }
    }
    return v;
}

}  // namespace postern::tls

// The server SSL_CTX built from <prefix>_tls_* (Postfix's tls_server_init): keys and
// certificates, client certificate requests, DH/ECDH, session resumption, and the two
// protocol/cipher policies (opportunistic and mandatory) applied per connection.
#include "util/tls/tls_server.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>


#include "util/log/log.h"
#include "util/tls/tls_chain.h"
#include "util/tls/tls_policy.h"

namespace postern::tls {

struct TlsServerContext::Policy {
    ProtocolRange protocols;
    std::string ciphers;
};

namespace {

// Where session_info() finds the context an SSL came from (for the fingerprint digest).
int context_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// The first OpenSSL error as text, for messages that quote it.
std::string library_error() {
    unsigned long e = ERR_peek_last_error();
    if (e == 0) return "";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// The OpenSSL error queue is left for from_config() to log after the message.
Error load_error(std::string text) { return make_error(std::move(text) + ": disabling TLS support"); }

// One key + certificate pair from separate files (smtpd_tls_cert_file/key_file and the
// ECDSA pair); the certificate file may carry the chain after the leaf.
Status load_cert_key(SSL_CTX* ctx, const std::string& cert, const std::string& key, const char* type) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) <= 0)
        return load_error(std::string("cannot get ") + type + " certificate from file \"" + cert + "\"");
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) <= 0)
        return load_error(std::string("cannot get ") + type + " private key from file \"" + key + "\"");
    if (!SSL_CTX_check_private_key(ctx))
        return load_error(std::string(type) + " private key in " + key + " does not match public key in " + cert);
    return {};
}

Status load_certificates(SSL_CTX* ctx, const config::Config& config, const std::string& p) {
    bool chains = false;
    if (Status st = load_chain_files(ctx, config, p, ": disabling TLS support", chains); !st || chains) return st;
    std::string cert = config.get(p + "_tls_cert_file"), eccert = config.get(p + "_tls_eccert_file");
    if (cert.empty() && eccert.empty()) return make_error("No server certs available. TLS won't be enabled");
    if (!cert.empty())
        if (Status st = load_cert_key(ctx, cert, config.get(p + "_tls_key_file"), "RSA"); !st) return st;
    if (!eccert.empty())
        if (Status st = load_cert_key(ctx, eccert, config.get(p + "_tls_eckey_file"), "ECDSA"); !st) return st;
    return {};
}

// CAfile/CApath: trust anchors for client certificates; CAfile's names are also sent in
// the certificate request, as Postfix does.
Status load_trust(SSL_CTX* ctx, const config::Config& config, const std::string& p, bool ask) {
    std::string cafile = config.get(p + "_tls_CAfile"), capath = config.get(p + "_tls_CApath");
    if (!cafile.empty() || !capath.empty()) {
        if (!SSL_CTX_load_verify_locations(ctx, cafile.empty() ? nullptr : cafile.c_str(),
                                           capath.empty() ? nullptr : capath.c_str()))
            return load_error("cannot load Certification Authority data, CAfile=\"" + cafile +
                              "\", CApath=\"" + capath + "\"");
    }
    if (config.get_bool("tls_append_default_CA")) SSL_CTX_set_default_verify_paths(ctx);
    if (ask && !cafile.empty()) {
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cafile.c_str()))
            SSL_CTX_set_client_CA_list(ctx, names);
        ERR_clear_error();
    }
    return {};
}

// Ephemeral key exchange: DH parameters from a file (else OpenSSL's built-in choice) and
// the ECDH groups of smtpd_tls_eecdh_grade.
Status setup_key_exchange(SSL_CTX* ctx, const config::Config& config, const std::string& p) {
    std::string dhfile = config.get(p + "_tls_dh1024_param_file");
    if (dhfile.empty()) {
        SSL_CTX_set_dh_auto(ctx, 1);
    } else {
        BIO* bio = BIO_new_file(dhfile.c_str(), "r");
        EVP_PKEY* dh = bio != nullptr ? PEM_read_bio_Parameters(bio, nullptr) : nullptr;
        BIO_free(bio);
        if (dh == nullptr || !SSL_CTX_set0_tmp_dh_pkey(ctx, dh)) {
            EVP_PKEY_free(dh);
            log::warn("cannot load DH parameters from file %s: using compiled-in defaults", dhfile.c_str());
            log_library_errors();
            SSL_CTX_set_dh_auto(ctx, 1);
        }
    }
    std::string grade = config.get(p + "_tls_eecdh_grade");
    std::string groups;
    if (grade == "strong") {
        groups = config.get("tls_eecdh_strong_curve");
    } else if (grade == "ultra") {
        groups = config.get("tls_eecdh_ultra_curve");
    } else if (grade == "auto") {
        // Unknown names are skipped one by one, as Postfix's tls_auto_eecdh_curves.
        for (const std::string& curve : config.get_list("tls_eecdh_auto_curves")) {
            std::string trial = groups.empty() ? curve : groups + ":" + curve;
            if (SSL_CTX_set1_groups_list(ctx, trial.c_str())) groups = trial;
            ERR_clear_error();
        }
    } else if (grade != "none") {
        return make_error("Invalid TLS eecdh grade \"" + grade + "\": disabling TLS support");
    }
    if (!groups.empty() && !SSL_CTX_set1_groups_list(ctx, groups.c_str()))
        return load_error("failed to use curve list \"" + groups + "\"");
    return {};
}

// A client certificate is asked for, never enforced by the handshake: the session looks at
// the verification result (permit_tls_clientcerts, req_ccert) and logs it.
int accept_any_client_cert(int, X509_STORE_CTX*) { return 1; }

}  // namespace

void log_library_errors() {
    unsigned long e;
    const char *file, *data;
    int line, flags;
    while ((e = ERR_get_error_all(&file, &line, nullptr, &data, &flags)) != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (flags & ERR_TXT_STRING)
            log::warn("TLS library problem: %s:%s:%d:%s:", buf, file, line, data);
        else
            log::warn("TLS library problem: %s:%s:%d:", buf, file, line);
    }
}

TlsServerContext::TlsServerContext() = default;

TlsServerContext::~TlsServerContext() {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

Result<std::unique_ptr<TlsServerContext>> TlsServerContext::from_config(const config::Config& config,
                                                                         std::string_view prefix) {
    ERR_clear_error();
    auto result = build(config, prefix);
    if (!result) {
        // Postfix's order: what failed, then OpenSSL's reasons.
        log::warn("%s", result.error().c_str());
        log_library_errors();
    }
    return result;
}

Result<std::unique_ptr<TlsServerContext>> TlsServerContext::build(const config::Config& config,
                                                                   std::string_view prefix) {
    std::string p(prefix);
    std::unique_ptr<TlsServerContext> self(new TlsServerContext());
    self->ctx_ = SSL_CTX_new(TLS_server_method());
    if (self->ctx_ == nullptr) return load_error("cannot allocate server SSL_CTX");
    SSL_CTX* ctx = self->ctx_;
    SSL_CTX_set_ex_data(ctx, context_index(), self.get());
    self->log_level_ = static_cast<int>(std::strtol(config.get(p + "_tls_loglevel").c_str(), nullptr, 10));
    self->ask_ccert_ = config.get_bool(p + "_tls_ask_ccert") || config.get_bool(p + "_tls_req_ccert");
    self->digest_ = config.get(p + "_tls_fingerprint_digest");
    if (EVP_get_digestbyname(self->digest_.c_str()) == nullptr)
        return make_error("Digest algorithm \"" + self->digest_ + "\" not found: disabling TLS support");

    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (config.get_bool("tls_preempt_cipherlist")) SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (Status st = load_certificates(ctx, config, p); !st) return make_error(st.error());
    if (Status st = load_trust(ctx, config, p, self->ask_ccert_); !st) return make_error(st.error());
    if (Status st = setup_key_exchange(ctx, config, p); !st) return make_error(st.error());
    if (self->ask_ccert_) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE, accept_any_client_cert);
        SSL_CTX_set_verify_depth(ctx, static_cast<int>(config.get_int(p + "_tls_ccert_verifydepth")));
    }

    // Resumption: RFC 5077 tickets under keys OpenSSL makes per SSL_CTX (so per process),
    // plus the in-memory session-ID cache; a timeout of 0 turns both off.
    long timeout = config.get_time(p + "_tls_session_cache_timeout");
    SSL_CTX_set_session_id_context(ctx, reinterpret_cast<const unsigned char*>(p.data()),
                                   static_cast<unsigned>(std::min<size_t>(p.size(), SSL_MAX_SID_CTX_LENGTH)));
    if (timeout > 0) {
        SSL_CTX_set_timeout(ctx, timeout);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_num_tickets(ctx, 0);
    }

    // The two policies. Client certificates rule out anonymous ciphers (Postfix adds aNULL
    // to the exclusions when it asks for one).
    std::vector<std::string> excl{config.get(p + "_tls_exclude_ciphers")};
    if (self->ask_ccert_) excl.push_back("aNULL");
    std::vector<std::string> mexcl = excl;
    mexcl.push_back(config.get(p + "_tls_mandatory_exclude_ciphers"));
    auto make_policy = [&](const char* protos, const char* grade,
                           const std::vector<std::string>& ex) -> Result<std::unique_ptr<Policy>> {
        auto range = parse_protocols(config.get(p + protos));
        if (!range) return make_error(range.error());
        auto ciphers = cipher_list(config, config.get(p + grade), ex);
        if (!ciphers) return make_error(ciphers.error() + ": disabling TLS support");
        if (!SSL_CTX_set_cipher_list(ctx, ciphers->c_str()))
            return load_error("invalid cipher list: \"" + *ciphers + "\"");
        return std::make_unique<Policy>(Policy{*range, *ciphers});
    };
    auto opp = make_policy("_tls_protocols", "_tls_ciphers", excl);
    if (!opp) return make_error(opp.error());
    auto mand = make_policy("_tls_mandatory_protocols", "_tls_mandatory_ciphers", mexcl);
    if (!mand) return make_error(mand.error());
    self->opportunistic_ = std::move(*opp);
    self->mandatory_ = std::move(*mand);
    return self;
}

SSL* TlsServerContext::new_ssl(bool mandatory) const {
    const Policy& policy = mandatory ? *mandatory_ : *opportunistic_;
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) {
        log_library_errors();
        return nullptr;
    }
    bool ok = SSL_set_min_proto_version(ssl, policy.protocols.min_version) &&
              SSL_set_max_proto_version(ssl, policy.protocols.max_version) &&
              SSL_set_cipher_list(ssl, policy.ciphers.c_str());
    SSL_set_options(ssl, policy.protocols.no_ops);
    if (!ok) {
        log::warn("cannot apply TLS protocol and cipher settings: %s", library_error().c_str());
        log_library_errors();
        SSL_free(ssl);
        return nullptr;
    }
    return ssl;
}

// Defined here, beside the ex-data index it reads.
const TlsServerContext* context_of(SSL* ssl) {
    return static_cast<const TlsServerContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), context_index()));
}

}  // namespace postern::tls

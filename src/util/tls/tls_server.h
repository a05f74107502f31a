// Server-side TLS for smtpd (and later pop3d/imapd): one OpenSSL context per process
// built from the <prefix>_tls_* parameters of main.cf (smtpd_tls_cert_file, key_file,
// chain_files, CAfile, protocols, mandatory_protocols, ciphers, mandatory_ciphers,
// exclude_ciphers, security_level, loglevel, session_cache_timeout, dh/eecdh ...), with
// session resumption (RFC 5077 tickets, keys kept for the process life).
//
// The SSL object a session gets from new_ssl() is handed to daemon::Connection::
// start_tls(), which owns it from then on.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/config/config.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace postern::tls {

// Facts about an established TLS session, for logs and the Received: header.
struct TlsSessionInfo {
    std::string protocol;  // "TLSv1.3"
    std::string cipher;    // "TLS_AES_256_GCM_SHA384"
    int cipher_bits = 0, cipher_alg_bits = 0;
    bool peer_cert_present = false, peer_cert_verified = false;
    std::string peer_cn, issuer_cn, peer_cert_fingerprint, peer_pubkey_fingerprint;
    bool reused = false;   // session resumed
    // The server asked for a client certificate (smtpd_tls_ask_ccert / req_ccert).
    bool peer_cert_requested = false;
    // TLS 1.3 key exchange and signatures (Postfix's tls_get_signature_params); empty /
    // 0 when not known (TLS 1.2 and older: Postfix logs none of these).
    std::string kex_name, kex_curve;  // "X25519"; "ECDHE" with curve "prime256v1"
    int kex_bits = 0;                 // "DHE"
    std::string srvr_sig_name, srvr_sig_curve, srvr_sig_dgst;  // "RSA-PSS", "", "SHA256"
    int srvr_sig_bits = 0;
    std::string clnt_sig_name, clnt_sig_curve, clnt_sig_dgst;
    int clnt_sig_bits = 0;
};

class TlsServerContext {
public:
    // prefix: "smtpd" (smtpd_tls_*). An error names the file or parameter in Postfix's
    // words ("cannot get RSA certificate from file \"/x\": disabling TLS support") and is
    // already logged, followed by OpenSSL's "TLS library problem" lines, as Postfix does:
    // the caller only goes on without TLS (no STARTTLS offered).
    static Result<std::unique_ptr<TlsServerContext>> from_config(const config::Config& config,
                                                                 std::string_view prefix);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    // A new server SSL for one connection (nullptr on failure, logged). `mandatory`:
    // use the *_mandatory_protocols/ciphers (security level encrypt).
    SSL* new_ssl(bool mandatory) const;
    SSL_CTX* native() const { return ctx_; }

    // <prefix>_tls_loglevel: 0 nothing, 1 the "TLS connection established" summary, 2 and
    // up also the client certificate details.
    int log_level() const { return log_level_; }
    // <prefix>_tls_ask_ccert (or req_ccert): client certificates are requested.
    bool ask_ccert() const { return ask_ccert_; }
    // <prefix>_tls_fingerprint_digest ("sha256"), used by session_info().
    const std::string& fingerprint_digest() const { return digest_; }

private:
    struct Policy;  // protocols and ciphers for one of the two modes
    TlsServerContext();
    static Result<std::unique_ptr<TlsServerContext>> build(const config::Config& config,
                                                           std::string_view prefix);
    SSL_CTX* ctx_ = nullptr;
    int log_level_ = 0;
    bool ask_ccert_ = false;
    std::string digest_ = "sha256";
    std::unique_ptr<Policy> opportunistic_, mandatory_;
};

// What the established session looks like (call after on_tls_handshake). Fingerprints use
// the digest of the TlsServerContext that made `ssl`.
TlsSessionInfo session_info(SSL* ssl);

// Logs OpenSSL's queued errors as Postfix does ("warning: TLS library problem: ...") and
// clears the queue.
void log_library_errors();

// Postfix's log line after the handshake, e.g. "Anonymous TLS connection established
// from host[addr]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange
// X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256" ("Untrusted" /
// "Trusted" when the client presented a certificate). Postfix logs it when
// <prefix>_tls_loglevel >= 1 (TlsServerContext::log_level()).
std::string established_log_line(const TlsSessionInfo& info, std::string_view namaddr);

// The Received: header's TLS comment (smtpd_tls_received_header = yes), Postfix 3.7's
// wording and layout: "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n
// \t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n
// \t(No client certificate requested)". Lines after the first start with a tab; the
// caller puts it after "from ..." and a "\n\t".
std::string received_clause(const TlsSessionInfo& info);

}  // namespace postern::tls

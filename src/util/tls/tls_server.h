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
};

class TlsServerContext {
public:
    // prefix: "smtpd" (smtpd_tls_*). An error names the parameter and the file.
    static Result<std::unique_ptr<TlsServerContext>> from_config(const config::Config& config,
                                                                 std::string_view prefix);
    ~TlsServerContext();
    TlsServerContext(const TlsServerContext&) = delete;
    TlsServerContext& operator=(const TlsServerContext&) = delete;

    // A new server SSL for one connection (nullptr on failure, logged). `mandatory`:
    // use the *_mandatory_protocols/ciphers (security level encrypt).
    SSL* new_ssl(bool mandatory) const;
    SSL_CTX* native() const { return ctx_; }

private:
    explicit TlsServerContext(SSL_CTX* ctx) : ctx_(ctx) {}
    SSL_CTX* ctx_;
};

TlsSessionInfo session_info(SSL* ssl);

// Postfix's log line after the handshake, e.g. "Anonymous TLS connection established
// from host[addr]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" ("Untrusted"
// / "Trusted" when the client presented a certificate).
std::string established_log_line(const TlsSessionInfo& info, std::string_view namaddr);

// The Received: header's TLS comment (smtpd_tls_received_header = yes): "(using TLSv1.3
// with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange ... ) (No client
// certificate requested)" — Postfix 3.7's wording.
std::string received_clause(const TlsSessionInfo& info);

}  // namespace postern::tls

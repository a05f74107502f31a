// Client-side TLS for smtp(8)/lmtp(8): one OpenSSL client context per process from the
// <prefix>_tls_* parameters (security level, CAfile, CApath, loglevel). For now the
// levels may and encrypt only: the server certificate is checked against the CAs for the
// log line's "Trusted"/"Untrusted", never required to verify.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/config/config.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace postern::tls {

enum class ClientLevel { None, May, Encrypt };

class TlsClientContext {
public:
    // prefix: "smtp" or "lmtp". An unknown or unsupported level is an error (the caller
    // logs it and treats the level as none).
    static Result<std::unique_ptr<TlsClientContext>> from_config(const config::Config& config,
                                                                 std::string_view prefix);
    ~TlsClientContext();
    TlsClientContext(const TlsClientContext&) = delete;
    TlsClientContext& operator=(const TlsClientContext&) = delete;

    ClientLevel level() const { return level_; }
    int log_level() const { return log_level_; }
    // A new client SSL (nullptr on failure, logged). The caller owns it.
    SSL* new_ssl() const;

private:
    TlsClientContext() = default;
    SSL_CTX* ctx_ = nullptr;
    ClientLevel level_ = ClientLevel::None;
    int log_level_ = 0;
};

// Postfix's line after a client handshake: "Untrusted TLS connection established to
// host[addr]:port: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
// key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256".
std::string established_to_log_line(SSL* ssl, std::string_view namaddrport);

}  // namespace postern::tls

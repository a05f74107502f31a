#include "util/tls/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/tls/tls_server.h"

namespace postern::tls {

Result<std::unique_ptr<TlsClientContext>> TlsClientContext::from_config(const config::Config& config,
                                                                        std::string_view prefix) {
    std::string p(prefix);
    std::unique_ptr<TlsClientContext> c(new TlsClientContext());
    std::string level = lowercase(config.get(p + "_tls_security_level"));
    if (level.empty() || level == "none") return c;
    if (level == "may") c->level_ = ClientLevel::May;
    else if (level == "encrypt") c->level_ = ClientLevel::Encrypt;
    else return make_error("unsupported " + p + "_tls_security_level: " + level);
    long n = 0;
    if (parse_long(config.get(p + "_tls_loglevel"), n)) c->log_level_ = static_cast<int>(n);
    c->ctx_ = SSL_CTX_new(TLS_client_method());
    if (c->ctx_ == nullptr) return make_error("cannot create the TLS client context");
    SSL_CTX_set_verify(c->ctx_, SSL_VERIFY_NONE, nullptr);
    std::string cafile = config.get(p + "_tls_CAfile"), capath = config.get(p + "_tls_CApath");
    if ((!cafile.empty() || !capath.empty()) &&
        !SSL_CTX_load_verify_locations(c->ctx_, cafile.empty() ? nullptr : cafile.c_str(),
                                       capath.empty() ? nullptr : capath.c_str())) {
        log::warn("cannot load certificate authority data from %s", cafile.empty() ? capath.c_str() : cafile.c_str());
        log_library_errors();
    }
    return c;
}

TlsClientContext::~TlsClientContext() {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

SSL* TlsClientContext::new_ssl() const {
    SSL* ssl = ctx_ != nullptr ? SSL_new(ctx_) : nullptr;
    if (ssl == nullptr) log_library_errors();
    return ssl;
}

}  // namespace postern::tls

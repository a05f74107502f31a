// <prefix>_tls_chain_files for the server (smtpd) and the client (smtp, lmtp): each
// file holds a private key followed by its certificate chain (Postfix's
// tls_set_my_certificate_key_info); several files for several key types.
#pragma once

#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/config/config.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace postern::tls {

// Loads <prefix>_tls_chain_files into `ctx` when the list is not empty, with Postfix's
// warning when the legacy <prefix>_tls_cert_file, _eccert_file or _dcert_file are set
// too (they are ignored then). `loaded` says whether the list was used. Errors are
// Postfix's texts; a key or certificate error ends with `suffix` (the server's
// ": disabling TLS support"). The OpenSSL error queue is left for the caller to log.
Status load_chain_files(SSL_CTX* ctx, const config::Config& config, const std::string& prefix,
                        std::string_view suffix, bool& loaded);

}  // namespace postern::tls

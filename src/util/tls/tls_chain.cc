#include "util/tls/tls_chain.h"

#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/log/log.h"

namespace postern::tls {

namespace {

Status load_chain_file(SSL_CTX* ctx, const std::string& file, std::string_view suffix) {
    if (FILE* f = std::fopen(file.c_str(), "r"); f == nullptr)
        return make_error("error opening chain file: " + file + ": " + std::strerror(errno));
    else
        std::fclose(f);
    std::string tail(suffix);
    if (SSL_CTX_use_PrivateKey_file(ctx, file.c_str(), SSL_FILETYPE_PEM) <= 0)
        return make_error("error loading private key from " + file + tail);
    if (SSL_CTX_use_certificate_chain_file(ctx, file.c_str()) <= 0)
        return make_error("error loading certificate chain from " + file + tail);
    if (!SSL_CTX_check_private_key(ctx))
        return make_error("private key in " + file + " does not match its certificate" + tail);
    return {};
}

}  // namespace

Status load_chain_files(SSL_CTX* ctx, const config::Config& config, const std::string& p, std::string_view suffix,
                        bool& loaded) {
    std::vector<std::string> chains = config.get_list(p + "_tls_chain_files");
    loaded = !chains.empty();
    if (chains.empty()) return {};
    // Postfix's wording, double spaces included.
    if (!config.get(p + "_tls_cert_file").empty() || !config.get(p + "_tls_eccert_file").empty() ||
        !config.get(p + "_tls_dcert_file").empty())
        log::warn("Both %s_tls_chain_files and one or more of the legacy  %s_tls_cert_file, %s_tls_eccert_file "
                  "or %s_tls_dcert_file are non-empty; the legacy  parameters will be ignored",
                  p.c_str(), p.c_str(), p.c_str(), p.c_str());
    for (const std::string& file : chains)
        if (Status st = load_chain_file(ctx, file, suffix); !st) return st;
    return {};
}

}  // namespace postern::tls

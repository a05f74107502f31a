// What an established server session looks like, and Postfix's texts about it: the
// "TLS connection established" summary (tls_log_summary) and the Received: clause
// (smtpd's TLS comment), including TLS 1.3's key-exchange and signature details
// (tls_get_signature_params).
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "util/tls/tls_policy.h"
#include "util/tls/tls_server.h"
#include "util/tls/tls_client.h"

namespace postern::tls {

namespace {

// OpenSSL's name of an EC key's curve ("prime256v1"), which is what Postfix 3.7 logs.
std::string curve_name(EVP_PKEY* key) {
    char group[80] = "";
    if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr)) return "";
    return group;
}

// "X25519", "ECDHE" with its curve ("prime256v1"), "DHE" with bits.
void key_exchange(SSL* ssl, TlsSessionInfo& info) {
    EVP_PKEY* pkey = nullptr;
    if (!SSL_get_peer_tmp_key(ssl, &pkey) || pkey == nullptr) return;
    int id = EVP_PKEY_get_base_id(pkey);
    if (id == EVP_PKEY_DH) {
        info.kex_name = "DHE";
        info.kex_bits = EVP_PKEY_get_bits(pkey);
    } else if (id == EVP_PKEY_EC) {
        info.kex_name = "ECDHE";
        info.kex_curve = curve_name(pkey);
    } else if (const char* sn = OBJ_nid2sn(id)) {
        info.kex_name = sn;
    }
    EVP_PKEY_free(pkey);
}

// The signature algorithm a certificate's key makes in TLS 1.3: RSA keys sign with
// RSA-PSS; EC keys are "ECDSA" with their curve; Ed25519/Ed448 by name.
void signature(X509* cert, std::string& name, std::string& curve, int& bits) {
    EVP_PKEY* key = cert != nullptr ? X509_get0_pubkey(cert) : nullptr;
    if (key == nullptr) return;
    int id = EVP_PKEY_get_base_id(key);
    if (id == EVP_PKEY_RSA) {
        name = "RSA-PSS";
        bits = EVP_PKEY_get_bits(key);
    } else if (id == EVP_PKEY_EC) {
        name = "ECDSA";
        curve = curve_name(key);
    } else if (const char* sn = OBJ_nid2sn(id)) {
        name = sn;
    }
}

std::string name_entry(X509_NAME* name, int nid) {
    char buf[256];
    int n = name != nullptr ? X509_NAME_get_text_by_NID(name, nid, buf, sizeof buf) : -1;
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

void peer_certificate(SSL* ssl, TlsSessionInfo& info) {
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (peer == nullptr) return;
    info.peer_cert_present = true;
    info.peer_cert_verified = SSL_get_verify_result(ssl) == X509_V_OK;
    info.peer_cn = name_entry(X509_get_subject_name(peer), NID_commonName);
    // Postfix names an issuer without a CN by its organization.
    info.issuer_cn = name_entry(X509_get_issuer_name(peer), NID_commonName);
    if (info.issuer_cn.empty()) info.issuer_cn = name_entry(X509_get_issuer_name(peer), NID_organizationName);
    const TlsServerContext* ctx = context_of(ssl);
    const EVP_MD* md = EVP_get_digestbyname(ctx != nullptr ? ctx->fingerprint_digest().c_str() : "sha256");
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (md != nullptr && X509_digest(peer, md, buf, &len)) info.peer_cert_fingerprint = hex_fingerprint(buf, len);
    if (md != nullptr && X509_pubkey_digest(peer, md, buf, &len))
        info.peer_pubkey_fingerprint = hex_fingerprint(buf, len);
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        signature(peer, info.clnt_sig_name, info.clnt_sig_curve, info.clnt_sig_bits);
        int nid = NID_undef;
        if (!info.clnt_sig_name.empty() && SSL_get_peer_signature_nid(ssl, &nid) && nid != NID_undef)
            info.clnt_sig_dgst = OBJ_nid2sn(nid);
    }
    X509_free(peer);
}

// " (prime256v1)" or " (2048 bits)" after an algorithm name.
void append_size(std::string& out, const std::string& curve, int bits) {
    if (!curve.empty())
        out += " (" + curve + ")";
    else if (bits > 0)
        out += " (" + std::to_string(bits) + " bits)";
}

// " server-signature RSA-PSS (2048 bits) server-digest SHA256" (who: server or client).
std::string signature_text(const char* who, const std::string& name, const std::string& curve, int bits,
                           const std::string& digest) {
    if (name.empty()) return "";
    std::string out = std::string(" ") + who + "-signature " + name;
    append_size(out, curve, bits);
    if (!digest.empty()) out += std::string(" ") + who + "-digest " + digest;
    return out;
}

// " key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256".
std::string kex_and_server_signature(const TlsSessionInfo& info) {
    std::string out;
    if (!info.kex_name.empty()) {
        out += " key-exchange " + info.kex_name;
        append_size(out, info.kex_curve, info.kex_bits);
    }
    return out + signature_text("server", info.srvr_sig_name, info.srvr_sig_curve, info.srvr_sig_bits,
                                info.srvr_sig_dgst);
}

std::string client_signature(const TlsSessionInfo& info) {
    return signature_text("client", info.clnt_sig_name, info.clnt_sig_curve, info.clnt_sig_bits, info.clnt_sig_dgst);
}

std::string cipher_summary(const TlsSessionInfo& info) {
    return info.protocol + " with cipher " + info.cipher + " (" + std::to_string(info.cipher_bits) + "/" +
           std::to_string(info.cipher_alg_bits) + " bits)";
}

}  // namespace

TlsSessionInfo session_info(SSL* ssl) {
    TlsSessionInfo info;
    if (ssl == nullptr) return info;
    info.protocol = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        info.cipher = SSL_CIPHER_get_name(c);
        info.cipher_bits = SSL_CIPHER_get_bits(c, &info.cipher_alg_bits);
    }
    info.reused = SSL_session_reused(ssl) != 0;
    info.peer_cert_requested = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0;
    // Postfix reports key exchange and signatures for TLS 1.3 only.
    if (SSL_version(ssl) >= TLS1_3_VERSION) {
        key_exchange(ssl, info);
        signature(SSL_get_certificate(ssl), info.srvr_sig_name, info.srvr_sig_curve, info.srvr_sig_bits);
        int nid = NID_undef;
        if (!info.srvr_sig_name.empty() && SSL_get_signature_nid(ssl, &nid) && nid != NID_undef)
            info.srvr_sig_dgst = OBJ_nid2sn(nid);
    }
    peer_certificate(ssl, info);
    return info;
}

std::string established_log_line(const TlsSessionInfo& info, std::string_view namaddr) {
    const char* trust = !info.peer_cert_present ? "Anonymous" : info.peer_cert_verified ? "Trusted" : "Untrusted";
    // A resumed session is "established" too (Postfix 3.7 server side).
    return std::string(trust) + " TLS connection established from " +
           std::string(namaddr) + ": " + cipher_summary(info) + kex_and_server_signature(info) +
           client_signature(info);
}

std::string received_clause(const TlsSessionInfo& info) {
    // Postfix puts the server's and the client's details on lines of their own.
    std::string out = "(using " + cipher_summary(info);
    for (const std::string& details : {kex_and_server_signature(info), client_signature(info)})
        if (!details.empty()) out += "\n\t" + details;
    out += ")\n\t";
    if (info.peer_cert_present)
        out += "(Client CN \"" + info.peer_cn + "\", Issuer \"" + info.issuer_cn + "\" (" +
               (info.peer_cert_verified ? "verified OK" : "not verified") + "))";
    else if (info.peer_cert_requested)
        out += "(Client did not present a certificate)";
    else
        out += "(No client certificate requested)";
    return out;
}

std::string established_to_log_line(SSL* ssl, std::string_view namaddrport, const char* trust_word) {
    TlsSessionInfo info = session_info(ssl);
    // Seen from the client the peer is the server: its signature is the server's.
    info.srvr_sig_name = info.clnt_sig_name;
    info.srvr_sig_curve = info.clnt_sig_curve;
    info.srvr_sig_dgst = info.clnt_sig_dgst;
    info.srvr_sig_bits = info.clnt_sig_bits;
    const char* trust = trust_word != nullptr      ? trust_word
                        : !info.peer_cert_present ? "Anonymous"
                        : info.peer_cert_verified ? "Trusted"
                                                  : "Untrusted";
    return std::string(trust) + " TLS connection established to " + std::string(namaddrport) + ": " +
           cipher_summary(info) + kex_and_server_signature(info);
}

}  // namespace postern::tls

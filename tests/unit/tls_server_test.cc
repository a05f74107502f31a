// TLS server: Postfix's protocol and cipher syntax, the log and Received: texts (as Debian's
// Postfix 3.7 writes them), and real handshakes between TlsServerContext and an OpenSSL
// client over an in-memory BIO pair.
#include <catch2/catch.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "util/config/config.h"
#include "util/tls/tls_policy.h"
#include "util/tls/tls_server.h"

using namespace postern;
using namespace postern::tls;

namespace {

config::Config make_config(const std::string& text) {
    auto r = config::Config::from_text(text, "/etc/postern/main.cf", "test");
    REQUIRE(r.ok());
    return std::move(r).value();
}

// A self-signed certificate (RSA 2048 or EC prime256v1) and its key in a temporary
// directory, and both in one file (key first) for smtpd_tls_chain_files.
struct CertFiles {
    std::string dir, cert, key, chain;
    explicit CertFiles(bool ec = false) {
        char tmpl[] = "/tmp/tls_server_test.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        cert = dir + "/cert.pem";
        key = dir + "/key.pem";
        chain = dir + "/chain.pem";
        EVP_PKEY* pkey = ec ? EVP_EC_gen("prime256v1") : EVP_RSA_gen(2048);
        REQUIRE(pkey != nullptr);
        X509* x = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, pkey);
        X509_NAME* name = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("host.example.test"), -1, -1, 0);
        X509_set_issuer_name(x, name);
        REQUIRE(X509_sign(x, pkey, EVP_sha256()) > 0);
        FILE* f = std::fopen(cert.c_str(), "w");
        PEM_write_X509(f, x);
        std::fclose(f);
        f = std::fopen(key.c_str(), "w");
        PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(f);
        f = std::fopen(chain.c_str(), "w");
        PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
        PEM_write_X509(f, x);
        std::fclose(f);
        X509_free(x);
        EVP_PKEY_free(pkey);
    }
    ~CertFiles() {
        unlink(cert.c_str());
        unlink(key.c_str());
        unlink(chain.c_str());
        rmdir(dir.c_str());
    }
    std::string main_cf() const {
        return "smtpd_tls_cert_file = " + cert + "\nsmtpd_tls_key_file = " + key + "\n";
    }
};

const CertFiles& certs() {
    static CertFiles files;  // one RSA key for the whole test run
    return files;
}

// Runs a handshake between `server` and a client made by `client_setup`, moving bytes
// between the two through a BIO pair. Returns true when both ends finished.
bool handshake(SSL* server, SSL* client) {
    BIO *sbio, *cbio;
    REQUIRE(BIO_new_bio_pair(&sbio, 0, &cbio, 0) == 1);
    SSL_set_bio(server, sbio, sbio);
    SSL_set_bio(client, cbio, cbio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);
    bool sdone = false, cdone = false;
    for (int i = 0; i < 20 && !(sdone && cdone); ++i) {
        if (!cdone) {
            int r = SSL_do_handshake(client);
            if (r == 1) cdone = true;
            else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) return false;
        }
        if (!sdone) {
            int r = SSL_do_handshake(server);
            if (r == 1) sdone = true;
            else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) return false;
        }
    }
    // TLS 1.3 tickets arrive after the handshake: let the client read them.
    char buf[1];
    CHECK(SSL_read(client, buf, 1) <= 0);
    ERR_clear_error();
    return sdone && cdone;
}

struct Client {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = nullptr;
    ~Client() {
        SSL_free(ssl);
        SSL_CTX_free(ctx);
    }
    SSL* make() {
        SSL_free(ssl);
        ssl = SSL_new(ctx);
        return ssl;
    }
};

}  // namespace

TEST_CASE("tls protocols: Postfix's syntax becomes a version range with holes", "[tls]") {
    auto r = parse_protocols("!SSLv2, !SSLv3");
    REQUIRE(r.ok());
    CHECK(r->min_version == TLS1_VERSION);
    CHECK(r->max_version == 0);
    CHECK(r->no_ops == 0);

    r = parse_protocols(">=TLSv1.2");
    REQUIRE(r.ok());
    CHECK(r->min_version == TLS1_2_VERSION);
    CHECK(r->max_version == 0);

    r = parse_protocols("TLSv1.2 TLSv1.3");
    REQUIRE(r.ok());
    CHECK(r->min_version == TLS1_2_VERSION);

    r = parse_protocols(">=TLSv1 <=TLSv1.2 !TLSv1.1");
    REQUIRE(r.ok());
    CHECK(r->min_version == TLS1_VERSION);
    CHECK(r->max_version == TLS1_2_VERSION);
    CHECK(r->no_ops == SSL_OP_NO_TLSv1_1);

    r = parse_protocols("");  // empty: everything the library has
    REQUIRE(r.ok());
    CHECK(r->min_version == SSL3_VERSION);

    r = parse_protocols("!TLSv1.4");
    REQUIRE(!r.ok());
    CHECK(r.error() == "Invalid TLS protocol list \"!TLSv1.4\": disabling TLS support");
    CHECK(!parse_protocols("!SSLv3 !TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3").ok());
    CHECK(!parse_protocols(">=TLSv1.4").ok());
}

TEST_CASE("tls ciphers: a grade's list plus exclusions, as Postfix's tls_set_ciphers", "[tls]") {
    auto cfg = make_config("tls_high_cipherlist = HIGH:@STRENGTH\n");
    auto r = cipher_list(cfg, "high", {"aNULL, MD5", "RC4"});
    REQUIRE(r.ok());
    CHECK(*r == "HIGH:@STRENGTH:!aNULL:!MD5:!RC4");
    r = cipher_list(cfg, "MEDIUM", {});
    REQUIRE(r.ok());
    CHECK(*r == "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH");
    CHECK(cipher_list(cfg, "strong", {}).error() == "invalid cipher grade: \"strong\"");
    CHECK(cipher_list(cfg, "high", {"!RC4"}).error() == "invalid unary '!+-@' in cipher exclusion: \"!RC4\"");
}

TEST_CASE("tls fingerprints are colon-separated upper-case hex", "[tls]") {
    const unsigned char bytes[] = {0x00, 0xab, 0x7f};
    CHECK(hex_fingerprint(bytes, 3) == "00:AB:7F");
    CHECK(hex_fingerprint(bytes, 0).empty());
}

TEST_CASE("tls texts: the summary line and the Received: clause of Postfix 3.7", "[tls]") {
    TlsSessionInfo info;
    info.protocol = "TLSv1.3";
    info.cipher = "TLS_AES_256_GCM_SHA384";
    info.cipher_bits = info.cipher_alg_bits = 256;
    info.kex_name = "X25519";
    info.srvr_sig_name = "RSA-PSS";
    info.srvr_sig_bits = 2048;
    info.srvr_sig_dgst = "SHA256";
    CHECK(established_log_line(info, "localhost[127.0.0.1]") ==
          "Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher "
          "TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS "
          "(2048 bits) server-digest SHA256");
    CHECK(received_clause(info) ==
          "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
          "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\n"
          "\t(No client certificate requested)");

    info.peer_cert_requested = true;
    CHECK(received_clause(info).ends_with("\n\t(Client did not present a certificate)"));
    info.peer_cert_present = true;
    info.peer_cn = "client.example.test";
    info.issuer_cn = "Test CA";
    info.clnt_sig_name = "ECDSA";
    info.clnt_sig_curve = "prime256v1";
    info.clnt_sig_dgst = "SHA256";
    CHECK(established_log_line(info, "c[192.0.2.1]").starts_with("Untrusted TLS connection established from c[192.0.2.1]"));
    CHECK(established_log_line(info, "c").ends_with(" client-signature ECDSA (prime256v1) client-digest SHA256"));
    CHECK(received_clause(info) ==
          "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\n"
          "\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256\n"
          "\t client-signature ECDSA (prime256v1) client-digest SHA256)\n"
          "\t(Client CN \"client.example.test\", Issuer \"Test CA\" (not verified))");
    info.peer_cert_verified = true;
    CHECK(established_log_line(info, "c").starts_with("Trusted TLS connection established from c: "));
    CHECK(received_clause(info).ends_with("(verified OK))"));

    // TLS 1.2: Postfix names neither key exchange nor signatures.
    TlsSessionInfo old;
    old.protocol = "TLSv1.2";
    old.cipher = "ECDHE-RSA-AES256-GCM-SHA384";
    old.cipher_bits = old.cipher_alg_bits = 256;
    CHECK(established_log_line(old, "h[a]") ==
          "Anonymous TLS connection established from h[a]: TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits)");
    CHECK(received_clause(old) ==
          "(using TLSv1.2 with cipher ECDHE-RSA-AES256-GCM-SHA384 (256/256 bits))\n\t(No client certificate requested)");
}

TEST_CASE("tls handshake: TLS 1.3 facts, resumption by ticket, TLS 1.2 without details", "[tls]") {
    auto cfg = make_config(certs().main_cf() + "smtpd_tls_loglevel = 1\n");
    auto ctx = TlsServerContext::from_config(cfg, "smtpd");
    REQUIRE(ctx.ok());
    CHECK((*ctx)->log_level() == 1);
    CHECK(!(*ctx)->ask_ccert());
    Client client;

    SSL* server = (*ctx)->new_ssl(false);
    REQUIRE(server != nullptr);
    REQUIRE(handshake(server, client.make()));
    TlsSessionInfo info = session_info(server);
    CHECK(info.protocol == "TLSv1.3");
    CHECK(info.cipher == "TLS_AES_256_GCM_SHA384");
    CHECK(info.cipher_bits == 256);
    CHECK(info.cipher_alg_bits == 256);
    CHECK(info.kex_name == "X25519");
    CHECK(info.srvr_sig_name == "RSA-PSS");
    CHECK(info.srvr_sig_bits == 2048);
    CHECK(info.srvr_sig_dgst == "SHA256");
    CHECK(!info.peer_cert_present);
    CHECK(!info.peer_cert_requested);
    CHECK(!info.reused);
    SSL_SESSION* sess = SSL_get1_session(client.ssl);
    REQUIRE(sess != nullptr);
    CHECK(SSL_SESSION_has_ticket(sess) == 1);
    // OpenSSL forgets a session whose SSL is freed before close_notify went out.
    SSL_shutdown(client.ssl);
    SSL_free(server);

    // The same process resumes the session from its ticket.
    server = (*ctx)->new_ssl(false);
    SSL_set_session(client.make(), sess);
    REQUIRE(handshake(server, client.ssl));
    info = session_info(server);
    CHECK(SSL_session_reused(client.ssl) == 1);
    CHECK(info.reused);
    CHECK(info.srvr_sig_dgst.empty());  // nothing signed on resumption, as Postfix logs
    SSL_SESSION_free(sess);
    SSL_free(server);

    SSL_CTX_set_max_proto_version(client.ctx, TLS1_2_VERSION);
    server = (*ctx)->new_ssl(false);
    REQUIRE(handshake(server, client.make()));
    info = session_info(server);
    CHECK(info.protocol == "TLSv1.2");
    CHECK(info.cipher == "ECDHE-RSA-AES256-GCM-SHA384");
    CHECK(info.kex_name.empty());
    CHECK(info.srvr_sig_name.empty());
    SSL_free(server);
}

TEST_CASE("tls handshake: ECDSA key from eccert_file or chain_files, ECDHE key exchange", "[tls]") {
    static CertFiles ec(true);
    Client client;
    SSL_CTX_set1_groups_list(client.ctx, "P-256");
    for (const std::string& main_cf :
         {"smtpd_tls_eccert_file = " + ec.cert + "\nsmtpd_tls_eckey_file = " + ec.key + "\n",
          "smtpd_tls_chain_files = " + ec.chain + "\n"}) {
        auto ctx = TlsServerContext::from_config(make_config(main_cf), "smtpd");
        REQUIRE(ctx.ok());
        SSL* server = (*ctx)->new_ssl(false);
        REQUIRE(handshake(server, client.make()));
        TlsSessionInfo info = session_info(server);
        CHECK(info.kex_name == "ECDHE");
        CHECK(info.kex_curve == "prime256v1");
        CHECK(info.srvr_sig_name == "ECDSA");
        CHECK(info.srvr_sig_curve == "prime256v1");
        CHECK(info.srvr_sig_bits == 0);
        CHECK(established_log_line(info, "h[a]").ends_with(
            "key-exchange ECDHE (prime256v1) server-signature ECDSA (prime256v1) server-digest SHA256"));
        SSL_free(server);
    }
}

TEST_CASE("tls handshake: mandatory protocols apply to new_ssl(true) only", "[tls]") {
    auto cfg = make_config(certs().main_cf() + "smtpd_tls_mandatory_protocols = >=TLSv1.3\n");
    auto ctx = TlsServerContext::from_config(cfg, "smtpd");
    REQUIRE(ctx.ok());
    Client client;
    SSL_CTX_set_max_proto_version(client.ctx, TLS1_2_VERSION);
    SSL* server = (*ctx)->new_ssl(true);
    CHECK(!handshake(server, client.make()));
    SSL_free(server);
    ERR_clear_error();
    server = (*ctx)->new_ssl(false);
    CHECK(handshake(server, client.make()));
    SSL_free(server);
}

TEST_CASE("tls handshake: a requested client certificate gives fingerprints", "[tls]") {
    auto cfg = make_config(certs().main_cf() + "smtpd_tls_ask_ccert = yes\ncompatibility_level = 3.6\n");
    auto ctx = TlsServerContext::from_config(cfg, "smtpd");
    REQUIRE(ctx.ok());
    CHECK((*ctx)->ask_ccert());
    Client client;
    // The client presents the server's own self-signed certificate: untrusted, but present.
    REQUIRE(SSL_CTX_use_certificate_file(client.ctx, certs().cert.c_str(), SSL_FILETYPE_PEM) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey_file(client.ctx, certs().key.c_str(), SSL_FILETYPE_PEM) == 1);
    SSL* server = (*ctx)->new_ssl(false);
    REQUIRE(handshake(server, client.make()));
    TlsSessionInfo info = session_info(server);
    CHECK(info.peer_cert_requested);
    CHECK(info.peer_cert_present);
    CHECK(!info.peer_cert_verified);
    CHECK(info.peer_cn == "host.example.test");
    CHECK(info.issuer_cn == "host.example.test");
    CHECK(info.peer_cert_fingerprint.size() == 32 * 3 - 1);  // sha256, "AB:CD:..."
    CHECK(info.peer_pubkey_fingerprint.size() == 32 * 3 - 1);
    CHECK(info.peer_cert_fingerprint != info.peer_pubkey_fingerprint);
    CHECK(info.clnt_sig_name == "RSA-PSS");
    CHECK(info.clnt_sig_dgst == "SHA256");
    SSL_free(server);

    // Below compatibility level 3.6 the fingerprint digest is md5, as Postfix's.
    auto old = TlsServerContext::from_config(make_config(certs().main_cf() + "smtpd_tls_ask_ccert = yes\n"), "smtpd");
    REQUIRE(old.ok());
    CHECK((*old)->fingerprint_digest() == "md5");
    server = (*old)->new_ssl(false);
    REQUIRE(handshake(server, client.make()));
    CHECK(session_info(server).peer_cert_fingerprint.size() == 16 * 3 - 1);
    SSL_free(server);
}

TEST_CASE("tls setup errors name the file or setting in Postfix's words", "[tls]") {
    auto r = TlsServerContext::from_config(make_config("smtpd_tls_cert_file = /nonexistent/c.pem\n"), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "cannot get RSA certificate from file \"/nonexistent/c.pem\": disabling TLS support");
    r = TlsServerContext::from_config(
        make_config("smtpd_tls_cert_file = " + certs().cert + "\nsmtpd_tls_key_file = /nonexistent/k.pem\n"), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "cannot get RSA private key from file \"/nonexistent/k.pem\": disabling TLS support");
    r = TlsServerContext::from_config(make_config("smtpd_tls_chain_files = /nonexistent/chain.pem\n"), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "error opening chain file: /nonexistent/chain.pem: No such file or directory");
    r = TlsServerContext::from_config(make_config(""), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "No server certs available. TLS won't be enabled");
    r = TlsServerContext::from_config(make_config(certs().main_cf() + "smtpd_tls_protocols = TLSv9\n"), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "Invalid TLS protocol list \"TLSv9\": disabling TLS support");
    r = TlsServerContext::from_config(make_config(certs().main_cf() + "smtpd_tls_ciphers = bogus\n"), "smtpd");
    REQUIRE(!r.ok());
    CHECK(r.error() == "invalid cipher grade: \"bogus\": disabling TLS support");
}

// What an SMTP session knows about its client and its current transaction: the one
// record that the protocol code (session), the restriction engine, the Received: header,
// the log lines and the cleanup envelope all read. The session fills it in as commands
// arrive; nobody else writes it. (Postfix keeps the same facts in SMTPD_STATE.)
#pragma once

#include <string>
#include <vector>

namespace postern::smtpd {

// reverse/forward name lookups of the client address, as Postfix's client_name_status:
// unknown names are "unknown" with a temporary or permanent status.
enum class NameStatus { Ok, TempFail, PermFail };

struct ClientFacts {
    std::string name = "unknown";          // verified hostname (forward-confirmed) or "unknown"
    std::string reverse_name = "unknown";  // PTR name, not verified
    NameStatus name_status = NameStatus::PermFail;
    NameStatus reverse_name_status = NameStatus::PermFail;
    std::string address;                   // "192.0.2.1" or "2001:db8::1" (no brackets)
    std::string port;                      // client port
    std::string server_address, server_port;  // our side of the connection
    // "host[addr]" as every log line shows it (Postfix's state->namaddr).
    std::string namaddr() const { return name + "[" + address + "]"; }
};

struct TlsFacts {
    bool active = false;
    std::string protocol;        // "TLSv1.3"
    std::string cipher;          // "TLS_AES_256_GCM_SHA384"
    int cipher_bits = 0, cipher_alg_bits = 0;
    bool peer_cert_present = false;
    bool peer_cert_verified = false;  // chain verified against smtpd_tls_CAfile/CApath
    std::string peer_cn, issuer_cn;
    std::string peer_cert_fingerprint;    // smtpd_tls_fingerprint_digest, "AB:CD:..."
    std::string peer_pubkey_fingerprint;
};

struct SaslFacts {
    std::string method;    // "PLAIN" ("" = not authenticated)
    std::string username;  // as Cyrus SASL canonicalised it
    std::string sender;    // MAIL FROM AUTH=<...> parameter, "" if none
    bool authenticated() const { return !method.empty(); }
};

// One accepted RCPT TO (with its DSN parameters, RFC 3461).
struct RecipientFacts {
    std::string address;    // internal (unquoted) form
    std::string orig;       // as the client wrote it inside <>
    std::string dsn_orcpt;  // "rfc822;user@example.com" or ""
    long notify = 0;        // mail_proto.h kNotify* mask, 0 = not given
};

struct TransactionFacts {
    bool mail_given = false;
    std::string sender;     // internal form; "" = null sender <>
    std::string sender_orig;
    long size = 0;          // SIZE= parameter (0 = not given)
    std::string body_type;  // "7BIT", "8BITMIME", "BINARYMIME" or ""
    bool smtputf8 = false;
    std::string envid;      // ENVID= (xtext-decoded)
    long ret = 0;           // mail_proto.h kRet* (0 = not given)
    std::string queue_id;   // once cleanup opened the queue file ("NOQUEUE" in logs before)
    std::vector<RecipientFacts> recipients;  // accepted so far
    // The RCPT TO being checked right now (its address is not yet in recipients).
    std::string recipient;
    std::string recipient_orig;
};

struct SessionFacts {
    ClientFacts client;
    std::string service_name;  // master.cf service ("smtpd", "submission" ...): anvil ident, logs
    std::string helo_name;     // "" until HELO/EHLO
    std::string protocol = "SMTP";  // "SMTP", "ESMTP" (+S for TLS, +A for AUTH as Postfix)
    TlsFacts tls;
    SaslFacts sasl;
    TransactionFacts transaction;
    std::string etrn_domain;   // the argument of the ETRN being checked
    // reject_unauth_pipelining: the client sent more commands before our reply to a
    // command where pipelining is not allowed (no EHLO, or before the greeting).
    bool improper_pipelining = false;
};

}  // namespace postern::smtpd

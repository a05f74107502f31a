// postconf -m, -l, -a, -A and -T: what this build supports.
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "postconf/postconf.h"
#include "util/log/log.h"
#include "util/table/table.h"

namespace postern::postconf {

std::string show_table_types() {
    std::string out;
    for (std::string_view t : table::table_types()) {
        out += t;
        out += '\n';
    }
    return out;
}

// The mailbox locking methods deliver agents implement (mailbox_delivery_lock).
std::string show_lock_methods() { return "flock\nfcntl\ndotlock\n"; }

// smtpd speaks to Cyrus SASL and to a Dovecot-protocol auth socket; the client side
// (smtp_sasl_type) has Cyrus only. Names and order are Postfix's.
std::string show_sasl_types(bool server) { return server ? "cyrus\ndovecot\n" : "cyrus\n"; }

std::string show_tls(const std::string& what) {
    if (what == "compile-version") return std::string(OPENSSL_VERSION_TEXT) + "\n";
    if (what == "run-version") return std::string(OpenSSL_version(OPENSSL_VERSION)) + "\n";
    if (what == "public-key-algorithms")
        log::fatal("'postconf -T public-key-algorithms' is not supported by Postern");
    log::warn("unknown 'postconf -T' mode: %s", what.c_str());
    std::exit(1);
}

}  // namespace postern::postconf

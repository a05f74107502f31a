// smtp(8)/lmtp(8) settings: the smtp_* parameters, or their lmtp_* twins when the
// program runs as lmtp (Postfix's one binary, two parameter families).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "util/config/config.h"
#include "util/dsn/status_filter.h"
#include "util/message/message_parser.h"
#include "util/rewrite/match_list.h"
#include "util/sasl/sasl_options.h"
#include "util/smtpclient/sasl_auth_cache.h"
#include "util/table/table.h"
#include "util/tls/tls_client.h"

namespace postern::smtp {

struct Settings {
    bool lmtp = false;
    std::string helo_name;          // smtp_helo_name / lmtp_lhlo_name
    long connect_timeout = 30, helo_timeout = 300, mail_timeout = 300, rcpt_timeout = 300;
    long data_init_timeout = 120, data_xfer_timeout = 180, data_done_timeout = 600;
    long quit_timeout = 300, starttls_timeout = 300, rset_timeout = 20;
    // Connection cache (connection_cache.h): on demand (qmgr's backlog hint) and for the
    // listed destinations; the idle time, and how long and how often a connection serves.
    bool cache_on_demand = true;
    rewrite::MatchList cache_destinations;
    long cache_time_limit = 2, reuse_time_limit = 300, reuse_count_limit = 0;
    // The TLS client context (nullptr: TLS unusable); the level of a destination comes
    // from smtp_tls_policy_maps, else smtp_tls_security_level (smtpclient::tls_policy_for).
    std::shared_ptr<tls::TlsClientContext> tls;
    std::vector<std::shared_ptr<table::Table>> tls_policy_maps;
    // smtp_tls_wrappermode: TLS right after the connect (SMTPS), for destinations whose
    // level is encrypt or stronger; helpful_warnings: the port-465 hint without it.
    bool tls_wrappermode = false;
    bool helpful_warnings = true;
    // smtp_sasl_auth_enable with smtp_sasl_password_maps ("user:password" per sender,
    // server name or next hop; see util/smtpclient/sasl_client.h); CRAM-MD5, PLAIN and
    // LOGIN as smtp_sasl_security_options (smtp_sasl_tls_security_options after
    // STARTTLS, smtp_sasl_tls_verified_security_options when the certificate matched)
    // and smtp_sasl_mechanism_filter allow.
    bool sasl_enable = false;
    std::vector<std::shared_ptr<table::Table>> sasl_passwords;
    // sasl::SecurityFlag bits: before TLS, over TLS, over TLS with a matched certificate.
    unsigned sasl_options = 0, sasl_tls_options = 0, sasl_tls_verified_options = 0;
    sasl::MechanismFilter sasl_mech_filter;
    bool sasl_soft_bounce = true;  // smtp_sasl_auth_soft_bounce
    // smtp_sasl_auth_cache_name (with smtp_sasl_auth_cache_time): 535 failures remembered.
    std::shared_ptr<const smtpclient::SaslAuthCache> sasl_auth_cache;
    // smtp_sender_dependent_authentication (SMTP only): the sender's keys come first;
    // mydestination and recipient_delimiter shape them as mail_addr_find does.
    bool sender_dependent_auth = false;
    rewrite::MatchList mydestination;
    std::string recipient_delimiter;
    bool skip_5xx_greeting = true;
    std::string bind_address, bind_address6;
    bool ipv4 = true, ipv6 = true;  // inet_protocols
    std::string address_preference = "any";  // ipv4, ipv6, any
    int lmtp_port = 24;             // lmtp_tcp_port
    std::string myhostname;
    size_t line_limit = 998;        // smtp_line_length_limit / lmtp_line_length_limit
    // !disable_mime_output_conversion: 8-bit MIME content to a server without 8BITMIME
    // becomes quoted-printable, the MIME structure read within these limits.
    bool mime_output_conversion = true;
    message::ParserLimits mime_limits;
    // smtp_chunking_enable / lmtp_chunking_enable (Postern only): the content goes with
    // BDAT (RFC 3030) to a server that offers CHUNKING, instead of DATA.
    bool chunking = false;
    int delay_digits = 2;
    dsn::StatusFilter status_filter;
    std::vector<std::string> fallback_relays;  // smtp_fallback_relay (SMTP and LMTP over TCP)
    std::string fallback_param = "smtp_fallback_relay";  // smtp_delivery_status_filter and soft_bounce           // delay_logging_resolution_limit
    // Protocol words for texts: "SMTP"/"LMTP", "EHLO"/"LHLO".
    const char* ehlo_verb() const { return lmtp ? "LHLO" : "EHLO"; }
};

Settings load_settings(const config::Config& config, bool lmtp);

}  // namespace postern::smtp

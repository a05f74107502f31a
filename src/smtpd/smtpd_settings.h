// smtpd's main.cf parameters, read once per process (after the -o overrides of the
// master.cf service are applied), so the per-command code never parses configuration.
#pragma once

#include <memory>
#include <vector>

#include "util/table/table.h"

#include <set>
#include <string>

#include "smtpd/smtpd_reader.h"
#include "util/config/config.h"

namespace postern::smtpd {

struct Settings {
    std::string myhostname;
    std::string mail_name;   // in Received: (Postern unless main.cf sets mail_name)
    std::string banner;      // smtpd_banner, expanded
    std::string queue_directory;
    std::string service_name;
    long ipc_timeout = 3600;
    long line_length_limit = 2048;
    long message_size_limit = 10240000;
    long recipient_limit = 1000;
    long timeout = 300;
    long starttls_timeout = 300;
    long hard_error_limit = 20;
    long soft_error_limit = 10;
    long error_sleep_time = 1;
    long junk_command_limit = 100;
    bool helo_required = false;
    bool disable_vrfy = false;
    bool strict_rfc821 = false;
    bool broken_sasl_auth_clients = false;
    bool tls_received_header = false;
    bool sasl_authenticated_header = false;
    bool sasl_auth_enable = false;
    bool tls_auth_only = false;
    bool tls_wrappermode = false;
    bool peername_lookup = true;
    bool smtputf8_enable = true;
    bool strict_smtputf8 = false;
    bool delay_open = true;  // smtpd_delay_open_until_valid_rcpt
    std::string tls_level;   // "", "none", "may", "encrypt"
    BareLf bare_lf = BareLf::Allow;
    long bare_lf_code = 550;  // smtpd_forbid_bare_newline_reject_code
    std::set<std::string> discard_ehlo;  // lowercase keywords
    // smtpd_reject_footer (raw: only the session's $client_address etc. are expanded)
    // and smtpd_reject_footer_maps (indexed by the whole 4xx/5xx reply).
    std::string reject_footer;
    std::vector<std::shared_ptr<table::Table>> reject_footer_maps;

    static Settings load(const config::Config& c, const std::string& service_name);
    bool tls_offered() const { return tls_level == "may" || tls_level == "encrypt"; }
    bool keyword(const char* name) const { return discard_ehlo.count(name) == 0; }
};

}  // namespace postern::smtpd

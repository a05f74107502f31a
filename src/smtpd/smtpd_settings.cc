#include "smtpd/smtpd_settings.h"

#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::smtpd {

Settings Settings::load(const config::Config& c, const std::string& service_name) {
    Settings s;
    s.myhostname = c.get("myhostname");
    // As cleanup's Received: for local mail: the mail system is Postern unless configured.
    s.mail_name = c.is_set("mail_name") ? c.get("mail_name") : "Postern";
    s.banner = c.get("smtpd_banner");
    s.queue_directory = c.get("queue_directory");
    s.service_name = service_name;
    s.ipc_timeout = c.get_time("ipc_timeout");
    s.line_length_limit = c.get_int("line_length_limit");
    s.message_size_limit = c.get_int("message_size_limit");
    s.recipient_limit = c.get_int("smtpd_recipient_limit");
    s.timeout = c.get_time("smtpd_timeout");
    s.starttls_timeout = c.get_time("smtpd_starttls_timeout");
    s.hard_error_limit = c.get_int("smtpd_hard_error_limit");
    s.soft_error_limit = c.get_int("smtpd_soft_error_limit");
    s.error_sleep_time = c.get_time("smtpd_error_sleep_time");
    s.junk_command_limit = c.get_int("smtpd_junk_command_limit");
    s.helo_required = c.get_bool("smtpd_helo_required");
    s.disable_vrfy = c.get_bool("disable_vrfy_command");
    s.strict_rfc821 = c.get_bool("strict_rfc821_envelopes");
    s.broken_sasl_auth_clients = c.get_bool("broken_sasl_auth_clients");
    s.tls_received_header = c.get_bool("smtpd_tls_received_header");
    s.sasl_authenticated_header = c.get_bool("smtpd_sasl_authenticated_header");
    s.sasl_auth_enable = c.get_bool("smtpd_sasl_auth_enable");
    s.tls_auth_only = c.get_bool("smtpd_tls_auth_only");
    s.tls_wrappermode = c.get_bool("smtpd_tls_wrappermode");
    s.peername_lookup = c.get_bool("smtpd_peername_lookup");
    s.smtputf8_enable = c.get_bool("smtputf8_enable");
    s.strict_smtputf8 = c.get_bool("strict_smtputf8");
    s.delay_open = c.get_bool("smtpd_delay_open_until_valid_rcpt");
    s.tls_level = lowercase(c.get("smtpd_tls_security_level"));
    if (s.tls_level.empty() && c.get_bool("smtpd_enforce_tls")) s.tls_level = "encrypt";
    if (s.tls_level.empty() && c.get_bool("smtpd_use_tls")) s.tls_level = "may";
    std::string bare = lowercase(c.get("smtpd_forbid_bare_newline"));
    if (bare == "normalize" || bare == "yes") s.bare_lf = BareLf::Normalize;
    else if (bare == "reject") s.bare_lf = BareLf::Reject;
    s.bare_lf_code = c.get_int("smtpd_forbid_bare_newline_reject_code");
    for (const std::string& k : c.get_list("smtpd_discard_ehlo_keywords")) s.discard_ehlo.insert(lowercase(k));
    s.reject_footer = c.raw("smtpd_reject_footer").value_or("");
    for (const std::string& spec : c.get_list("smtpd_reject_footer_maps")) {
        auto t = table::open_table(spec);
        if (t)
            s.reject_footer_maps.push_back(std::shared_ptr<table::Table>(std::move(*t)));
        else
            log::warn("%s", t.error().c_str());
    }
    return s;
}

}  // namespace postern::smtpd

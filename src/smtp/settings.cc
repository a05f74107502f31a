#include "smtp/settings.h"

#include <algorithm>

#include "util/base/strings.h"
#include "util/log/log.h"

namespace postern::smtp {

namespace {

// The tables of a list parameter; one that cannot be opened is logged and left out.
std::vector<std::shared_ptr<table::Table>> open_maps(const config::Config& config, const std::string& name) {
    std::vector<std::shared_ptr<table::Table>> out;
    for (const auto& spec : config.get_list(name)) {
        auto t = table::open_table(spec);
        if (t)
            out.push_back(std::move(*t));
        else
            log::warn("%s", t.error().c_str());
    }
    return out;
}

// A broken SASL setting is a fatal configuration error, as Postfix's client finds it
// when it starts authenticating.
void load_sasl(const config::Config& config, const std::string& p, Settings& s) {
    if (config.get(p + "sasl_password_maps").empty())
        log::fatal("specify a password table via the `%ssasl_password_maps' configuration parameter", p.c_str());
    s.sasl_passwords = open_maps(config, p + "sasl_password_maps");
    for (auto [name, flags] : {std::pair{p + "sasl_security_options", &s.sasl_options},
                               std::pair{p + "sasl_tls_security_options", &s.sasl_tls_options},
                               std::pair{p + "sasl_tls_verified_security_options", &s.sasl_tls_verified_options}}) {
        auto parsed = sasl::parse_security_options(config.get_list(name), config.get(name));
        if (!parsed) log::fatal("%s", parsed.error().c_str());
        *flags = *parsed;
    }
    auto filter = sasl::MechanismFilter::open(config.get_list(p + "sasl_mechanism_filter"),
                                              p + "sasl_mechanism_filter");
    if (!filter) log::fatal("%s", filter.error().c_str());
    s.sasl_mech_filter = std::move(*filter);
    s.sasl_soft_bounce = config.get_bool(p + "sasl_auth_soft_bounce");
    if (std::string name = config.get(p + "sasl_auth_cache_name"); !name.empty()) {
        auto cache = smtpclient::SaslAuthCache::open(name, config.get_time(p + "sasl_auth_cache_time"));
        if (!cache) log::fatal("%s", cache.error().c_str());
        s.sasl_auth_cache = std::make_shared<const smtpclient::SaslAuthCache>(std::move(*cache));
    }
    s.sender_dependent_auth = !s.lmtp && config.get_bool("smtp_sender_dependent_authentication");
    if (s.sender_dependent_auth) {
        auto local = rewrite::MatchList::create("mydestination", config.get_list("mydestination"),
                                                rewrite::MatchStyle::String);
        if (local)
            s.mydestination = std::move(*local);
        else
            log::warn("%s", local.error().c_str());
        s.recipient_delimiter = config.get("recipient_delimiter");
    }
}

}  // namespace

Settings load_settings(const config::Config& config, bool lmtp) {
    Settings s;
    s.lmtp = lmtp;
    std::string p = lmtp ? "lmtp_" : "smtp_";
    s.helo_name = config.get(lmtp ? "lmtp_lhlo_name" : "smtp_helo_name");
    s.connect_timeout = config.get_time(p + "connect_timeout");
    s.helo_timeout = config.get_time(lmtp ? "lmtp_lhlo_timeout" : "smtp_helo_timeout");
    s.mail_timeout = config.get_time(p + "mail_timeout");
    s.rcpt_timeout = config.get_time(p + "rcpt_timeout");
    s.data_init_timeout = config.get_time(p + "data_init_timeout");
    s.data_xfer_timeout = config.get_time(p + "data_xfer_timeout");
    s.data_done_timeout = config.get_time(p + "data_done_timeout");
    s.quit_timeout = config.get_time(p + "quit_timeout");
    s.starttls_timeout = config.get_time(p + "starttls_timeout");
    s.rset_timeout = config.get_time(p + "rset_timeout");
    s.cache_on_demand = config.get_bool(p + "connection_cache_on_demand");
    auto dests = rewrite::MatchList::create(p + "connection_cache_destinations",
                                            config.get_list(p + "connection_cache_destinations"),
                                            rewrite::MatchStyle::String);
    if (dests)
        s.cache_destinations = std::move(*dests);
    else
        log::warn("%s", dests.error().c_str());
    s.cache_time_limit = config.get_time(p + "connection_cache_time_limit");
    s.reuse_time_limit = config.get_time(p + "connection_reuse_time_limit");
    s.reuse_count_limit = config.get_int(p + "connection_reuse_count_limit");
    auto tls = tls::TlsClientContext::from_config(config, lmtp ? "lmtp" : "smtp");
    if (tls)
        s.tls = std::move(*tls);
    else
        log::warn("%s -- TLS is not used", tls.error().c_str());
    s.tls_policy_maps = open_maps(config, p + "tls_policy_maps");
    s.tls_wrappermode = config.get_bool(p + "tls_wrappermode");
    s.helpful_warnings = config.get_bool("helpful_warnings");
    s.skip_5xx_greeting = config.get_bool(p + "skip_5xx_greeting");
    s.bind_address = config.get(p + "bind_address");
    s.bind_address6 = config.get(p + "bind_address6");
    s.address_preference = lowercase(config.get(p + "address_preference"));
    long port = 0;
    if (lmtp && parse_long(config.get("lmtp_tcp_port"), port) && port > 0 && port < 65536)
        s.lmtp_port = static_cast<int>(port);
    s.ipv4 = s.ipv6 = false;
    for (const auto& proto : config.get_list("inet_protocols")) {
        std::string v = lowercase(proto);
        if (v == "all") s.ipv4 = s.ipv6 = true;
        if (v == "ipv4") s.ipv4 = true;
        if (v == "ipv6") s.ipv6 = true;
    }
    if (!s.ipv4 && !s.ipv6) s.ipv4 = true;
    s.sasl_enable = config.get_bool(p + "sasl_auth_enable");
    if (s.sasl_enable) load_sasl(config, p, s);
    s.myhostname = config.get("myhostname");
    s.line_limit = static_cast<size_t>(std::max(0L, config.get_int(p + "line_length_limit")));
    s.mime_output_conversion = !config.get_bool("disable_mime_output_conversion");
    s.mime_limits.header_size_limit = static_cast<size_t>(config.get_int("header_size_limit"));
    s.mime_limits.mime_nesting_limit = static_cast<size_t>(config.get_int("mime_nesting_limit"));
    s.mime_limits.mime_boundary_length_limit =
        static_cast<size_t>(config.get_int("mime_boundary_length_limit"));
    s.chunking = config.get_bool(p + "chunking_enable");
    s.status_filter = dsn::StatusFilter::from_config(config, p + "delivery_status_filter");
    s.fallback_param = p + "fallback_relay";
    s.fallback_relays = config.get_list(s.fallback_param);
    s.delay_digits = static_cast<int>(config.get_int("delay_logging_resolution_limit"));
    return s;
}

}  // namespace postern::smtp

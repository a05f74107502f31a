#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/config/param_registry.h"

using namespace postern;
using postern::config::ParamDef;
using postern::config::ParamType;

namespace {

// The values a default can take: the literal itself, or for a conditional such as
// ${stress?{1}:{20}} or ${{$compatibility_level} <level {1} ? {yes} : {no}} every
// branch (the {...} after '?' or ':'), following $name references through the registry.
// A reference to a name the registry does not hold (a legacy name such as
// $smtp_per_record_deadline) contributes nothing.
void default_values(std::string_view text, std::vector<std::string>& out, int depth = 0) {
    REQUIRE(depth < 10);
    if (text.find('$') == std::string_view::npos) {
        out.emplace_back(text);
        return;
    }
    std::string_view ref = text.substr(1);
    if (ref.size() > 2 && ref.front() == '{' && ref.back() == '}') ref = ref.substr(1, ref.size() - 2);
    if (text.front() == '$' && !ref.empty() &&
        ref.find_first_of("${}?: ") == std::string_view::npos) {
        if (const ParamDef* p = config::find_param(ref)) default_values(p->default_value, out, depth + 1);
        return;
    }
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '?' && text[i] != ':') continue;
        size_t open = text.find_first_not_of(' ', i + 1);
        if (open == std::string_view::npos || text[open] != '{') continue;
        int level = 0;
        size_t close = open;
        for (; close < text.size(); ++close) {
            if (text[close] == '{') ++level;
            if (text[close] == '}' && --level == 0) break;
        }
        REQUIRE(close < text.size());
        default_values(text.substr(open + 1, close - open - 1), out, depth + 1);
    }
}

std::vector<std::string> values_of(const ParamDef& p) {
    std::string_view text = p.default_value;
    if (p.type == ParamType::Time) {
        INFO(p.name << " = " << text);
        REQUIRE(!text.empty());
        REQUIRE(text.back() == p.time_unit);
        text.remove_suffix(1);
    }
    std::vector<std::string> out;
    default_values(text, out);
    return out;
}

long unit_seconds(char unit) {
    switch (unit) {
        case 's': return 1;
        case 'm': return 60;
        case 'h': return 3600;
        case 'd': return 86400;
        case 'w': return 7 * 86400;
    }
    FAIL("bad time unit " << unit);
    return 0;
}

}  // namespace

TEST_CASE("parameter registry is sorted by name with no duplicates") {
    auto reg = config::param_registry();
    for (size_t i = 1; i < reg.size(); ++i) {
        INFO(reg[i - 1].name << " before " << reg[i].name);
        CHECK(reg[i - 1].name < reg[i].name);
    }
}

TEST_CASE("parameter registry holds at least 400 parameters") {
    CHECK(config::param_registry().size() >= 400);
}

TEST_CASE("find_param finds every registered name and nothing else") {
    for (const ParamDef& p : config::param_registry()) {
        const ParamDef* found = config::find_param(p.name);
        REQUIRE(found == &p);
    }
    CHECK(config::find_param("no_such_parameter") == nullptr);
    CHECK(config::find_param("") == nullptr);
    CHECK(config::find_param("mydestinatio") == nullptr);
    CHECK(config::find_param("zzz") == nullptr);
}

TEST_CASE("registry holds every parameter a Postfix and Dovecot admin's main.cf uses") {
    const char* core[] = {
        "myhostname", "mydomain", "myorigin", "mydestination", "mynetworks", "mynetworks_style",
        "inet_interfaces", "inet_protocols", "relayhost", "relay_domains", "alias_maps",
        "alias_database", "home_mailbox", "mail_spool_directory", "mailbox_command",
        "message_size_limit", "mailbox_size_limit", "queue_directory", "command_directory",
        "daemon_directory", "data_directory", "mail_owner", "setgid_group", "default_privs",
        "recipient_delimiter", "compatibility_level", "config_directory",
        "smtpd_banner", "smtpd_recipient_restrictions", "smtpd_relay_restrictions",
        "smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
        "smtpd_data_restrictions", "smtpd_end_of_data_restrictions", "smtpd_etrn_restrictions",
        "smtpd_tls_cert_file", "smtpd_tls_key_file", "smtpd_tls_security_level",
        "smtpd_sasl_auth_enable", "smtpd_sasl_type", "smtpd_sasl_path",
        "smtp_tls_security_level", "smtp_sasl_auth_enable", "smtp_sasl_password_maps",
        "lmtp_tls_security_level", "virtual_mailbox_domains", "virtual_mailbox_maps",
        "virtual_alias_maps", "virtual_alias_domains", "virtual_mailbox_base",
        "virtual_uid_maps", "virtual_gid_maps", "virtual_transport", "local_transport",
        "local_recipient_maps", "minimal_backoff_time", "maximal_backoff_time",
        "maximal_queue_lifetime", "bounce_queue_lifetime", "queue_run_delay",
        "delay_warning_time", "header_checks", "body_checks", "canonical_maps",
        "sender_canonical_maps", "recipient_canonical_maps", "masquerade_domains",
        "default_destination_concurrency_limit", "default_destination_recipient_limit",
        "initial_destination_concurrency", "local_destination_recipient_limit",
        "notify_classes", "2bounce_notice_recipient", "bounce_notice_recipient",
        "default_process_limit", "max_idle", "max_use", "service_throttle_time",
        "transport_maps", "relay_recipient_maps", "address_verify_map",
        "smtpd_client_connection_count_limit", "smtpd_client_connection_rate_limit",
        "smtpd_client_message_rate_limit", "syslog_name", "syslog_facility", "maillog_file",
        "parent_domain_matches_subdomains", "default_database_type", "swap_bangpath",
        "allow_percent_hack", "mail_version", "smtputf8_enable", "soft_bounce",
    };
    for (const char* name : core) {
        INFO(name);
        CHECK(config::find_param(name) != nullptr);
    }
}

TEST_CASE("subsystems Postern does not have stay out of the registry") {
    for (const ParamDef& p : config::param_registry()) {
        INFO(p.name);
        CHECK_FALSE(p.name.starts_with("postscreen_"));
        CHECK_FALSE(p.name.starts_with("tlsproxy_"));
        CHECK_FALSE(p.name.starts_with("dnsblog_"));
    }
}

TEST_CASE("every numeric default parses and lies within the parameter's bounds") {
    int checked = 0;
    for (const ParamDef& p : config::param_registry()) {
        if (p.type != ParamType::Int && p.type != ParamType::Long && p.type != ParamType::Time)
            continue;
        INFO(p.name << " = " << p.default_value);
        auto values = values_of(p);
        REQUIRE(!values.empty());
        for (const std::string& v : values) {
            INFO("value " << v);
            long n = 0;
            REQUIRE(parse_long(v, n));
            if (p.type == ParamType::Time) n *= unit_seconds(p.time_unit);
            CHECK(n >= p.min);
            if (p.max != 0) CHECK(n <= p.max);
            ++checked;
        }
    }
    CHECK(checked > 150);
}

TEST_CASE("time parameters use Postfix's units and name their default unit") {
    const ParamDef* life = config::find_param("maximal_queue_lifetime");
    REQUIRE(life);
    CHECK(life->type == ParamType::Time);
    CHECK(life->time_unit == 'd');  // a bare "5" means five days, as in Postfix
    CHECK(life->default_value == "5d");
    const ParamDef* backoff = config::find_param("minimal_backoff_time");
    REQUIRE(backoff);
    CHECK(backoff->time_unit == 's');
    CHECK(backoff->default_value == "300s");
    const ParamDef* warn = config::find_param("delay_warning_time");
    REQUIRE(warn);
    CHECK(warn->time_unit == 'h');
    for (const ParamDef& p : config::param_registry()) {
        INFO(p.name);
        CHECK(std::string_view("smhdw").find(p.time_unit) != std::string_view::npos);
    }
}

TEST_CASE("every boolean default is yes or no, directly or in each branch") {
    for (const ParamDef& p : config::param_registry()) {
        if (p.type != ParamType::Bool) continue;
        INFO(p.name << " = " << p.default_value);
        auto values = values_of(p);
        REQUIRE(!values.empty());
        for (const std::string& v : values) CHECK((v == "yes" || v == "no"));
    }
}

TEST_CASE("bounds are consistent and defaults satisfy them") {
    // Empty defaults that Postfix nevertheless requires to be set when a program reads
    // them: myhostname is derived at run time, virtual_mailbox_base is needed only by
    // virtual(8), debugger_command only by a daemon started with -D.
    const std::set<std::string_view> set_when_used = {"myhostname", "virtual_mailbox_base",
                                                      "debugger_command"};
    int nonempty = 0;
    for (const ParamDef& p : config::param_registry()) {
        INFO(p.name << " = " << p.default_value);
        CHECK(p.min >= 0);
        if (p.max != 0) CHECK(p.max >= p.min);
        if (p.type == ParamType::Bool) {
            CHECK(p.min == 0);
            CHECK(p.max == 0);
        }
        bool textual = p.type == ParamType::String || p.type == ParamType::List ||
                       p.type == ParamType::Raw;
        if (!textual || set_when_used.count(p.name)) continue;
        CHECK(static_cast<long>(p.default_value.size()) >= p.min);
        if (p.max != 0) CHECK(static_cast<long>(p.default_value.size()) <= p.max);
        if (p.min > 0) ++nonempty;
    }
    CHECK(nonempty > 100);
    // Spot checks against Postfix's tables.
    CHECK(config::find_param("smtpd_recipient_limit")->min == 1);
    CHECK(config::find_param("qmgr_fudge_factor")->min == 10);
    CHECK(config::find_param("qmgr_fudge_factor")->max == 100);
    CHECK(config::find_param("in_flow_delay")->max == 10);
    CHECK(config::find_param("line_length_limit")->min == 512);
    CHECK(config::find_param("mail_owner")->min == 1);
    CHECK(config::find_param("default_verp_delimiters")->min == 2);
    CHECK(config::find_param("default_verp_delimiters")->max == 2);
    CHECK(config::find_param("relayhost")->min == 0);
}

TEST_CASE("delivery-time macros live in parameters that are not expanded at startup") {
    for (const char* name : {"forward_path", "mailbox_command", "luser_relay",
                             "command_execution_directory", "default_rbl_reply",
                             "smtpd_reject_footer", "smtpd_expansion_filter"}) {
        INFO(name);
        const ParamDef* p = config::find_param(name);
        REQUIRE(p);
        CHECK(p->type == ParamType::Raw);
    }
}

TEST_CASE("every parameter has a one-line description") {
    for (const ParamDef& p : config::param_registry()) {
        INFO(p.name);
        CHECK(!p.description.empty());
        CHECK(p.description.find('\n') == std::string_view::npos);
        CHECK(p.description.size() < 120);
    }
}

TEST_CASE("every typed default evaluates through Config to a valid value") {
    config::Config cfg;  // defaults only, as a daemon with an empty main.cf sees them
    for (const ParamDef& p : config::param_registry()) {
        INFO(p.name << " = " << p.default_value);
        if (p.type == ParamType::Int || p.type == ParamType::Long) {
            auto v = cfg.try_get_int(p.name);
            CHECK(v.ok());
        } else if (p.type == ParamType::Time) {
            auto v = cfg.try_get_time(p.name);
            CHECK(v.ok());
        } else if (p.type == ParamType::Bool) {
            auto v = cfg.try_get_bool(p.name);
            CHECK(v.ok());
        }
    }
    // Values Postfix 3.7 computes for an empty main.cf (compatibility_level 0, no stress).
    CHECK(cfg.get_time("maximal_queue_lifetime") == 5 * 86400);
    CHECK(cfg.get_time("minimal_backoff_time") == 300);
    CHECK(cfg.get_time("smtpd_timeout") == 300);
    CHECK(cfg.get_time("delay_warning_time") == 0);
    CHECK(cfg.get_int("smtpd_hard_error_limit") == 20);
    CHECK(cfg.get_int("message_size_limit") == 10240000);
    CHECK(cfg.get_bool("append_dot_mydomain"));
    CHECK_FALSE(cfg.get_bool("smtputf8_enable"));
    CHECK_FALSE(cfg.get_bool("smtp_per_request_deadline"));
}

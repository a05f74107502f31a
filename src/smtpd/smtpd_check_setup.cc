// Building an engine from main.cf: settings, the compiled restriction lists and
// smtpd_restriction_classes, and the tables behind recipient validation. Done once per
// smtpd process, before the session loop (and before a chroot, for the tables).
#include <event2/event.h>

#include "smtpd/smtpd_check_internal.h"
#include "util/base/strings.h"
#include "util/dns/resolver.h"
#include "util/ipc/rewrite_client.h"
#include "util/log/log.h"
#include "util/rewrite/resolve_support.h"

namespace postern::smtpd::check {
namespace {

bool in_list(const std::vector<std::string>& list, std::string_view name) {
    for (const auto& item : list)
        if (item == name) return true;
    return false;
}

// A list that can refuse relaying (Postfix's smtpd_check_init test).
bool has_relay_control(const RestrictionList& list) {
    for (const auto& r : list) {
        static const char* const kNames[] = {"reject_unauth_destination", "defer_unauth_destination", "reject",
                                             "defer", "defer_if_permit", "check_relay_domains"};
        for (const char* n : kNames)
            if (r.name == n) return true;
    }
    return false;
}

}  // namespace

std::vector<std::string> split_restrictions(std::string_view value) {
    std::vector<std::string> out;
    std::string cur;
    int depth = 0;
    for (char c : value) {
        if (c == '{') ++depth;
        if (c == '}' && depth > 0) --depth;
        if (depth == 0 && (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',')) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
            continue;
        }
        cur += c;
    }
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

namespace {

// A *_tempfail_action: "defer" or "defer_if_permit" (Postfix's tempfail_actions[]).
bool tempfail_defers_now(const config::Config& c, const char* name) {
    std::string value = c.get(name);
    std::string v = lowercase(value);
    if (v == "defer") return true;
    if (v != "defer_if_permit") log::fatal("bad configuration: %s = %s", name, value.c_str());
    return false;
}

Settings load_settings(const config::Config& c) {
    Settings s;
    s.delay_reject = c.get_bool("smtpd_delay_reject");
    s.relay_before_recipient = c.get_bool("smtpd_relay_before_recipient_restrictions");
    s.soft_bounce = c.get_bool("soft_bounce");
    s.reject_unlisted_sender = c.get_bool("smtpd_reject_unlisted_sender");
    s.reject_unlisted_recipient = c.get_bool("smtpd_reject_unlisted_recipient");
    s.allow_untrusted_routing = c.get_bool("allow_untrusted_routing");
    auto code = [&](const char* name) { return static_cast<int>(c.get_int(name)); };
    s.reject_code = code("reject_code");
    s.defer_code = code("defer_code");
    s.relay_code = code("relay_domains_reject_code");
    s.access_reject_code = code("access_map_reject_code");
    s.access_defer_code = code("access_map_defer_code");
    s.rbl_code = code("maps_rbl_reject_code");
    s.unknown_address_code = code("unknown_address_reject_code");
    s.unknown_client_code = code("unknown_client_reject_code");
    s.unknown_hostname_code = code("unknown_hostname_reject_code");
    s.invalid_hostname_code = code("invalid_hostname_reject_code");
    s.non_fqdn_code = code("non_fqdn_reject_code");
    s.multi_recipient_code = code("multi_recipient_bounce_reject_code");
    s.local_recipient_code = code("unknown_local_recipient_reject_code");
    s.virtual_alias_code = code("unknown_virtual_alias_reject_code");
    s.virtual_mailbox_code = code("unknown_virtual_mailbox_reject_code");
    s.relay_recipient_code = code("unknown_relay_recipient_reject_code");
    s.default_rbl_reply = c.raw("default_rbl_reply").value_or("");
    s.unknown_address_defer_now = tempfail_defers_now(c, "unknown_address_tempfail_action");
    s.unknown_helo_defer_now = tempfail_defers_now(c, "unknown_helo_hostname_tempfail_action");
    s.myhostname = c.get("myhostname");
    s.lookup.parent_matches_subdomains =
        in_list(c.get_list("parent_domain_matches_subdomains"), "smtpd_access_maps");
    s.lookup.recipient_delimiter = c.get("recipient_delimiter");
    s.lookup.owner_request_special = c.get_bool("owner_request_special");
    s.lookup.double_bounce_sender = c.get("double_bounce_sender");
    s.lookup.null_access_key = c.get("smtpd_null_access_lookup_key");
    s.actions.reject_code = s.access_reject_code;
    s.actions.defer_code = s.access_defer_code;
    return s;
}

// A table that could not be opened: every lookup fails (Postfix's surrogate table).
class FailingTable : public table::Table {
public:
    FailingTable(std::string spec, std::string error) : Table(std::move(spec), 0), error_(std::move(error)) {}
    table::LookupResult lookup(std::string_view) override { return table::LookupResult::fail(error_); }

private:
    std::string error_;
};

}  // namespace

std::vector<std::shared_ptr<table::Table>> open_tables(const std::vector<std::string>& specs) {
    std::vector<std::shared_ptr<table::Table>> out;
    for (std::string spec : specs) {
        if (spec.rfind("proxy:", 0) == 0) spec.erase(0, 6);
        if (spec.rfind("nis:", 0) == 0) continue;  // the Postfix default names NIS; no NIS here
        auto t = table::open_table(spec);
        if (t) {
            out.push_back(std::shared_ptr<table::Table>(std::move(*t)));
        } else {
            log::warn("%s", t.error().c_str());
            out.push_back(std::make_shared<FailingTable>(spec, t.error()));
        }
    }
    return out;
}

Result<RestrictionList> compile_list(std::string_view param, const std::vector<std::string>& names,
                                     const std::map<std::string, RestrictionList, std::less<>>* classes) {
    RestrictionList list;
    for (size_t i = 0; i < names.size(); ++i) {
        Restriction r;
        r.name = lowercase(names[i]);
        if (classes != nullptr) {
            if (auto it = classes->find(names[i]); it != classes->end()) {
                r.name = names[i];
                r.class_list = &it->second;
                list.push_back(std::move(r));
                continue;
            }
        }
        const NameInfo* info = find_name(r.name);
        if (info != nullptr) {
            r.handler = info->handler;
            if (info->arg != ArgKind::None) {
                if (i + 1 >= names.size())
                    return make_error(strprintf("restriction %s requires %s argument", r.name.c_str(),
                                                info->arg == ArgKind::Table    ? "table"
                                                : info->arg == ArgKind::Server ? "policy service"
                                                : info->arg == ArgKind::Number ? "number"
                                                                               : "domain name"));
                r.arg = names[++i];
                if (info->arg == ArgKind::Table) r.tables = open_tables({r.arg});
            }
        } else {
            r.name = names[i];  // reported when reached, as Postfix does
        }
        list.push_back(std::move(r));
    }
    (void)param;
    return list;
}

EngineImpl::EngineImpl(const config::Config& config, event_base* base, ResolveFn resolve, dns::Resolver* dns)
    : config(config), base(base), resolve(std::move(resolve)), dns(dns) {}

Status EngineImpl::init() {
    settings = load_settings(config);
    // Classes first (their entries exist before any list names them), then compile each
    // class body: a class may name another class.
    auto class_names = config.get_list("smtpd_restriction_classes");
    for (const auto& name : class_names) lists.classes[name];
    for (const auto& name : class_names) {
        auto raw = config.raw(name);
        if (!raw) return make_error(strprintf("restriction class `%s' needs a definition", name.c_str()));
        auto compiled = compile_list(name, split_restrictions(config.get(name)), &lists.classes);
        if (!compiled) return make_error(compiled.error());
        lists.classes[name] = std::move(*compiled);
    }
    struct Param {
        const char* name;
        RestrictionList* list;
    };
    Param params[] = {{"smtpd_client_restrictions", &lists.client},
                      {"smtpd_helo_restrictions", &lists.helo},
                      {"smtpd_sender_restrictions", &lists.sender},
                      {"smtpd_relay_restrictions", &lists.relay},
                      {"smtpd_recipient_restrictions", &lists.recipient},
                      {"smtpd_data_restrictions", &lists.data},
                      {"smtpd_end_of_data_restrictions", &lists.end_of_data},
                      {"smtpd_etrn_restrictions", &lists.etrn}};
    for (const Param& p : params) {
        auto compiled = compile_list(p.name, split_restrictions(config.get(p.name)), &lists.classes);
        if (!compiled) return make_error(compiled.error());
        *p.list = std::move(*compiled);
    }
    // compatibility_level < 1 leaves smtpd_relay_restrictions empty; Postfix then only
    // logs what the new default would have refused. Postern applies that default.
    if (!config.is_set("smtpd_relay_restrictions") && lists.relay.empty() && !has_relay_control(lists.recipient)) {
        auto compiled = compile_list("smtpd_relay_restrictions",
                                     {"permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"},
                                     &lists.classes);
        if (compiled) lists.relay = std::move(*compiled);
    }
    // Postfix refuses to run when neither list could stop an open relay.
    if (!has_relay_control(lists.relay) && !has_relay_control(lists.recipient))
        return make_error(strprintf("in parameter %s, specify at least one working instance of: %s",
                                    lists.relay.empty() ? "smtpd_recipient_restrictions" : "smtpd_relay_restrictions",
                                    "reject_unauth_destination, defer_unauth_destination, reject, defer, "
                                    "defer_if_permit or check_relay_domains"));  // Postfix's text

    // Policy clients exist before the first session, so a bad service is fatal now.
    std::vector<const RestrictionList*> all = {&lists.client, &lists.helo, &lists.sender, &lists.relay,
                                               &lists.recipient, &lists.data, &lists.end_of_data, &lists.etrn};
    for (const auto& [name, list] : lists.classes) all.push_back(&list);
    for (const RestrictionList* list : all)
        for (const Restriction& r : *list) {
            if (r.handler != check_policy_service) continue;
            std::string error;
            if (policy_service(r.arg, error) == nullptr) return make_error(error);
        }

    auto nets = NetList::create("mynetworks", config.get_list("mynetworks"));
    if (!nets) return make_error(nets.error());
    mynetworks = std::make_unique<NetList>(std::move(*nets));
    auto permit_log = rewrite::MatchList::create("smtpd_log_access_permit_actions",
                                                 config.get_list("smtpd_log_access_permit_actions"),
                                                 rewrite::MatchStyle::String);
    if (!permit_log) return make_error(permit_log.error());
    log_permit_actions = std::move(*permit_log);
    auto mx_nets = NetList::create("permit_mx_backup_networks", config.get_list("permit_mx_backup_networks"));
    if (!mx_nets) return make_error(mx_nets.error());
    mx_backup_networks = std::make_unique<NetList>(std::move(*mx_nets));
    inet_addresses = rewrite::interface_addresses(config, false);
    own_addresses = rewrite::interface_addresses(config, true);
    std::string protocols = lowercase(config.get("inet_protocols"));
    inet_ipv6 = protocols.find("all") != std::string::npos || protocols.find("ipv6") != std::string::npos;

    maps.local_configured = !split_restrictions(config.get("local_recipient_maps")).empty();
    maps.local = open_tables(split_restrictions(config.get("local_recipient_maps")));
    maps.virtual_alias = open_tables(split_restrictions(config.get("virtual_alias_maps")));
    maps.virtual_mailbox = open_tables(split_restrictions(config.get("virtual_mailbox_maps")));
    maps.relay_configured = !split_restrictions(config.get("relay_recipient_maps")).empty();
    maps.relay = open_tables(split_restrictions(config.get("relay_recipient_maps")));
    maps.sender_login = open_tables(split_restrictions(config.get("smtpd_sender_login_maps")));
    maps.rbl_reply = open_tables(split_restrictions(config.get("rbl_reply_maps")));
    maps.relay_clientcerts = open_tables(split_restrictions(config.get("relay_clientcerts")));
    return Status::success();
}

std::unique_ptr<CheckSession> EngineImpl::new_session() { return std::make_unique<SessionImpl>(*this); }

std::unique_ptr<EngineImpl> create_engine(const config::Config& config, event_base* base, ResolveFn resolve,
                                          dns::Resolver* dns) {
    auto engine = std::make_unique<EngineImpl>(config, base, std::move(resolve), dns);
    if (Status st = engine->init(); !st) log::fatal("%s", st.error().c_str());
    return engine;
}

}  // namespace postern::smtpd::check

namespace postern::smtpd {

namespace {
// The engine of the daemon: trivial-rewrite over IPC and a c-ares resolver on the
// session loop, both owned here.
class DaemonEngine : public CheckEngine {
public:
    DaemonEngine(const config::Config& config, event_base* base)
        : rewrite_(config.get("queue_directory"), config.get_time("ipc_timeout")) {
        if (base != nullptr) {
            auto r = dns::Resolver::create(base);
            if (r)
                dns_ = std::move(*r);
            else
                log::warn("DNS resolver: %s", r.error().c_str());
        }
        auto resolve = [this](std::string_view sender, std::string_view address) {
            return rewrite_.resolve(sender, address);
        };
        impl_ = check::create_engine(config, base, resolve, dns_.get());
    }
    std::unique_ptr<CheckSession> new_session() override { return impl_->new_session(); }

private:
    ipc::mail::RewriteClient rewrite_;
    std::unique_ptr<dns::Resolver> dns_;
    std::unique_ptr<check::EngineImpl> impl_;
};
}  // namespace

std::unique_ptr<CheckEngine> CheckEngine::create(const config::Config& config, event_base* base) {
    return std::make_unique<DaemonEngine>(config, base);
}

}  // namespace postern::smtpd

// check_policy_service (Postfix's SMTPD_POLICY_README): the session's facts go to a
// policy server as one request; its "action=" is an access(5) action, applied as if a
// table had answered it. When the server cannot be reached, the service's
// default_action applies (smtpd_policy_service_default_action, "451 4.3.5 Server
// configuration problem").
#include "smtpd/smtpd_check_internal.h"
#include "smtpd/smtpd_params.h"
#include "smtpd/smtpd_policy_client.h"
#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/log/log.h"

namespace postern::smtpd::check {
namespace {

// "{ inet:host:port, name=value, {name=value with blanks} }" -> the server, then
// name=value items.
std::vector<std::string> split_service(std::string_view arg) {
    arg = trim(arg);
    if (!arg.empty() && arg.front() == '{' && arg.back() == '}') arg = arg.substr(1, arg.size() - 2);
    std::vector<std::string> items;
    for (std::string item : split_restrictions(arg)) {
        std::string_view v = trim(item);
        if (!v.empty() && v.front() == '{' && v.back() == '}') v = trim(v.substr(1, v.size() - 2));
        items.emplace_back(v);
    }
    return items;
}

Status apply_option(const std::string& item, PolicyLimits& limits, PolicyService& service) {
    size_t eq = item.find('=');
    if (eq == std::string::npos) return make_error("missing '=' in policy service attribute: \"" + item + "\"");
    std::string name(trim(std::string_view(item).substr(0, eq)));
    std::string value(trim(std::string_view(item).substr(eq + 1)));
    if (name == "default_action") {
        service.default_action = value;
        return Status::success();
    }
    if (name == "policy_context") {
        service.policy_context = value;
        return Status::success();
    }
    struct Number {
        const char* name;
        long* field;
        bool time;
    };
    const Number numbers[] = {{"timeout", &limits.timeout, true},       {"max_idle", &limits.max_idle, true},
                              {"max_ttl", &limits.max_ttl, true},       {"retry_delay", &limits.retry_delay, true},
                              {"request_limit", &limits.request_limit, false},
                              {"try_limit", &limits.try_limit, false}};
    for (const Number& n : numbers) {
        if (name != n.name) continue;
        std::optional<long> v;
        if (long parsed = 0; n.time)
            v = config::parse_time_value(value, 's');
        else if (parse_long(value, parsed))
            v = parsed;
        if (!v || *v < (n.field == &limits.request_limit ? 0 : 1))
            return make_error(strprintf("bad %s value \"%s\" in policy service attribute", n.name, value.c_str()));
        *n.field = *v;
        return Status::success();
    }
    return make_error("unknown policy service attribute name: \"" + name + "\"");
}

// The request, in Postfix 3.7's attribute order (compatibility_level and mail_version
// as Postfix 3.8 adds them).
PolicyAttrs policy_request(const Evaluation& ev, const PolicyService& service) {
    const SessionFacts& f = ev.facts;
    const TransactionFacts& t = f.transaction;
    const TlsFacts& tls = f.tls;
    bool rcpt = ev.point == CheckPoint::Rcpt || ev.point == CheckPoint::Vrfy;
    bool data = ev.point == CheckPoint::Data || ev.point == CheckPoint::EndOfData;
    auto cn = [&tls](const std::string& name) {
        return tls.active && tls.peer_cert_verified && !name.empty() ? xtext_encode(name) : std::string();
    };
    auto if_tls = [&tls](const std::string& v) { return tls.active ? v : std::string(); };
    return {
        {"request", "smtpd_access_policy"},
        {"protocol_state", where_name(ev.point, f)},
        {"protocol_name", f.protocol},
        {"client_address", f.client.address},
        {"client_name", f.client.name},
        {"client_port", f.client.port},
        {"reverse_client_name", f.client.reverse_name},
        {"server_address", f.client.server_address},
        {"server_port", f.client.server_port},
        {"helo_name", f.helo_name},
        {"sender", t.sender},
        {"recipient", rcpt ? t.recipient : ""},
        {"recipient_count", std::to_string(data ? t.recipients.size() : 0)},
        {"queue_id", t.queue_id},
        {"instance", ev.session.instance()},
        {"size", std::to_string(t.size)},
        {"etrn_domain", ev.point == CheckPoint::Etrn ? f.etrn_domain : ""},
        {"stress", ""},
        {"sasl_method", f.sasl.method},
        {"sasl_username", f.sasl.username},
        {"sasl_sender", f.sasl.sender},
        {"ccert_subject", cn(tls.peer_cn)},
        {"ccert_issuer", cn(tls.issuer_cn)},
        {"ccert_fingerprint", if_tls(tls.peer_cert_fingerprint)},
        {"ccert_pubkey_fingerprint", if_tls(tls.peer_pubkey_fingerprint)},
        {"encryption_protocol", if_tls(tls.protocol)},
        {"encryption_cipher", if_tls(tls.cipher)},
        {"encryption_keysize", std::to_string(tls.active ? tls.cipher_bits : 0)},
        {"policy_context", service.policy_context},
        {"compatibility_level", ev.engine.config.get("compatibility_level")},
        {"mail_version", ev.engine.config.get("mail_version")},
    };
}

}  // namespace

PolicyService::~PolicyService() = default;

PolicyService* EngineImpl::policy_service(const std::string& arg, std::string& error) {
    if (auto it = policy_services.find(arg); it != policy_services.end()) return it->second.get();
    auto items = split_service(arg);
    if (items.empty()) {
        error = "check_policy_service: missing policy service address";
        return nullptr;
    }
    auto service = std::make_unique<PolicyService>();
    service->default_action = config.get("smtpd_policy_service_default_action");
    service->policy_context = config.get("smtpd_policy_service_policy_context");
    PolicyLimits limits;
    limits.timeout = config.get_time("smtpd_policy_service_timeout");
    limits.max_idle = config.get_time("smtpd_policy_service_max_idle");
    limits.max_ttl = config.get_time("smtpd_policy_service_max_ttl");
    limits.retry_delay = config.get_time("smtpd_policy_service_retry_delay");
    limits.request_limit = config.get_int("smtpd_policy_service_request_limit");
    limits.try_limit = config.get_int("smtpd_policy_service_try_limit");
    for (size_t i = 1; i < items.size(); ++i) {
        if (Status st = apply_option(items[i], limits, *service); !st) {
            error = "check_policy_service " + items[0] + ": " + st.error();
            return nullptr;
        }
    }
    auto client = PolicyClient::create(base, items[0], limits, config.get("queue_directory"), dns);
    if (!client) {
        error = "check_policy_service: " + client.error();
        return nullptr;
    }
    service->client = std::move(*client);
    return policy_services.emplace(arg, std::move(service)).first->second.get();
}

void check_policy_service(Evaluation& ev, const Restriction& r, Next next) {
    std::string error;
    PolicyService* service = ev.engine.policy_service(r.arg, error);
    if (service == nullptr) return next(ev.server_error(error));
    std::string server = r.arg;
    std::string default_action = service->default_action;
    auto weak = ev.weak();
    service->client->request(policy_request(ev, *service), weak,
                             [weak, next, server, default_action, name = service->client->name()](
                                 std::optional<PolicyAttrs> reply) {
                                 auto e = weak.lock();
                                 if (!e) return;
                                 const std::string* action = nullptr;
                                 if (reply)
                                     for (const auto& [n, v] : *reply)
                                         if (n == "action" && action == nullptr) action = &v;
                                 if (reply && action == nullptr)
                                     log::warn("missing attribute action in input from %s", name.c_str());
                                 apply_table_result(*e, server, "policy query", action ? *action : default_action,
                                                    next);
                             });
}

}  // namespace postern::smtpd::check

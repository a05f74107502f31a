#include "smtp/delivery.h"

#include <arpa/inet.h>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"
#include "util/queue/queue_file.h"
#include "util/queue/queue_id.h"
#include "util/queue/queue_layout.h"
#include "util/rewrite/resolve_support.h"
#include "util/smtpclient/sasl_client.h"
#include "util/smtpclient/tls_site_policy.h"

namespace postern::smtp {

namespace {

bool is_numeric_address(const std::string& host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string strip_dot(std::string host) {
    if (host.size() > 1 && host.back() == '.') host.pop_back();
    return host;
}

}  // namespace

Delivery::Delivery(event_base* base, dns::Resolver& resolver, const Settings& settings,
                   const queue::Layout& layout, std::mt19937& rng, ConnectionCache& cache,
                   ipc::mail::DeliveryRequest request, Done done)
    : base_(base), resolver_(resolver), settings_(settings), layout_(layout), rng_(rng), cache_(cache),
      request_(std::move(request)), done_(std::move(done)) {
    gettimeofday(&handoff_, nullptr);
    outcomes_.resize(request_.recipients.size());
    relays_.resize(request_.recipients.size());
}

bool Delivery::load_message(std::string& error) {
    if (!queue::queue_name_ok(request_.queue_name) || !queue::id_ok(request_.queue_id)) {
        error = "bad queue file name: " + request_.queue_name + "/" + request_.queue_id;
        return false;
    }
    std::string path = layout_.path(request_.queue_name, request_.queue_id);
    auto opened = queue::open_queue_file(path, false);
    if (!opened) {
        error = opened.error();
        return false;
    }
    queue::QueueFileReader reader(queue::fd_source(opened->fd.get()));
    auto envelope = reader.read_envelope();
    if (!envelope) {
        error = path + ": " + envelope.error();
        return false;
    }
    env_.size = static_cast<unsigned long>(envelope->size.content_length > 0 ? envelope->size.content_length
                                                                           : envelope->size.content_size);
    queue_fd_ = std::move(opened->fd);
    env_.content_fd = queue_fd_.get();
    env_.sender = request_.sender;
    env_.envid = request_.envid;
    env_.ret = request_.ret;
    env_.eightbit = iequals(request_.encoding, "8bitmime");
    env_.sevenbit = iequals(request_.encoding, "7bit");
    env_.smtputf8 = (request_.smtputf8 & ipc::mail::kSmtputf8Requested) != 0;
    env_.smtputf8_required = ipc::mail::smtputf8_required(request_.smtputf8);
    for (const auto& r : request_.recipients) env_.rcpts.push_back({r.address, r.dsn_orcpt, r.orig, r.notify});
    return true;
}

void Delivery::start() {
    std::string error;
    if (!load_message(error)) {
        log::warn("%s: %s", request_.queue_id.c_str(), error.c_str());
        ipc::mail::DeliveryReply reply;
        reply.status = 1;  // qmgr keeps every recipient deferred
        Done done = std::move(done_);
        done_ = nullptr;
        done(std::move(reply));
        return;
    }
    bool by_sender = settings_.sasl_enable && settings_.sender_dependent_auth;
    cache_key_ = cache_key(request_.nexthop, by_sender ? request_.sender : "");
    if (auto conn = cache_.take(cache_key_)) {
        if (may_reuse(0, conn->expire_at, time(nullptr), 0)) {
            start_reused(std::move(*conn));
            return;
        }
        quit_and_close(std::move(*conn));
    }
    start_fresh();
}

void Delivery::start_reused(CachedConnection conn) {
    Target t = conn.target;
    run_session(t, &conn);
}

void Delivery::run_session(const Target& t, CachedConnection* cached) {
    std::weak_ptr<Delivery> weak = weak_from_this();
    session_ = std::make_unique<Session>(base_, settings_, t, env_, [weak, t](SessionReport report) {
        if (auto self = weak.lock()) self->on_report(t, std::move(report));
    });
    if (cached != nullptr)
        session_->start_on(std::move(*cached));
    else
        session_->start();
}

void Delivery::start_fresh() {
    sites_.push_back(request_.nexthop);
    for (const auto& relay : settings_.fallback_relays) sites_.push_back(relay);
    if (!next_site()) conclude(last_dsn_, last_reason_);
}

// The request's next hop first, then each of smtp_fallback_relay in order (Postfix's
// smtp_connect_inet): a destination that cannot be found or reached passes the mail on.
bool Delivery::next_site() {
    while (!sites_.empty()) {
        site_ = sites_.front();
        sites_.pop_front();
        on_fallback_ = site_index_++ > 0;
        auto hop = smtpclient::parse_nexthop(site_, settings_.lmtp, settings_.lmtp ? settings_.lmtp_port : 0);
        if (!hop) {
            last_dsn_ = "4.3.5";
            last_reason_ = "mail system configuration error: " + hop.error();
            if (on_fallback_) log::warn("%s: %s", settings_.fallback_param.c_str(), hop.error().c_str());
            continue;
        }
        hop_ = *hop;
        if (settings_.helpful_warnings && !settings_.tls_wrappermode && hop_.port == 465 &&
            hop_.kind != smtpclient::NextHop::Kind::Unix)
            log::info("SMTPS wrappermode (TCP port 465) requires setting \"%s = yes\", and \"%s = encrypt\" "
                      "(or stronger)", settings_.lmtp ? "lmtp_tls_wrappermode" : "smtp_tls_wrappermode",
                      settings_.lmtp ? "lmtp_tls_security_level" : "smtp_tls_security_level");
        if (!choose_tls_policy()) continue;
        if (hop_.kind == smtpclient::NextHop::Kind::Unix) {
            sites_.clear();  // a UNIX-domain socket has no fallback (Postfix's smtp_connect_local)
            targets_.push_back({settings_.myhostname, hop_.path, 0, true, {}, {}});
            next_target();
            return true;
        }
        if (hop_.mx_lookup && !is_numeric_address(hop_.host)) {
            lookup_mx(hop_.host);
            return true;
        }
        hosts_.push_back(hop_.host);
        next_target();
        return true;
    }
    return false;
}

// No destination is left: the last failure stands. A hard failure of a fallback relay is
// taken for a configuration problem and deferred, as Postfix does.
void Delivery::give_up() {
    if (on_fallback_ && !last_dsn_.empty() && last_dsn_[0] == '5') {
        log::warn("%s configuration problem", settings_.fallback_param.c_str());
        last_dsn_ = "4.3.5";
    }
    conclude(last_dsn_, last_reason_.empty() ? "no mail server found" : last_reason_);
}

// A destination failed as a whole (its lookup): the next site, or give up.
void Delivery::site_failed(std::string dsn, std::string reason) {
    last_dsn_ = std::move(dsn);
    last_reason_ = std::move(reason);
    if (!next_site()) give_up();
}

void Delivery::lookup_mx(const std::string& domain) {
    std::weak_ptr<Delivery> weak = weak_from_this();
    resolver_.query(domain, dns::Type::MX, [weak, domain](const dns::Answer& answer) {
        if (auto self = weak.lock()) self->on_mx(domain, answer);
    });
}

void Delivery::on_mx(const std::string& domain, const dns::Answer& answer) {
    switch (answer.rcode) {
    case dns::Rcode::Ok:
        if (smtpclient::is_null_mx(answer.mx)) {
            site_failed("5.1.10", strprintf("Domain %s does not accept mail (nullMX)", domain.c_str()));
            return;
        }
        for (const auto& mx : smtpclient::order_mx(answer.mx, rng_)) hosts_.push_back(strip_dot(mx.host));
        break;
    case dns::Rcode::NoData:
        hosts_.push_back(domain);  // no MX: the domain's own addresses (RFC 5321 5.1)
        break;
    case dns::Rcode::NotFound:
        site_failed("5.4.4", strprintf("Host or domain name not found. Name service error for name=%s type=MX: "
                                       "Host not found", domain.c_str()));
        return;
    default:
        site_failed("4.4.3", strprintf("Host or domain name not found. Name service error for name=%s type=MX: "
                                       "Host not found, try again", domain.c_str()));
        return;
    }
    next_target();
}

void Delivery::next_target() {
    if (!targets_.empty()) {
        Target t = targets_.front();
        targets_.pop_front();
        if (settings_.sasl_enable && !sasl_credentials(t)) {
            conclude("4.3.0", strprintf("local data error while talking to %s", t.namaddr().c_str()));
            return;
        }
        t.tls_policy = tls_policy_;
        if (!wrappermode_allows(t)) {
            next_target();
            return;
        }
        t.final_server = targets_.empty() && hosts_.empty() && sites_.empty();
        run_session(t, nullptr);
        return;
    }
    if (!hosts_.empty()) {
        std::string host = hosts_.front();
        hosts_.pop_front();
        if (is_numeric_address(host)) {
            targets_.push_back({host, host, hop_.port, false, {}, {}});
            next_target();
            return;
        }
        // IPv4 first unless smtp_address_preference = ipv6.
        bool v6_first = settings_.address_preference == "ipv6" || !settings_.ipv4;
        resolve_host(host, v6_first ? 0 : 1);
        return;
    }
    if (next_site()) return;
    give_up();
}

// family_step: 0 = IPv6 then IPv4, 1 = IPv4 then IPv6; each step looks up one family.
void Delivery::resolve_host(const std::string& host, int family_step) {
    struct Plan {
        std::vector<bool> families;  // true: IPv6
        size_t next = 0;
        std::vector<Target> found;
        dns::Rcode worst = dns::Rcode::NotFound;
    };
    auto plan = std::make_shared<Plan>();
    bool v6_first = family_step == 0;
    for (bool v6 : {v6_first, !v6_first})
        if (v6 ? settings_.ipv6 : settings_.ipv4) plan->families.push_back(v6);
    std::weak_ptr<Delivery> weak = weak_from_this();
    auto step = std::make_shared<std::function<void()>>();
    *step = [weak, host, plan, step]() {
        auto self = weak.lock();
        if (!self) return;
        if (plan->next >= plan->families.size()) {
            for (auto& t : plan->found) self->targets_.push_back(std::move(t));
            if (plan->found.empty()) {
                bool temp = plan->worst == dns::Rcode::TempFail;
                self->last_dsn_ = temp ? "4.4.3" : "5.4.4";
                self->last_reason_ = strprintf("Host or domain name not found. Name service error for name=%s "
                                               "type=%s: Host not found%s", host.c_str(),
                                               plan->families.empty() || !plan->families.back() ? "A" : "AAAA",
                                               temp ? ", try again" : "");
                if (host != self->hop_.host) {
                    self->last_dsn_ = "4.4.3";  // an MX host without an address: try later
                }
            }
            auto keep = step;  // the function must outlive this call
            *step = nullptr;
            self->next_target();
            return;
        }
        bool v6 = plan->families[plan->next++];
        self->resolver_.host_by_name(host, v6, [weak, host, plan, step](const dns::Answer& a) {
            auto self = weak.lock();
            if (!self) return;
            if (a.ok()) {
                for (const auto& addr : a.records) plan->found.push_back({host, addr, self->hop_.port, false, {}, {}});
            } else if (a.rcode == dns::Rcode::TempFail) {
                plan->worst = dns::Rcode::TempFail;
            }
            if (*step) (*step)();
        });
    };
    (*step)();
}

// The TLS policy of the destination being tried (Postfix looks it up per destination,
// fallback relays included).
bool Delivery::choose_tls_policy() {
    tls_policy_.reset();
    if (!settings_.tls) return true;  // no TLS at all
    smtpclient::TlsPolicyInputs in;
    in.param = settings_.lmtp ? "lmtp_tls_policy_maps" : "smtp_tls_policy_maps";
    in.maps = &settings_.tls_policy_maps;
    in.default_level = settings_.tls->level();
    in.dnssec_lookups = settings_.tls->dnssec_lookups();
    in.mx_lookup = hop_.mx_lookup && !is_numeric_address(hop_.host);
    auto policy = smtpclient::tls_policy_for(site_, hop_.host, in);
    if (policy.level == tls::ClientLevel::Invalid) {
        log::warn("TLS policy lookup for %s/%s: %s", site_.c_str(), hop_.host.c_str(), policy.reason.c_str());
        last_dsn_ = policy.dsn;
        last_reason_ = policy.reason;
        return false;
    }
    tls_policy_ = std::make_shared<const tls::ClientPolicy>(std::move(policy));
    return true;
}

// smtp_tls_wrappermode needs TLS to be mandatory: as Postfix, a server whose level is
// weaker is skipped with a warning (with no other failure, the mail defers with 4.3.0).
bool Delivery::wrappermode_allows(const Target& t) {
    if (!settings_.tls_wrappermode ||
        (t.tls_policy != nullptr && tls::level_is_mandatory(t.tls_policy->level)))
        return true;
    const char* p = settings_.lmtp ? "lmtp" : "smtp";
    log::warn("%s_tls_wrappermode requires \"%s_tls_security_level = encrypt\" (or stronger)", p, p);
    if (last_reason_.empty()) {
        last_dsn_ = "4.3.0";
        last_reason_ = "server unavailable or unable to receive mail";
    }
    return false;
}

// Postfix's smtp_sasl_passwd_lookup: the sender (smtp_sender_dependent_authentication),
// the server's name, then the next hop as the request names it.
bool Delivery::sasl_credentials(Target& t) const {
    smtpclient::SaslLookup lookup;
    const std::string& sender = request_.sender;
    if (settings_.sender_dependent_auth && !sender.empty()) {
        size_t at = sender.rfind('@');
        bool local = at != std::string::npos &&
                     settings_.mydestination.match(lowercase(sender.substr(at + 1))) == rewrite::Match::Yes;
        lookup.sender = rewrite::address_probes(lowercase(sender), settings_.recipient_delimiter, local);
    }
    lookup.host = t.host;
    lookup.dest = site_;  // the request's next hop, or the fallback relay being tried
    std::vector<table::Table*> tables;
    for (const auto& table : settings_.sasl_passwords) tables.push_back(table.get());
    access::Outcome found = smtpclient::find_sasl_password(tables, lookup);
    if (found.status == access::Outcome::Status::Error) {
        log::warn("%s: smtp_sasl_passwd lookup error", request_.queue_id.c_str());
        return false;
    }
    t.sasl_credentials = found.found() ? found.value : "";
    return true;
}

void Delivery::on_report(const Target& target, SessionReport report) {
    if (report.reused && report.try_next) {
        // The cached connection failed before MAIL was accepted (the server closed it
        // while idle, or RSET failed): nothing was delivered, start over on a new one.
        start_fresh();
        return;
    }
    if (report.connected) {
        relay_ = target.relay();
        conn_setup_done_ = report.conn_setup_done;
        reuse_count_ = report.reuse_count;
    }
    if (report.try_next && (!targets_.empty() || !hosts_.empty() || !sites_.empty())) {
        // As Postfix: a server that is not the last one gets an info line of its own
        // (connection failures have theirs already).
        if (report.connected) log::info("%s: %s", request_.queue_id.c_str(), report.reason.c_str());
        last_dsn_ = report.dsn;
        last_reason_ = report.reason;
        next_target();
        return;
    }
    if (report.try_next) {
        last_dsn_ = report.dsn.empty() ? "4.4.2" : report.dsn;
        last_reason_ = report.reason;
        give_up();
        return;
    }
    bool kept = false;  // recipients a server that is not the last deferred at RCPT
    bool noted = false;  // the session-wide reason (a lost connection) is logged once
    for (size_t i = 0; i < outcomes_.size() && i < report.rcpts.size(); ++i) {
        const Outcome& o = report.rcpts[i];
        if (o.known()) {
            outcomes_[i] = o;
            relays_[i] = target.relay();
            env_.rcpts[i].done = true;
        } else if (o.try_next) {
            // As Postfix: the server's reply as an info line; the next server may do.
            bool session_wide = !report.reason.empty() && o.reason == report.reason;
            if (!session_wide || !noted) log::info("%s: %s", request_.queue_id.c_str(), o.reason.c_str());
            noted = noted || session_wide;
            last_dsn_ = o.dsn;
            last_reason_ = o.reason;
            kept = true;
        }
    }
    if (report.kept) keep_connection();  // the transaction ended cleanly
    if (kept && (!targets_.empty() || !hosts_.empty() || !sites_.empty())) {
        next_target();
        return;
    }
    conclude(report.dsn.empty() ? (kept ? last_dsn_ : "4.4.2") : report.dsn,
             report.dsn.empty() && kept ? last_reason_ : report.reason);
}

void Delivery::keep_connection() {
    CachedConnection conn;
    if (!session_ || !session_->take_connection(conn)) return;
    // A fallback relay's connection does not serve the next hop's cache key.
    bool wanted = !on_fallback_ && ((settings_.cache_on_demand && (request_.flags & ipc::mail::kDeliveryFlagConnStore)) ||
        settings_.cache_destinations.match(cache_destination_name(request_.nexthop, settings_.lmtp)) ==
            rewrite::Match::Yes);
    if (wanted && may_reuse(conn.reuse_count, conn.expire_at, time(nullptr), settings_.reuse_count_limit))
        cache_.store(cache_key_, std::move(conn), settings_.cache_time_limit);
    else
        quit_and_close(std::move(conn));
}

void Delivery::conclude(const std::string& dsn, const std::string& reason) {
    ipc::mail::DeliveryReply reply;
    timeval now{};
    gettimeofday(&now, nullptr);
    for (size_t i = 0; i < request_.recipients.size(); ++i) {
        const auto& rcpt = request_.recipients[i];
        Outcome o = outcomes_[i].known() ? outcomes_[i] : Outcome{dsn, reason};
        dsn::FinalStatus final = settings_.status_filter.apply(o.dsn.empty() ? "4.0.0" : o.dsn, o.reason);
        o.dsn = final.status;
        o.reason = final.reason;
        char cls = o.dsn[0];
        log::DeliveryEvent e;
        e.queue_id = request_.queue_id;
        e.recipient = rcpt.address;
        e.orig_recipient = rcpt.orig;
        const std::string& relay = relays_[i].empty() ? relay_ : relays_[i];
        e.relay = relay;
        e.times.incoming_arrival = {request_.arrival_sec, static_cast<suseconds_t>(request_.arrival_usec)};
        e.times.active_arrival = request_.active_arrival(handoff_);
        e.times.agent_handoff = handoff_;
        e.times.conn_setup_done = conn_setup_done_;
        e.times.reuse_count = reuse_count_;
        e.times.deliver_done = now;
        e.dsn = o.dsn;
        e.status = final.log_status;
        e.reason = o.reason;
        e.delay_max_digits = settings_.delay_digits;
        log::info("%s", log::delivery_line(e, now).c_str());
        std::string action = cls == '2' ? (settings_.lmtp ? "delivered" : "relayed") : cls == '5' ? "failed" : "delayed";
        // A DSN-capable SMTP server got NOTIFY=SUCCESS and reports the delivery itself.
        bool passed_on = cls == '2' && o.dsn_server && (rcpt.notify & ipc::mail::kNotifySuccess);
        reply.results.push_back({static_cast<long>(i), o.dsn, action, o.reason, relay, passed_on});
    }
    Done done = std::move(done_);
    done_ = nullptr;
    if (done) done(std::move(reply));
}

}  // namespace postern::smtp

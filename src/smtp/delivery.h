// One delivery request from qmgr: read the message from its queue file, find the servers
// of the next hop (MX records, then addresses, through the asynchronous resolver), run a
// Session with each in turn until one gives a final answer, then log Postfix's delivery
// record per recipient and hand the DeliveryReply to `done`.
#pragma once

#include <sys/time.h>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "smtp/connection_cache.h"
#include "smtp/session.h"
#include "smtp/settings.h"
#include "util/base/unique_fd.h"
#include "util/dns/resolver.h"
#include "util/ipc/mail_proto.h"
#include "util/queue/queue_layout.h"
#include "util/smtpclient/nexthop.h"

namespace postern::smtp {

class Delivery : public std::enable_shared_from_this<Delivery> {
public:
    using Done = std::function<void(ipc::mail::DeliveryReply)>;
    Delivery(event_base* base, dns::Resolver& resolver, const Settings& settings, const queue::Layout& layout,
             std::mt19937& rng, ConnectionCache& cache, ipc::mail::DeliveryRequest request, Done done);
    void start();

private:
    bool load_message(std::string& error);
    // Starts on the next destination (next hop, then fallback relays); false: none left.
    bool next_site();
    void site_failed(std::string dsn, std::string reason);
    void give_up();
    // The next hop's servers, each on a new connection.
    void start_fresh();
    void start_reused(CachedConnection conn);
    void run_session(const Target& t, CachedConnection* cached);
    // After a clean transaction: into the cache when wanted, else QUIT.
    void keep_connection();
    void lookup_mx(const std::string& domain);
    void on_mx(const std::string& domain, const dns::Answer& answer);
    // Resolves the next host name in hosts_ into targets_, then tries them.
    void next_target();
    void resolve_host(const std::string& host, int family_step);
    void on_report(const Target& target, SessionReport report);
    // Fills t.sasl_credentials ("" for none); false on a table error.
    bool sasl_credentials(Target& t) const;
    // smtp_tls_policy_maps / smtp_tls_security_level for the destination site_; false
    // (last_dsn_/last_reason_ set) when the policy is broken.
    bool choose_tls_policy();
    bool wrappermode_allows(const Target& t);
    // Every recipient without an outcome gets dsn/reason; then log and reply.
    void conclude(const std::string& dsn, const std::string& reason);

    event_base* base_;
    dns::Resolver& resolver_;
    const Settings& settings_;
    const queue::Layout& layout_;
    std::mt19937& rng_;
    ConnectionCache& cache_;
    ipc::mail::DeliveryRequest request_;
    std::string cache_key_;
    Done done_;
    timeval handoff_{};
    Envelope env_;
    UniqueFd queue_fd_;  // env_.content_fd
    std::deque<std::string> sites_;  // destinations not yet tried: fallback relays
    std::string site_;               // the destination being tried
    size_t site_index_ = 0;
    bool on_fallback_ = false;
    smtpclient::NextHop hop_;
    std::deque<std::string> hosts_;  // MX hosts (or the one host) not yet resolved
    std::deque<Target> targets_;     // addresses to try
    std::unique_ptr<Session> session_;
    std::shared_ptr<const tls::ClientPolicy> tls_policy_;  // for site_
    std::vector<Outcome> outcomes_;
    std::vector<std::string> relays_;  // the server that gave each final outcome
    std::string relay_ = "none";
    std::string last_dsn_ = "4.4.3", last_reason_;
    timeval conn_setup_done_{};
    int reuse_count_ = 0;  // of the connection that gave the final answer
    bool dns_temp_ = false;  // a lookup failed temporarily
};

}  // namespace postern::smtp

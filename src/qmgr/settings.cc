#include "qmgr/settings.h"

#include "util/config/config.h"

namespace postern::qmgr {
namespace {

// <transport>_<suffix> when main.cf (or the registry) knows it, else the default_* one.
long per_transport(const config::Config& config, std::string_view transport,
                   std::string_view suffix, std::string_view fallback) {
    std::string name = std::string(transport) + "_" + std::string(suffix);
    if (config.raw(name)) {
        if (auto v = config.try_get_int(name)) return *v;
    }
    return config.get_int(fallback);
}

}  // namespace

Settings Settings::from(const config::Config& config) {
    Settings s;
    s.config_ = &config;
    s.queue_directory = config.get("queue_directory");
    s.retry.minimal_backoff = config.get_time("minimal_backoff_time");
    s.retry.maximal_backoff = config.get_time("maximal_backoff_time");
    s.retry.queue_lifetime = config.get_time("maximal_queue_lifetime");
    s.retry.bounce_lifetime = config.get_time("bounce_queue_lifetime");
    // Postfix: a bounce never lives longer than ordinary mail.
    if (s.retry.bounce_lifetime > s.retry.queue_lifetime) s.retry.bounce_lifetime = s.retry.queue_lifetime;
    if (s.retry.maximal_backoff < s.retry.minimal_backoff) s.retry.maximal_backoff = s.retry.minimal_backoff;
    s.queue_run_delay = config.get_time("queue_run_delay");
    s.delay_warning_time = config.get_time("delay_warning_time");
    s.transport_retry_time = config.get_time("transport_retry_time");
    s.ipc_timeout = config.get_time("qmgr_ipc_timeout");
    s.agent_idle_time = config.get_time("max_idle");
    s.active_limit = config.get_int("qmgr_message_active_limit");
    s.defer_transports = config.get_list("defer_transports");
    s.double_bounce_sender = config.get("double_bounce_sender");
    s.recipient_delimiter = config.get("recipient_delimiter");
    return s;
}

const TransportLimits& Settings::limits(std::string_view transport) const {
    auto it = limits_.find(transport);
    if (it != limits_.end()) return it->second;
    TransportLimits l;
    if (config_ != nullptr) {
        l.process_limit = config_->get_int("default_process_limit");
        l.dest_concurrency = per_transport(*config_, transport, "destination_concurrency_limit",
                                           "default_destination_concurrency_limit");
        l.rcpt_limit = per_transport(*config_, transport, "destination_recipient_limit",
                                     "default_destination_recipient_limit");
        l.initial_concurrency = per_transport(*config_, transport, "initial_destination_concurrency",
                                              "initial_destination_concurrency");
    }
    if (l.process_limit < 1) l.process_limit = 1;
    if (l.initial_concurrency < 1) l.initial_concurrency = 1;
    return limits_.emplace(std::string(transport), l).first->second;
}

}  // namespace postern::qmgr

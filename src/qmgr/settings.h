// qmgr's parameters, read once at start (never per message): queue scan and retry
// timing, and the per-transport delivery limits Postfix derives from
// <transport>_destination_concurrency_limit and friends.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "qmgr/retry.h"

namespace postern::config {
class Config;
}

namespace postern::qmgr {

struct TransportLimits {
    long process_limit = 100;     // agents of this transport at once
    long dest_concurrency = 20;   // deliveries to one destination at once (0: no limit)
    long initial_concurrency = 5; // where slow start begins
    long rcpt_limit = 50;         // recipients per delivery request (0: no limit)
    // With one recipient per request the destination is the recipient (Postfix's
    // per-recipient concurrency for local(8)).
    bool per_recipient() const { return rcpt_limit == 1; }
};

class Settings {
public:
    static Settings from(const config::Config& config);

    // Limits for a transport, computed on first use and then kept.
    const TransportLimits& limits(std::string_view transport) const;

    std::string queue_directory;
    RetryPolicy retry;
    long queue_run_delay = 300;
    long delay_warning_time = 0;
    long transport_retry_time = 60;
    long ipc_timeout = 60;          // qmgr_ipc_timeout: connect and send to an agent
    long agent_idle_time = 100;     // max_idle: an unused agent connection is closed
    long active_limit = 20000;      // qmgr_message_active_limit
    std::vector<std::string> defer_transports;
    std::string double_bounce_sender = "double-bounce";
    std::string recipient_delimiter;

private:
    const config::Config* config_ = nullptr;
    mutable std::map<std::string, TransportLimits, std::less<>> limits_;
};

}  // namespace postern::qmgr

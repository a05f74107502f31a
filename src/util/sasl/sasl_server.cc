#include "util/sasl/sasl_server.h"

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/sasl/cyrus_sasl_server.h"
#include "util/sasl/dovecot_sasl_server.h"

namespace postern::sasl {

std::unique_ptr<SaslServerFactory> SaslServerFactory::create(const config::Config& config,
                                                             event_base* base) {
    std::string type = config.get("smtpd_sasl_type");
    if (type == "cyrus") return create_cyrus_factory(config, base);
    if (type == "dovecot") return create_dovecot_factory(config, base);
    log::warn("unsupported SASL server implementation: %s", type.c_str());
    log::fatal("SASL per-process initialization failed");
}

std::string failure_log_text(std::string_view namaddr, std::string_view mechanism,
                             const SaslStep& step) {
    std::string reason = step.reason.empty() ? "(reason unavailable)" : step.reason;
    std::string user = step.username.empty() ? "(unavailable)" : step.username;
    return strprintf("%.*s: SASL %.100s authentication failed: %s, sasl_username=%.100s",
                     int(namaddr.size()), namaddr.data(), std::string(mechanism).c_str(),
                     reason.c_str(), user.c_str());
}

std::string failure_reply(const SaslStep& step) {
    // Postfix 3.7 answers a Dovecot FAIL without reason= with the log's placeholder.
    std::string reason = step.reason.empty() ? "(reason unavailable)" : step.reason;
    if (step.temporary) return "454 4.7.0 Temporary authentication failure: " + reason;
    return "535 5.7.8 Error: authentication failed: " + reason;
}

}  // namespace postern::sasl

// The Cyrus SASL implementation of SaslServerFactory (smtpd_sasl_type = cyrus), after
// Postfix's xsasl_cyrus_server.c: one sasl_server_init per process with the application
// name smtpd_sasl_path (Cyrus reads <name>.conf from cyrus_sasl_config_path or its
// default directories), one sasl_conn_t per SMTP connection. The steps run on one worker
// thread (util/daemon/worker_thread.h): a password check that waits for saslauthd
// stalls no other session.
#pragma once

#include <memory>

#include "util/config/config.h"
#include "util/sasl/sasl_server.h"

namespace postern::sasl {

// Initialises the library; logs "fatal:" and exits when that fails.
std::unique_ptr<SaslServerFactory> create_cyrus_factory(const config::Config& config, event_base* base);

}  // namespace postern::sasl

// Client stub of the cleanup service (public/cleanup), for pickup, local (forwarding),
// bounce (notifications) and smtpd: open, envelope, content in chunks, finish. Blocking
// with a time limit per step; see util/ipc/mail_proto.h for the record sequence.
#pragma once

#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/daemon/ipc_client.h"
#include "util/ipc/mail_proto.h"

namespace postern::ipc::mail {

class CleanupClient {
public:
    // `queue_directory` + "/public/cleanup" is the socket.
    CleanupClient(const std::string& queue_directory, long timeout_seconds);

    // Starts a message; returns its queue ID.
    Result<std::string> open(long flags);
    Status envelope(const CleanupEnvelope& env);
    // Message bytes (header and body, LF line ends), any split; buffered to 64 KiB records.
    Status content(std::string_view data);
    // Ends the message and waits for the result (sent after cleanup's fsync).
    Result<CleanupResult> finish();

private:
    Status flush_content();

    daemon::IpcClient ipc_;
    std::string pending_;
};

// One whole message in one call (bounce notices, forwarded mail).
Result<CleanupResult> submit_message(const std::string& queue_directory, long timeout_seconds,
                                     long flags, const CleanupEnvelope& env,
                                     std::string_view message);

}  // namespace postern::ipc::mail

// The anvil(8) protocol: every request and reply between a rate-limited server (smtpd)
// and anvil, as typed records. Attribute names are Postfix's (anvil_clnt.h):
//   request: request=connect|disconnect|message|recipient|newtls|newtls_report|auth|lookup
//            ident=service:address
//   reply:   status=0 (-1: unknown request) and, per request,
//            connect: count, rate; message|recipient|newtls|newtls_report|auth: rate;
//            lookup: count, rate, mail, rcpt, newtls, auth; disconnect: nothing more.
// from_record() rejects a missing, repeated or unknown field.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"
#include "util/daemon/ipc_client.h"
#include "util/ipc/attr.h"

namespace postern::ipc::anvil {

enum class Request { Connect, Disconnect, Message, Recipient, NewTls, NewTlsReport, Auth, Lookup };

std::string_view request_name(Request r);
std::optional<Request> request_from_name(std::string_view name);

inline constexpr long kStatusOk = 0;
inline constexpr long kStatusFail = -1;

struct AnvilRequest {
    Request request = Request::Lookup;
    std::string ident;

    AttrRecord to_record() const;
    // An unknown request name is an error here; the server answers status=-1 for it.
    static Result<AnvilRequest> from_record(const AttrRecord& record);
};

struct AnvilReply {
    long status = kStatusOk;
    long count = 0, rate = 0, mail = 0, rcpt = 0, newtls = 0, auth = 0;

    // The fields that `request` carries (only status when status is not ok).
    AttrRecord to_record(Request request) const;
    static Result<AnvilReply> from_record(Request request, const AttrRecord& record);
};

// Postfix's ident: "service:client_address".
std::string make_ident(std::string_view service, std::string_view address);

// Client stub for servers that report to anvil. It keeps one connection, because anvil
// ties a "connect" to the client connection that made it.
class AnvilClient {
public:
    AnvilClient(std::string socket_path, long timeout_seconds) : ipc_(std::move(socket_path), timeout_seconds) {}

    Result<AnvilReply> call(Request request, std::string_view service, std::string_view address);
    // Shorthands: (count, rate) for connect; rate for the rate requests.
    Result<AnvilReply> connect(std::string_view service, std::string_view addr) {
        return call(Request::Connect, service, addr);
    }
    Status disconnect(std::string_view service, std::string_view addr);
    Result<long> rate(Request request, std::string_view service, std::string_view addr);
    Result<AnvilReply> lookup(std::string_view service, std::string_view addr) {
        return call(Request::Lookup, service, addr);
    }

private:
    daemon::IpcClient ipc_;
};

}  // namespace postern::ipc::anvil

#include "util/dsn/uniform_verdict.h"

#include "util/daemon/server.h"
#include "util/dsn/dsn_text.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"

namespace postern::dsn {

Verdict verdict_from_nexthop(std::string_view nexthop, std::string_view fallback) {
    SplitReason split = split_reason(nexthop, fallback);
    Verdict v;
    v.status = split.status[0] == fallback[0] ? split.status : std::string(fallback);
    v.reason = split.text;
    switch (fallback[0]) {
    case '2':
        v.action = "delivered", v.log_status = "sent";
        break;
    case '4':
        v.action = "delayed", v.log_status = "deferred";
        break;
    default:
        v.action = "failed", v.log_status = "bounced";
        break;
    }
    return v;
}

ipc::mail::DeliveryReply apply_verdict(const ipc::mail::DeliveryRequest& request,
                                       const Verdict& verdict, timeval handoff, int delay_digits,
                                       const std::string& relay) {
    ipc::mail::DeliveryReply reply;
    timeval now{};
    gettimeofday(&now, nullptr);
    for (size_t i = 0; i < request.recipients.size(); ++i) {
        const ipc::mail::DeliveryRecipient& rcpt = request.recipients[i];
        log::DeliveryEvent e;
        e.queue_id = request.queue_id;
        e.recipient = rcpt.address;
        e.orig_recipient = rcpt.orig;
        e.relay = relay;
        e.times.incoming_arrival = {request.arrival_sec, static_cast<suseconds_t>(request.arrival_usec)};
        e.times.active_arrival = request.active_arrival(handoff);
        e.times.agent_handoff = handoff;
        e.times.deliver_done = now;
        e.dsn = verdict.status;
        e.status = verdict.log_status;
        e.reason = verdict.reason;
        e.delay_max_digits = delay_digits;
        log::info("%s", log::delivery_line(e, now).c_str());
        reply.results.push_back({static_cast<long>(i), verdict.status, verdict.action, verdict.reason, relay, false});
    }
    return reply;
}

int run_uniform_agent(int argc, char** argv, VerdictFn decide) {
    std::string service;
    int delay_digits = 2;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) {
        if (!ctx.args().args.empty())
            log::fatal("unexpected command-line argument: %s", ctx.args().args[0].c_str());
        service = ctx.args().service_name;
        delay_digits = static_cast<int>(ctx.config().get_int("delay_logging_resolution_limit"));
    };
    hooks.on_request = [&](daemon::Connection& conn, const ipc::AttrRecord& record) -> ipc::AttrRecord {
        timeval handoff{};
        gettimeofday(&handoff, nullptr);
        auto req = ipc::mail::DeliveryRequest::from_record(record);
        if (!req) {
            log::warn("malformed delivery request: %s", req.error().c_str());
            conn.close_after_write();
            return {};
        }
        return apply_verdict(*req, decide(*req, service), handoff, delay_digits).to_record();
    };
    return daemon::run_single_server(argc, argv, hooks);
}

}  // namespace postern::dsn

// pipe(8): delivery to an external command named in master.cf, as Postfix's pipe:
//
//   dovecot unix - n n - - pipe flags=DRhu user=vmail:vmail
//     argv=/usr/lib/dovecot/deliver -f ${sender} -d ${recipient}
//
// One DeliveryRequest at a time (single server): the argument vector is expanded with
// the request's macros (an argument naming ${recipient} and the like once per
// recipient), the command runs as user= (never root nor mail_owner: refused at start,
// as Postfix does) without a shell, the message goes to its standard input with the
// headers the flags ask for, and its exit status (<sysexits.h>, or a "4.x.x text" /
// "5.x.x text" at the start of its output) decides the fate of every recipient of the
// request. The process runs as root (master.cf unprivileged column "n") with
// mail_owner's effective ids between deliveries.
#include <grp.h>
#include <pwd.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/config/config.h"
#include "util/daemon/server.h"
#include "util/dsn/uniform_verdict.h"
#include "util/log/log.h"
#include "util/mailbox/pipe_attr.h"
#include "util/mailbox/pipe_command.h"
#include "util/mailbox/queued_message.h"
#include "util/mailbox/user_ids.h"
#include "util/queue/queue_layout.h"

namespace postern::pipe {
namespace {

namespace mail = ipc::mail;
using mailbox::PipeAttr;

dsn::Verdict verdict(std::string status, std::string reason, const char* action = nullptr) {
    dsn::Verdict v;
    v.status = std::move(status);
    v.reason = std::move(reason);
    switch (v.status[0]) {
        case '2': v.action = action ? action : "relayed", v.log_status = "sent"; break;
        case '4': v.action = "delayed", v.log_status = "deferred"; break;
        default: v.action = "failed", v.log_status = "bounced"; break;
    }
    return v;
}

class PipeService {
public:
    void post_jail_init(daemon::ServerContext& ctx) {
        const config::Config& c = ctx.config();
        service_ = ctx.args().service_name.empty() ? "pipe" : ctx.args().service_name;
        config_dir_ = c.config_dir();
        // Commands run as user=: the process must keep root (master.cf unprivileged "n").
        if (ctx.args().unprivileged) log::fatal("service %s requires privileged operation", service_.c_str());
        auto attr = mailbox::parse_pipe_attr(ctx.args().args);
        if (!attr) log::fatal("%s", attr.error().c_str());
        attr_ = std::move(*attr);
        resolve_user(c);
        time_limit_ = c.get_time("command_time_limit");
        if (auto raw = c.raw(service_ + "_time_limit")) {
            auto t = config::parse_time_value(c.expand(*raw), 's');
            if (!t || *t < 1) log::fatal("bad time value for parameter %s_time_limit: %s", service_.c_str(), raw->c_str());
            time_limit_ = *t;
        }
        delimiters_ = c.get("recipient_delimiter");
        export_env_ = c.get_list("export_environment");
        delay_digits_ = static_cast<int>(c.get_int("delay_logging_resolution_limit"));
        auto layout = queue::Layout::from_config(c);
        if (!layout) log::fatal("%s", layout.error().c_str());
        layout_ = *layout;
        // Between deliveries a root pipe runs with mail_owner's effective ids.
        if (Status st = mailbox::set_eugid(owner_uid_, owner_gid_); !st) log::fatal("%s", st.error().c_str());
    }

    ipc::AttrRecord serve(daemon::Connection& conn, const ipc::AttrRecord& record) {
        timeval handoff{};
        gettimeofday(&handoff, nullptr);
        auto req = mail::DeliveryRequest::from_record(record);
        if (!req) {
            log::warn("malformed delivery request: %s", req.error().c_str());
            conn.close_after_write();
            return {};
        }
        dsn::Verdict v = deliver(*req);
        if (req->flags & mail::kDeliveryFlagVerify)
            v.log_status = v.status[0] == '2' ? "deliverable" : v.status[0] == '5' ? "undeliverable" : "deferred";
        return dsn::apply_verdict(*req, v, handoff, delay_digits_, service_).to_record();
    }

private:
    // user=name[:group] with Postfix's checks; fatal when the command would run as
    // root or as the mail system owner.
    void resolve_user(const config::Config& c) {
        const passwd* pw = ::getpwnam(attr_.user.c_str());
        if (!pw) log::fatal("get_service_attr: unknown username: %s", attr_.user.c_str());
        uid_ = pw->pw_uid, gid_ = pw->pw_gid;
        if (!attr_.group.empty()) {
            const group* gr = ::getgrnam(attr_.group.c_str());
            if (!gr) log::fatal("get_service_attr: unknown group: %s", attr_.group.c_str());
            gid_ = gr->gr_gid;
        }
        std::string owner = c.get("mail_owner");
        if (const passwd* o = ::getpwnam(owner.c_str())) owner_uid_ = o->pw_uid, owner_gid_ = o->pw_gid;
        if (uid_ == 0) log::fatal("user= command-line attribute specifies root privileges");
        if (uid_ == owner_uid_) log::fatal("user= command-line attribute specifies mail system owner %s", owner.c_str());
        if (gid_ == 0) log::fatal("user= command-line attribute specifies privileged group id 0");
        if (gid_ == owner_gid_)
            log::fatal("user= command-line attribute specifies mail system owner %s group id %ld", owner.c_str(),
                       static_cast<long>(gid_));
    }

    dsn::Verdict deliver(const mail::DeliveryRequest& req) {
        const auto& rcpts = req.recipients;
        if (req.nexthop.empty()) log::fatal("empty nexthop hostname");
        for (auto [flag, letter] : {std::pair{mailbox::kCopyDelivered, 'D'}, {mailbox::kCopyOrigRcpt, 'O'}}) {
            if ((attr_.flags & flag) && rcpts.size() > 1) {
                log::warn("pipe flag `%c' requires %s_destination_recipient_limit = 1", letter, service_.c_str());
                return verdict("4.3.5", "mail system configuration error");
            }
        }
        if (attr_.size_limit != 0 && req.data_size > attr_.size_limit)
            return verdict("5.2.3", "message too large");
        if (req.flags & mail::kDeliveryFlagVerify)
            return verdict("2.0.0", "delivers to command: " + attr_.command[0]);
        auto message = mailbox::QueuedMessage::open(layout_, req.queue_name, req.queue_id);
        if (!message) {
            log::warn("%s: %s", req.queue_id.c_str(), message.error().c_str());
            return verdict("4.3.0", "mail system configuration error");
        }
        if ((attr_.flags & mailbox::kCopyDelivered) && message->delivered_to(rcpts[0].address))
            return verdict("5.4.6", "mail forwarding loop for " + rcpts[0].address);

        std::string sender = req.sender.empty() ? attr_.null_sender : req.sender;
        auto argv = mailbox::expand_pipe_argv(attr_.command, macros(req, sender), recipients(req), attr_.flags,
                                              delimiters_);
        if (!argv) {
            log::warn("file %s/master.cf: service %s: %s", config_dir_.c_str(), service_.c_str(),
                      argv.error().c_str());
            return verdict("4.3.5", "mail system configuration error");
        }
        return run(req, *message, std::move(*argv), sender);
    }

    dsn::Verdict run(const mail::DeliveryRequest& req, const mailbox::QueuedMessage& message,
                     std::vector<std::string> argv, const std::string& sender) {
        mailbox::PipeCommand cmd;
        cmd.argv = std::move(argv);
        cmd.exported = export_env_;
        cmd.set_ids = mailbox::can_switch_ids();
        cmd.uid = uid_, cmd.gid = gid_;
        cmd.cwd = attr_.exec_dir;  // "": queue_directory, where the daemon runs
        cmd.chroot = attr_.chroot_dir;
        cmd.time_limit = time_limit_;
        mailbox::CopyAttr copy;
        copy.flags = attr_.flags & 0xffffu;
        copy.sender = sender;
        copy.orig_rcpt = req.recipients[0].orig.empty() ? req.recipients[0].address : req.recipients[0].orig;
        copy.delivered = req.recipients[0].address;
        copy.fold_delivered = false;
        copy.eol = attr_.eol;
        mailbox::PipeResult r = mailbox::run_pipe_command(cmd, copy, message.lines());
        switch (r.status) {
            case mailbox::PipeStatus::Ok: {
                std::string why = "delivered via " + service_ + " service";
                // Success output is trimmed (failure reasons keep the newline's space).
                if (auto out = trim_right(r.output); !out.empty()) why += " (" + std::string(out) + ")";
                return verdict("2.0.0", why, (attr_.flags & mailbox::kPipeFinal) ? "delivered" : "relayed");
            }
            case mailbox::PipeStatus::Bounce:
                return verdict(r.dsn, r.reason);
            case mailbox::PipeStatus::Defer:
            case mailbox::PipeStatus::Corrupt:
                break;
        }
        return verdict(r.dsn.empty() || r.dsn[0] != '4' ? "4.3.0" : r.dsn, r.reason);
    }

    mailbox::PipeMacros macros(const mail::DeliveryRequest& req, const std::string& sender) const {
        mailbox::PipeMacros m;
        bool quote = !sender.empty() && (attr_.flags & mailbox::kPipeQuoteLocal);
        m["sender"] = quote ? address::to_external(sender) : sender;
        m["nexthop"] = (attr_.flags & mailbox::kPipeFoldHost) ? lowercase(req.nexthop) : req.nexthop;
        m["size"] = std::to_string(req.data_size);
        m["queue_id"] = req.queue_id;
        m["client_address"] = req.client_address;
        m["client_hostname"] = req.client_name;
        m["client_protocol"] = req.client_protocol;
        m["client_helo"] = req.client_helo;
        return m;
    }

    static std::vector<mailbox::PipeRecipient> recipients(const mail::DeliveryRequest& req) {
        std::vector<mailbox::PipeRecipient> out;
        for (const auto& r : req.recipients) out.push_back({r.address, r.orig.empty() ? r.address : r.orig});
        return out;
    }

    std::string service_, config_dir_;
    PipeAttr attr_;
    uid_t uid_ = 0, owner_uid_ = 0;
    gid_t gid_ = 0, owner_gid_ = 0;
    long time_limit_ = 1000;
    std::string delimiters_;
    std::vector<std::string> export_env_;
    int delay_digits_ = 2;
    queue::Layout layout_;
};

}  // namespace
}  // namespace postern::pipe

int main(int argc, char** argv) {
    using namespace postern;
    pipe::PipeService service;
    daemon::DaemonHooks hooks;
    hooks.post_jail_init = [&](daemon::ServerContext& ctx) { service.post_jail_init(ctx); };
    hooks.on_request = [&](daemon::Connection& c, const ipc::AttrRecord& r) { return service.serve(c, r); };
    return daemon::run_single_server(argc, argv, hooks);
}

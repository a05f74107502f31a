// The message: DATA and BDAT (RFC 3030), the asynchronous hand-off to cleanup (queue
// file opened at the first accepted recipient, envelope and content streamed, the 250
// sent only when cleanup's result arrives after its fsync), the Received: header.
#include <event2/event.h>

#include "smtpd/smtpd_session.h"
#include "util/base/strings.h"
#include "util/daemon/server.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/message/added_headers.h"
#include "util/queue/queue_file.h"
#include "util/tls/tls_server.h"

namespace postern::smtpd {

namespace proto = ipc::mail;

namespace {
// Content queued for cleanup beyond this makes the session stop reading its client.
constexpr size_t kMaxBacklog = 1 << 20;
}  // namespace

void Session::open_queue_file(std::function<void(bool)> done) {
    cleanup_ = std::make_unique<proto::CleanupStream>(
        svc_.base, cfg_.queue_directory + "/" + std::string(proto::kCleanupSocket), cfg_.ipc_timeout);
    long flags = proto::kCleanupDefault;
    if (check_ != nullptr) {
        if (check_->actions().hold) flags |= proto::kCleanupHold;
        if (check_->actions().discard) flags |= proto::kCleanupDiscard;
    }
    open_flags_ = flags;
    wait_begin();
    std::weak_ptr<bool> alive = alive_;
    cleanup_->open(flags, [this, alive, done](Result<std::string> id) {
        if (alive.expired()) return;
        wait_end();
        if (!id) {
            log::warn("%s: %s", facts_.client.namaddr().c_str(), id.error().c_str());
            cleanup_.reset();
            cleanup_failed_ = true;
            done(false);
        } else {
            facts_.transaction.queue_id = *id;
            std::string sasl;
            if (facts_.sasl.authenticated())
                sasl = ", sasl_method=" + facts_.sasl.method + ", sasl_username=" + facts_.sasl.username;
            log::info("%s: client=%s%s", id->c_str(), facts_.client.namaddr().c_str(), sasl.c_str());
            done(true);
        }
        if (!alive.expired()) pump();
    });
}

std::string Session::received_header() const {
    const auto& c = facts_.client;
    std::string addr = c.address.find(':') != std::string::npos ? "IPv6:" + c.address : c.address;
    std::string h = "Received: from " + (facts_.helo_name.empty() ? c.name : facts_.helo_name) + " (" + c.name +
                    " [" + addr + "])\n";
    if (facts_.tls.active && cfg_.tls_received_header && conn_.ssl() != nullptr)
        h += "\t" + tls::received_clause(tls::session_info(conn_.ssl())) + "\n";
    if (facts_.sasl.authenticated() && cfg_.sasl_authenticated_header)
        h += "\t(Authenticated sender: " + facts_.sasl.username + ")\n";
    const auto& t = facts_.transaction;
    h += "\tby " + cfg_.myhostname + " (" + cfg_.mail_name + ") with " + facts_.protocol + " id " + t.queue_id;
    if (t.recipients.size() == 1) {
        h += "\n\tfor <" + t.recipients[0].orig + ">; ";
    } else {
        h += ";\n\t";
    }
    h += message::mail_date(arrival_) + "\n";
    return h;
}

proto::CleanupEnvelope Session::make_envelope() const {
    const auto& t = facts_.transaction;
    proto::CleanupEnvelope env;
    env.sender = t.sender;
    env.arrival_sec = arrival_;
    env.envid = t.envid;
    env.ret = t.ret;
    if (t.smtputf8) env.smtputf8 = proto::kSmtputf8Requested;
    for (const RecipientFacts& r : t.recipients)
        env.recipients.push_back(proto::CleanupRecipient{r.address, r.orig, r.dsn_orcpt, r.notify});
    if (check_ != nullptr) {
        const MessageActions& act = check_->actions();
        // REDIRECT replaces every recipient; BCC adds one (access(5)).
        if (act.redirect) {
            std::string orig = t.recipients.empty() ? "" : t.recipients.front().orig;
            env.recipients = {proto::CleanupRecipient{*act.redirect, orig, "", 0}};
        }
        if (act.bcc) env.recipients.push_back(proto::CleanupRecipient{*act.bcc, "", "", proto::kNotifyNever});
    }
    namespace qa = queue::attr;
    auto& a = env.attributes;
    a.emplace_back(qa::kRewriteContext, "remote");
    a.emplace_back(qa::kClientName, facts_.client.name);
    a.emplace_back(qa::kClientAddress, facts_.client.address);
    a.emplace_back(qa::kClientPort, facts_.client.port);
    a.emplace_back(qa::kOrigin, facts_.client.namaddr());
    if (!facts_.helo_name.empty()) a.emplace_back(qa::kHeloName, facts_.helo_name);
    a.emplace_back(qa::kProtocol, facts_.protocol);
    if (t.body_type == "8BITMIME") a.emplace_back(qa::kEncoding, "8bitmime");
    if (t.body_type == "7BIT") a.emplace_back(qa::kEncoding, "7bit");
    if (facts_.sasl.authenticated()) {
        a.emplace_back("sasl_method", facts_.sasl.method);
        a.emplace_back("sasl_username", facts_.sasl.username);
        if (!facts_.sasl.sender.empty()) a.emplace_back("sasl_sender", facts_.sasl.sender);
    }
    return env;
}

// Envelope, our Received: header and PREPEND headers go to cleanup before any content.
void Session::start_message() {
    in_data_ = true;
    message_bytes_ = 0;
    if (cleanup_ == nullptr) return;
    cleanup_->envelope(make_envelope());
    std::string head = received_header();
    if (check_ != nullptr)
        for (const std::string& h : check_->actions().prepend_headers) head = h + "\n" + head;
    cleanup_->content(head);
}

void Session::cmd_data(std::string_view args) {
    auto& t = facts_.transaction;
    if (!args.empty()) return reply("501 5.5.4 Syntax: DATA");
    if (bdat_ || bdat_failed_) return reply("503 5.5.1 Error: DATA after BDAT");
    if (t.recipients.empty())
        return reply(t.mail_given ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command");
    check(CheckPoint::Data, [this](CheckOutcome outcome) {
        if (outcome.rejected()) return reply(outcome.reply);
        start_message();
        reply("354 End data with <CR><LF>.<CR><LF>");
        reader_.start_data();
        where_ = "DATA content";
    });
}

void Session::cmd_bdat(std::string_view args) {
    auto& t = facts_.transaction;
    auto words = split_tokens(args, " ");
    long size = -1;
    bool last = words.size() == 2 && iequals(words[1], "LAST");
    if (words.empty() || words.size() > 2 || (words.size() == 2 && !last) || !parse_long(words[0], size) || size < 0) {
        // The size of what follows is unknown: the session cannot continue.
        reply("521 5.5.4 Syntax: BDAT count [LAST]");
        flush();
        close("");
        return;
    }
    std::string refusal;
    if (size == 0 && !last) {
        refusal = "551 5.7.1 Null BDAT request";
        log::warn("%s: null BDAT request from %s", t.queue_id.empty() ? "NOQUEUE" : t.queue_id.c_str(),
                  facts_.client.namaddr().c_str());
    }
    else if (bdat_failed_) refusal = "551 5.0.0 Discarded " + std::to_string(size) + " bytes after earlier error";
    else if (t.recipients.empty())
        refusal = t.mail_given ? "554 5.5.1 Error: no valid recipients" : "503 5.5.1 Error: need RCPT command";
    else if (cfg_.message_size_limit > 0 && message_bytes_ + size > cfg_.message_size_limit)
        refusal = "552 5.3.4 Chunk exceeds message size limit";
    bdat_last_ = last;
    where_ = "BDAT content";
    chunk_bytes_ = size;
    reader_.start_chunk(static_cast<size_t>(size));
    if (!refusal.empty()) {
        // The chunk is read and thrown away; the reply comes at its end. Until RSET or a
        // BDAT LAST, the BDAT transaction stays failed (Postfix's SMTPD_BDAT_STAT_ERROR).
        bdat_failed_ = true;
        bdat_refusal_ = refusal;
        return;
    }
    if (!bdat_) {
        bdat_ = true;
        start_message();
    }
}

void Session::message_content(const std::string& data, bool bare_lf) {
    if (!bdat_refusal_.empty()) return;
    // Postfix's act_size: each line with a CRLF (BDAT too, whatever its line ends were).
    long lines = static_cast<long>(std::count(data.begin(), data.end(), '\n'));
    message_bytes_ += static_cast<long>(data.size()) + lines;
    if (!data.empty()) bdat_partial_line_ = data.back() != '\n';
    if (bare_lf && bare_lf_ == BareLf::Reject) content_bare_lf_ = true;
    if (cfg_.message_size_limit > 0 && message_bytes_ > cfg_.message_size_limit) size_exceeded_ = true;
    if (size_exceeded_ || content_bare_lf_ || cleanup_ == nullptr) return;
    cleanup_->content(data);
    if (cleanup_->backlog() > kMaxBacklog) {
        // Cleanup is slower than the client: stop reading until it caught up.
        wait_begin();
        std::weak_ptr<bool> alive = alive_;
        cleanup_->on_drain([this, alive] {
            if (alive.expired()) return;
            wait_end();
            pump();
        });
    }
}

void Session::end_of_message() {
    if (!bdat_refusal_.empty()) {
        std::string r = std::move(bdat_refusal_);
        bdat_refusal_.clear();
        reader_.start_commands();
        if (bdat_failed_ && bdat_last_) reset_transaction();
        return reply(r);
    }
    if (bdat_ && !bdat_last_) {
        reader_.start_commands();
        return reply(strprintf("250 2.0.0 Ok: %ld bytes", chunk_bytes_));
    }
    if (bdat_) {
        std::string cr = reader_.end_chunks();
        if (cleanup_ != nullptr) cleanup_->content(cr);
        // An unterminated last line counts as if it had its CRLF, as in Postfix.
        if (bdat_partial_line_ || !cr.empty()) message_bytes_ += static_cast<long>(cr.size()) + 2;
    }
    where_ = "END-OF-MESSAGE";
    std::string refusal;
    if (size_exceeded_) refusal = "552 5.3.4 Message size exceeds fixed limit";
    else if (content_bare_lf_)
        refusal = std::to_string(cfg_.bare_lf_code) + " 5.5.2 " + cfg_.myhostname + " Error: bare <LF> received";
    else if (cleanup_ == nullptr) refusal = "451 4.3.0 Error: queue file write error";
    if (!refusal.empty()) {
        if (size_exceeded_)
            log::warn("%s: queue file size limit exceeded", facts_.transaction.queue_id.c_str());
        else if (content_bare_lf_)
            log_reject("bare <LF> received");
        reset_transaction();
        return reply(refusal);
    }
    facts_.transaction.size = message_bytes_;
    check(CheckPoint::EndOfData, [this](CheckOutcome outcome) {
        if (outcome.rejected()) {
            reset_transaction();
            return reply(outcome.reply);
        }
        if (check_ != nullptr && check_->actions().discard && !(open_flags_ & proto::kCleanupDiscard)) {
            // DISCARD decided after the queue file was opened: the client is told it was
            // queued and cleanup removes the unfinished file (the engine logged it).
            std::string qid = facts_.transaction.queue_id;
            reset_transaction();
            return reply("250 2.0.0 Ok: queued as " + qid);
        }
        // HOLD decided after the queue file was opened (a later RCPT, the DATA or
        // end-of-data restrictions) goes with the end of the message.
        long late_flags = 0;
        if (check_ != nullptr && check_->actions().hold && !(open_flags_ & proto::kCleanupHold))
            late_flags |= proto::kCleanupHold;
        wait_begin();
        std::weak_ptr<bool> alive = alive_;
        cleanup_->finish([this, alive](Result<proto::CleanupResult> result) {
            if (alive.expired()) return;
            wait_end();
            cleanup_done(std::move(result));
            if (!alive.expired()) pump();
        }, late_flags);
    });
}

// Cleanup's verdict, after its fsync: Postfix's replies for each status.
void Session::cleanup_done(Result<proto::CleanupResult> result) {
    std::string qid = facts_.transaction.queue_id;
    bool bdat = bdat_;
    long bytes = message_bytes_;
    std::string text;
    if (!result) {
        log::warn("%s: %s", qid.c_str(), result.error().c_str());
        text = "451 4.3.0 Error: queue file write error";
    } else if (result->status == proto::kCleanupOk) {
        text = bdat ? strprintf("250 2.0.0 Ok: %ld bytes queued as %s", bytes, qid.c_str())
                    : "250 2.0.0 Ok: queued as " + qid;
    } else {
        long st = result->status;
        std::string reason = result->reason.empty() ? proto::cleanup_status_text(st) : result->reason;
        if (st & proto::kCleanupStatBad) text = strprintf("451 4.3.0 Error: internal error %ld", st);
        else if (st & proto::kCleanupStatWrite) text = "451 4.3.0 Error: queue file write error";
        else if (st & proto::kCleanupStatSize) text = "552 5.3.4 Message size exceeds fixed limit";
        else if (st & proto::kCleanupStatHops) text = "554 5.4.0 Error: too many hops";
        else if (st & proto::kCleanupStatDefer) text = (reason[0] == '4' ? "451 " : "451 4.7.1 ") + reason;
        else if (st & proto::kCleanupStatRcpt) text = "550 5.1.0 Error: no recipients specified";
        else text = (reason[0] == '5' ? "550 " : "550 5.7.1 ") + reason;
    }
    reset_transaction();
    reply(text);
}

}  // namespace postern::smtpd

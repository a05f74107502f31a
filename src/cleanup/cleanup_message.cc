// The envelope and the end of a message: address processing, limits, the queue file.
// Headers and body are in cleanup_content.cc.
#include "cleanup_message.h"

#include <unistd.h>

#include <ctime>

#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/message/added_headers.h"

namespace postern::cleanup {

namespace proto = ipc::mail;

CleanupMessage::CleanupMessage(const Settings& settings, AddressRewriter& rewriter, long flags,
                               queue::QueueFileWriter file)
    : settings_(settings), rewriter_(rewriter), flags_(flags), file_(std::move(file)) {
    message::ParserLimits limits;
    limits.header_size_limit = static_cast<size_t>(settings.header_size_limit);
    if (settings.message_size_limit > 0) limits.max_line = static_cast<size_t>(settings.message_size_limit) + 1;
    limits.mime = settings.mime_processing;
    limits.mime_nesting_limit = static_cast<size_t>(settings.mime_nesting_limit);
    limits.mime_boundary_length_limit = static_cast<size_t>(settings.mime_boundary_length_limit);
    parser_ = std::make_unique<message::MessageParser>(*this, limits);
    filtering_ = (flags & proto::kCleanupFilter) != 0;
    hold_ = (flags & proto::kCleanupHold) != 0;
    discard_ = (flags & proto::kCleanupDiscard) != 0;
    if (settings.line_length_limit > 0) file_.set_record_limit(static_cast<size_t>(settings.line_length_limit));
}

std::string CleanupMessage::attribute(std::string_view name) const {
    for (const auto& [n, v] : env_.attributes)
        if (n == name) return v;
    return {};
}

void CleanupMessage::envelope(const proto::CleanupEnvelope& env) {
    env_ = env;
    has_envelope_ = true;
    std::string context = attribute(queue::attr::kRewriteContext);
    if (context == "remote") rewrite_context_ = "remote";
    // Header addresses: always in the local context, in the remote one only when
    // remote_header_rewrite_domain says how (Postfix's hdr_rewrite_context).
    if (rewrite_context_ == "local" || (flags_ & proto::kCleanupLocalSubmit))
        header_context_ = "local";
    else if (!settings_.remote_header_rewrite_domain.empty())
        header_context_ = "remote";
    bool map_ok = (flags_ & proto::kCleanupMapOk) != 0;
    sender_ = rewriter_.rewrite(env.sender, rewrite_context_, kEnvelopeSender, map_ok, address_error_);
    if (flags_ & proto::kCleanupBccOk) {
        std::string bcc = rewriter_.bcc_for(settings_.sender_bcc, sender_, address_error_);
        if (!bcc.empty()) bcc_.push_back(bcc);
    }
    for (const proto::CleanupRecipient& r : env.recipients) add_recipient(r.address, r.orig, r.dsn_orcpt, r.notify);
}

void CleanupMessage::add_recipient(const std::string& address, const std::string& orig,
                                   const std::string& orcpt, long notify, bool bcc) {
    bool map_ok = (flags_ & proto::kCleanupMapOk) != 0;
    std::string clean = rewriter_.rewrite(address, rewrite_context_, kEnvelopeRecipient, map_ok, address_error_);
    if (!bcc) {
        last_recipient_ = clean;
        if (flags_ & proto::kCleanupBccOk) {
            std::string copy = rewriter_.bcc_for(settings_.recipient_bcc, clean, address_error_);
            if (!copy.empty()) bcc_.push_back(copy);
        }
    }
    std::vector<std::string> expanded = map_ok ? rewriter_.expand(clean, address_error_)
                                               : std::vector<std::string>{clean};
    std::string original = settings_.enable_original_recipient ? (orig.empty() ? address : orig) : "";
    // As Postfix's cleanup: a recipient without ORCPT gets "rfc822;" and its rewritten
    // address (before alias expansion); blind copies get none.
    std::string dsn_orcpt = orcpt.empty() && !bcc ? "rfc822;" + clean : orcpt;
    for (std::string& a : expanded) {
        // Postfix's duplicate filter: the same (original, final) pair is delivered once.
        std::string key = original + '\n' + a;
        if (seen_recipients_.count(key)) continue;
        if (static_cast<long>(seen_recipients_.size()) < settings_.duplicate_filter_limit ||
            settings_.duplicate_filter_limit == 0)
            seen_recipients_.insert(key);
        queue::Recipient r;
        r.address = std::move(a);
        r.original = original;
        r.dsn_orcpt = dsn_orcpt;
        r.dsn_notify = static_cast<int>(notify);
        recipients_.push_back(std::move(r));
    }
}

void CleanupMessage::content(std::string_view data) {
    if (!content_started_) {
        content_started_ = true;
        if (flags_ & proto::kCleanupLocalSubmit) {
            std::string uid_text = attribute(kSubmitUidAttr);
            long uid = uid_text.empty() ? static_cast<long>(getuid()) : std::atol(uid_text.c_str());
            parser_->feed(message::received_header(settings_.myhostname, settings_.mail_name, uid,
                                                   queue_id(), file_.arrival_sec()) + "\n");
        }
    }
    size_ += data.size();
    if (settings_.message_size_limit > 0 && size_ > static_cast<size_t>(settings_.message_size_limit)) {
        if (!(errs_ & proto::kCleanupStatSize)) {
            errs_ |= proto::kCleanupStatSize;
            out_.clear();
            out_.shrink_to_fit();
        }
        return;
    }
    if (errs_ & proto::kCleanupStatSize) return;
    parser_->feed(data);
}

void CleanupMessage::fail(long status, std::string reason) {
    errs_ |= status;
    if (reason_.empty()) reason_ = std::move(reason);
}

void CleanupMessage::take_address_error() {
    if (address_error_.status == 0) return;
    if (!address_error_.warning.empty())
        log::warn("%s: %s", queue_id().c_str(), address_error_.warning.c_str());
    fail(address_error_.status, address_error_.reason);
    address_error_ = {};
}

void CleanupMessage::late_flags(long flags) {
    if (flags & proto::kCleanupHold) hold_ = true;
    if (flags & proto::kCleanupDiscard) discard_ = true;
}

void CleanupMessage::finish() {
    if (!content_started_) content("");
    if (!(errs_ & proto::kCleanupStatSize)) parser_->finish();
    if (!out_ok()) return;
    check_mime_nesting();
    if (!out_ok()) return;
    if (parser_->header_truncated() && (flags_ & proto::kCleanupExtract))
        fail(proto::kCleanupStatCont, "5.6.0 message header length exceeds safety limit");
    if (flags_ & proto::kCleanupExtract) {
        std::vector<std::string> list = resent_ ? resent_rcpt_ : header_rcpt_;
        for (const std::string& a : list)
            if (!a.empty()) add_recipient(a, "", "", 0);
    }
    bool has_recipients = !recipients_.empty();  // blind copies alone are no recipients
    add_blind_copies();
    take_address_error();
    if (!out_ok()) return;
    if (!redirect_.empty()) {
        std::string orig = recipients_.empty() ? "" : recipients_.front().original;
        recipients_.clear();
        seen_recipients_.clear();
        add_recipient(redirect_, orig, "", 0);
        take_address_error();
        if (!out_ok()) return;
    }
    if (!has_recipients && !discard_) fail(proto::kCleanupStatRcpt, "");
    if (out_ok() && !discard_) write_file();
}

// always_bcc and the sender/recipient BCC map results, once each, as Postfix adds them
// at the end of the envelope (they are not looked up in the BCC maps again).
void CleanupMessage::add_blind_copies() {
    if (!(flags_ & proto::kCleanupBccOk)) return;
    if (!settings_.always_bcc.empty()) bcc_.push_back(settings_.always_bcc);
    std::vector<std::string> copies;
    copies.swap(bcc_);
    // NOTIFY=NEVER, as Postfix's cleanup: the sender hears nothing of a blind copy.
    for (const std::string& a : copies) add_recipient(a, "", "", proto::kNotifyNever, true);
}

void CleanupMessage::write_file() {
    queue::Envelope env;
    env.fullname = env_.fullname;
    env.sender = sender_;
    env.content_filter = filter_;
    for (const auto& [name, value] : env_.attributes)
        if (name != kSubmitUidAttr && !(eight_bit_declared_ && name == queue::attr::kEncoding))
            env.attributes.emplace_back(name, value);
    if (eight_bit_declared_) env.attributes.emplace_back(queue::attr::kEncoding, "8bitmime");
    if (!env_.envid.empty()) env.attributes.emplace_back(queue::attr::kEnvid, env_.envid);
    if (env_.ret) env.attributes.emplace_back(queue::attr::kRet, std::to_string(env_.ret));
    env.size.smtputf8 = smtputf8_flags();
    env.recipients = std::move(recipients_);
    file_.write_envelope(env);
    std::string_view rest = out_;
    while (!rest.empty()) {
        size_t nl = rest.find('\n');
        file_.add_line(rest.substr(0, nl));
        rest.remove_prefix(nl + 1);
    }
    out_.clear();
    out_.shrink_to_fit();
}

// Postfix's SMTPUTF8 bookkeeping: where non-ASCII text is, once the client asked for
// SMTPUTF8 or (local submissions, smtputf8_autodetect_classes) when any is found.
long CleanupMessage::smtputf8_flags() const {
    long found = 0;
    if (!all_ascii(sender_)) found |= proto::kSmtputf8Sender;
    for (const auto& r : recipients_)
        if (!all_ascii(r.address)) found |= proto::kSmtputf8Recipient;
    if (utf8_headers_) found |= proto::kSmtputf8Header;
    long flags = env_.smtputf8 & proto::kSmtputf8Requested;
    if (found && settings_.smtputf8_autodetect_local && (flags_ & proto::kCleanupLocalSubmit))
        flags = proto::kSmtputf8Requested;
    return flags ? flags | found : 0;
}

std::string CleanupMessage::reason() const {
    if (errs_ == 0) return "";
    if (!reason_.empty()) return reason_;
    return proto::cleanup_status_text(errs_);
}

}  // namespace postern::cleanup

// Headers and body of a message in cleanup(8): header_checks and body_checks with their
// actions, the header rules of Postfix's cleanup_header_callback (drop, rewrite, extract,
// hop count, message-id logging) and the headers added at the end of the header.
#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/log/log.h"
#include "util/log/mail_events.h"
#include "util/message/added_headers.h"
#include "util/message/header_opts.h"

#include "cleanup_message.h"

namespace postern::cleanup {

namespace proto = ipc::mail;
using message::HeaderType;

namespace {

uint64_t bit(HeaderType t) { return uint64_t{1} << static_cast<int>(t); }

}  // namespace

void CleanupMessage::out(std::string_view line) { out_.append(line).push_back('\n'); }

void CleanupMessage::log_action(std::string_view action, std::string_view context, std::string_view content,
                                std::string_view text) const {
    message::ActionLogContext ctx;
    std::string origin = attribute(queue::attr::kOrigin);
    std::string protocol = attribute(queue::attr::kProtocol);
    std::string helo = attribute(queue::attr::kHeloName);
    ctx.queue_id = queue_id();
    ctx.origin = origin;
    ctx.sender = sender_;
    ctx.recipient = last_recipient_;
    ctx.proto = protocol;
    ctx.helo = helo;
    log::info("%s", message::content_action_log(ctx, action, context, content, text).c_str());
}

CleanupMessage::Verdict CleanupMessage::act(std::string_view context, std::string_view content,
                                            const std::string& value, const std::string& map_class,
                                            std::string& replacement) {
    using T = message::ContentActionType;
    message::ContentAction a = message::parse_content_action(value, context, map_class);
    for (const std::string& w : a.warnings) log::warn("%s", w.c_str());
    switch (a.type) {
        case T::Reject:
            reason_ = a.reason;
            errs_ |= a.defer ? proto::kCleanupStatDefer : proto::kCleanupStatCont;
            filtering_ = false;
            log_action("reject", context, content, a.reason);
            break;
        case T::Warn: log_action("warning", context, content, a.text); break;
        case T::Filter:
            filter_ = a.text;
            log_action("filter", context, content, a.text);
            break;
        case T::Discard:
            log_action("discard", context, content, a.text);
            discard_ = true;
            filtering_ = false;
            break;
        case T::Hold:
            if (!hold_ && !discard_) {
                log_action("hold", context, content, a.text);
                hold_ = true;
            }
            break;
        case T::Prepend:
            log_action("prepend", context, content, a.text);
            out(a.text);
            break;
        case T::Replace:
            log_action("replace", context, content, a.text);
            replacement = a.text;
            return Verdict::Replace;
        case T::Redirect:
            redirect_ = a.text;
            log_action("redirect", context, content, a.text);
            filtering_ = false;
            break;
        case T::Ignore: return Verdict::Drop;
        case T::Dunno: break;
    }
    return Verdict::Keep;
}

// Looks `text` up in `maps` and acts: Drop when the text is to be left out, Replace when
// a REPLACE changed `text` in place.
CleanupMessage::Verdict CleanupMessage::check(const MapList& maps, std::string_view context, std::string& text) {
    if (!filtering_ || maps.empty()) return Verdict::Keep;
    table::LookupResult r = maps.lookup(text);
    if (r.status == table::LookupResult::Status::Error) {
        log::warn("%s: %s map lookup problem -- message not accepted, try again later", queue_id().c_str(),
                  maps.title().c_str());
        fail(proto::kCleanupStatWrite, "4.3.0 " + maps.title() + " map lookup problem");
        return Verdict::Keep;
    }
    if (!r.found()) return Verdict::Keep;
    std::string replacement;
    Verdict v = act(context, text, r.value, maps.title(), replacement);
    if (v == Verdict::Replace) text = std::move(replacement);
    return v;
}

void CleanupMessage::header(std::string& h) {
    if (!out_ok()) return;
    if (!utf8_headers_ && !all_ascii(h)) utf8_headers_ = true;
    const message::HeaderInfo* info = settings_.headers.find_line(h);
    const MapList& maps = info && (info->flags & message::kHeaderMime) ? settings_.mime_header_checks
                                                                       : settings_.header_checks;
    Verdict v = check(maps, "header", h);
    if (v == Verdict::Drop) return;
    if (v == Verdict::Replace) info = settings_.headers.find_line(h);
    if (!out_ok()) return;
    if (!info) {
        out(h);
        return;
    }
    headers_seen_ |= bit(info->type);
    note_8bit_encoding(h, info);
    std::string value(message::header_value(h));
    if (info->type == HeaderType::MessageId || info->type == HeaderType::ResentMessageId)
        log::info("%s", log::message_id_line(queue_id(), trim(message::unfold(value)),
                                             info->type == HeaderType::ResentMessageId).c_str());
    if (info->type == HeaderType::Received && ++hops_ >= settings_.hopcount_limit)
        errs_ |= proto::kCleanupStatHops;
    if (!out_ok()) return;
    if (info->flags & message::kHeaderResent) resent_ = true;
    if (info->flags & message::kHeaderExtract) {
        auto& list = (info->flags & message::kHeaderResent) ? resent_rcpt_ : header_rcpt_;
        for (std::string& a : address::parse_address_list(value)) list.push_back(std::move(a));
    }
    if ((info->flags & (message::kHeaderSender | message::kHeaderRecip)) && !header_context_.empty())
        rewrite_header(h, *info);
    if (!(info->flags & message::kHeaderDrop)) out(h);
}

// Rewrites the addresses of a sender or recipient header; the header is replaced (and
// folded as Postfix's cleanup_fold_header) only when an address changed, so untouched
// headers keep their exact form.
void CleanupMessage::rewrite_header(std::string& h, const message::HeaderInfo& info) {
    unsigned cls = (info.flags & message::kHeaderSender) ? kHeaderSender : kHeaderRecipient;
    bool map_ok = (flags_ & proto::kCleanupMapOk) != 0;
    size_t colon = h.find(':');
    std::string name = std::string(trim(std::string_view(h).substr(0, colon)));
    auto rewritten = address::rewrite_address_header(name, std::string_view(h).substr(colon + 1),
                                                     [&](std::string_view a) {
        return rewriter_.rewrite(a, header_context_, cls, map_ok, address_error_);
    });
    if (rewritten) h = std::move(*rewritten);
}

// Headers of body parts and attached messages: checks only (no address rewriting, no
// header rules), with Postfix's choice of table: Content-* and MIME-Version headers and
// every part header of a multipart go to mime_header_checks, the other headers of an
// attached message to nested_header_checks.
void CleanupMessage::part_header(std::string& h, message::HeaderClass cls) {
    if (!out_ok()) return;
    if (!utf8_headers_ && !all_ascii(h)) utf8_headers_ = true;
    body_offset_ += h.size() + 1;
    const message::HeaderInfo* info = settings_.headers.find_line(h);
    bool mime = (info && (info->flags & message::kHeaderMime)) || cls == message::HeaderClass::Multipart;
    if (check(mime ? settings_.mime_header_checks : settings_.nested_header_checks, "header", h) == Verdict::Drop)
        return;
    note_8bit_encoding(h, settings_.headers.find_line(h));
    if (out_ok()) out(h);
}

// Postfix's detect_8bit_encoding_header: an exact "8bit" or "binary" value (any case,
// leading blanks skipped) in any header section makes the message 8-bit.
void CleanupMessage::note_8bit_encoding(const std::string& h, const message::HeaderInfo* info) {
    if (!settings_.detect_8bit_encoding_header || !info || info->type != HeaderType::ContentTransferEncoding)
        return;
    std::string_view value = message::header_value(h);
    if (iequals(value, "8bit") || iequals(value, "binary")) eight_bit_declared_ = true;
}

// Postfix reports MIME nesting beyond mime_nesting_limit when it checks content at all
// (header checks of any kind, or the strict_* MIME options).
void CleanupMessage::check_mime_nesting() {
    if (!parser_->nesting_exceeded() || !filtering_) return;
    bool checking = !settings_.header_checks.empty() || !settings_.mime_header_checks.empty() ||
                    !settings_.nested_header_checks.empty() || settings_.strict_mime;
    if (!checking) return;
    log_action("reject", "mime-error", "MIME nesting exceeds safety limit", "");
    fail(proto::kCleanupStatCont, "5.6.0 MIME nesting exceeds safety limit");
}

void CleanupMessage::headers_done() {
    if (!out_ok()) return;
    add_missing_headers();
}

void CleanupMessage::add_missing_headers() {
    bool add = !header_context_.empty() || settings_.always_add_missing_headers ||
               (flags_ & proto::kCleanupLocalSubmit);
    std::string resent = resent_ ? "Resent-" : "";
    HeaderType id_type = resent_ ? HeaderType::ResentMessageId : HeaderType::MessageId;
    if (add && !(headers_seen_ & bit(id_type))) {
        time_t created = file_.arrival_sec();
        out(message::message_id_header(resent, created, queue_id(), settings_.myhostname));
        log::info("%s", log::message_id_line(queue_id(), message::message_id_value(created, queue_id(),
                                                                                  settings_.myhostname),
                                             resent_).c_str());
        headers_seen_ |= bit(id_type);
    }
    if (!(headers_seen_ & bit(HeaderType::MessageId))) log::info("%s", log::message_id_line(queue_id(), "").c_str());
    if (add && !(headers_seen_ & bit(resent_ ? HeaderType::ResentDate : HeaderType::Date))) {
        time_t when = env_.arrival_sec ? env_.arrival_sec : file_.arrival_sec();
        out(resent + "Date: " + message::mail_date(when));
    }
    if (add && !(headers_seen_ & bit(resent_ ? HeaderType::ResentFrom : HeaderType::From)))
        out(message::from_header(resent, sender_, env_.fullname, settings_.standard_from_format));
    uint64_t visible = bit(HeaderType::To) | bit(HeaderType::ResentTo) | bit(HeaderType::Cc) | bit(HeaderType::ResentCc);
    const std::string& witheld = settings_.undisclosed_recipients_header;
    if (add && !(headers_seen_ & visible) && !witheld.empty()) {
        if (message::is_header(witheld))
            out(witheld);
        else
            log::warn("bad undisclosed_recipients_header header text \"%s\" -- need \"headername: headervalue\"",
                      witheld.c_str());
    }
}

void CleanupMessage::body_line(std::string_view line) {
    if (!out_ok()) return;
    bool in_limit = settings_.body_checks_size_limit <= 0 ||
                    body_offset_ < static_cast<size_t>(settings_.body_checks_size_limit);
    body_offset_ += line.size() + 1;
    if (!filtering_ || settings_.body_checks.empty() || !in_limit) {
        out(line);
        return;
    }
    // body_checks see a long line in pieces of line_length_limit, as Postfix's records.
    size_t piece = settings_.line_length_limit > 0 ? static_cast<size_t>(settings_.line_length_limit) : line.size();
    std::string result;
    bool keep_any = false;
    do {
        std::string part(line.substr(0, std::max<size_t>(piece, 1)));
        line.remove_prefix(std::min(line.size(), std::max<size_t>(piece, 1)));
        if (check(settings_.body_checks, "body", part) != Verdict::Drop) {
            result += part;
            keep_any = true;
        }
        if (!out_ok()) return;
    } while (!line.empty());
    if (keep_any) out(result);
}

}  // namespace postern::cleanup

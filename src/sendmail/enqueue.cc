// sendmail's delivery mode: the message on stdin becomes one maildrop file via postdrop.
// As Postfix's sendmail: leading "From " lines are dropped, CR LF becomes LF
// (sendmail_fix_line_endings), a line with only "." ends the input unless -i, lines
// longer than line_length_limit travel as continuation records, and with -t the
// recipients of the primary To/Cc/Bcc headers (or the Resent- ones, when present) are
// added after the message, in the extracted segment.
#include <string.h>
#include <unistd.h>

#include "sendmail/line_reader.h"
#include "sendmail/postdrop_stream.h"
#include "sendmail/sendmail.h"
#include "util/address/address.h"
#include "util/base/strings.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"
#include "util/queue/record.h"

namespace postern::sendmail {
namespace {

using queue::rec::kCont;
using queue::rec::kNorm;

enum class StripCr { Unknown, Yes, No };

StripCr strip_cr_policy(const config::Config& cfg) {
    std::string v = cfg.get("sendmail_fix_line_endings");
    if (v == "always") return StripCr::Yes;
    if (v == "strict") return StripCr::Unknown;
    if (v == "never") return StripCr::No;
    fatal_status(EX_USAGE, "invalid sendmail_fix_line_endings value: %s", v.c_str());
}

// Collects the recipients of the primary header block for -t (Postfix's output_header
// with MIME processing off). A header longer than header_size_limit is an error.
class RecipientExtractor {
public:
    explicit RecipientExtractor(size_t header_limit) : limit_(header_limit) {}

    // Each input record, in order; `line_start` says the record begins a line.
    Status feed(char type, std::string_view data, bool line_start) {
        if (done_) return {};
        if (line_start) {
            bool continuation = !data.empty() && (data[0] == ' ' || data[0] == '\t');
            if (!continuation || current_.empty()) {
                take_header();
                if (data.empty() || !looks_like_header(data)) {
                    done_ = true;  // the empty line, or body text without one
                    return {};
                }
            } else {
                current_ += '\n';
            }
        }
        if (current_.size() + data.size() > limit_)
            return make_error("message header length exceeds safety limit");
        current_.append(data);
        (void)type;
        return {};
    }
    std::vector<std::string> finish() {
        take_header();
        return resent_ ? std::move(resent_rcpt_) : std::move(rcpt_);
    }

private:
    static bool looks_like_header(std::string_view line) {
        size_t i = 0;
        while (i < line.size() && line[i] != ':' && static_cast<unsigned char>(line[i]) > ' ' &&
               static_cast<unsigned char>(line[i]) < 127)
            ++i;
        if (i == 0) return false;
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        return i < line.size() && line[i] == ':';
    }
    void take_header() {
        if (current_.empty()) return;
        std::string header = std::move(current_);
        current_.clear();
        size_t colon = header.find(':');
        std::string name(trim(std::string_view(header).substr(0, colon)));
        bool resent_hdr = iequals(name, "resent-to") || iequals(name, "resent-cc") ||
                          iequals(name, "resent-bcc");
        bool plain_hdr = iequals(name, "to") || iequals(name, "cc") || iequals(name, "bcc");
        if (!(resent_hdr || (plain_hdr && !resent_))) return;
        if (resent_hdr) resent_ = true;
        auto& list = resent_hdr ? resent_rcpt_ : rcpt_;
        for (std::string& a : address::parse_address_list(std::string_view(header).substr(colon + 1)))
            list.push_back(std::move(a));
    }

    size_t limit_;
    std::string current_;
    bool done_ = false, resent_ = false;
    std::vector<std::string> rcpt_, resent_rcpt_;
};

// The -bv probe: Postfix sends a small message instead of reading stdin.
void write_probe(PostdropStream& out, const Submission& sub, const std::vector<std::string>& args) {
    if (!sub.sender.empty()) out.put(kNorm, "From: " + sub.sender);
    out.put(kNorm, "Subject: probe");
    if (args.empty()) return;
    out.put(kCont, "To:");
    for (size_t i = 0; i < args.size(); ++i)
        out.put(kNorm, "\t" + args[i] + (i + 1 < args.size() ? "," : ""));
}

struct CopyResult {
    std::vector<std::string> extracted;
};

CopyResult copy_message(const config::Config& cfg, const Options& opts, const Submission& sub,
                        PostdropStream& out) {
    size_t limit = static_cast<size_t>(std::max(1L, cfg.get_int("line_length_limit")));
    std::optional<RecipientExtractor> extractor;
    if (opts.extract) extractor.emplace(static_cast<size_t>(cfg.get_int("header_size_limit")));
    StripCr strip = strip_cr_policy(cfg);
    LineReader in(0);
    std::string buf;
    bool skip_from = true;
    char prev = 0;
    for (char type; (type = in.next(buf, limit)) != 0 && !out.failed(); prev = type) {
        if (strip == StripCr::Unknown && type == kNorm)
            strip = !buf.empty() && buf.back() == '\r' ? StripCr::Yes : StripCr::No;
        if (skip_from) {
            if (type == kNorm) {
                size_t gt = buf.find_first_not_of('>');
                if (gt != std::string::npos && buf.compare(gt, 5, "From ") == 0) continue;
            }
            skip_from = false;
        }
        if (strip == StripCr::Yes && type == kNorm)
            while (!buf.empty() && buf.back() == '\r') buf.pop_back();
        if (opts.dot_ends_input && prev != kCont && type == kNorm && buf == ".") break;
        if (extractor) {
            Status st = extractor->feed(type, buf, prev != kCont);
            if (!st)
                fatal_status(EX_DATAERR, "%s(%ld): unable to extract recipients: %s",
                             sub.sender.c_str(), static_cast<long>(getuid()), st.error().c_str());
        }
        out.put(type, buf);
    }
    if (in.error())
        fatal_status(EX_DATAERR, "%s(%ld): error reading input: %s", sub.sender.c_str(),
                     static_cast<long>(getuid()), strerror(in.error_number()));
    CopyResult r;
    if (extractor) r.extracted = extractor->finish();
    return r;
}

}  // namespace

void enqueue(const config::Config& cfg, const Options& opts) {
    uid_t uid = getuid();
    Submission sub;
    if (opts.sender) {
        auto addrs = address::parse_address_list(opts.sender);
        if (!addrs.empty()) sub.sender = addrs.front();
        if (addrs.size() > 1) log::warn("-f option specified malformed sender: %s", opts.sender);
    } else {
        sub.sender = login_name();
        if (sub.sender.empty())
            fatal_status(EX_OSERR, "no login name found for user ID %lu", static_cast<unsigned long>(uid));
    }
    if (opts.full_name) {
        sub.full_name = opts.full_name;
    } else if (std::string name = default_full_name(); !name.empty()) {
        sub.full_name = name;
    }
    sub.envid = opts.envid;
    sub.ret = opts.ret;
    sub.encoding = opts.encoding;
    sub.rewrite_context = opts.rewrite_context;
    sub.trace_flags = opts.trace_flags;
    // Each argument is parsed like a header: "a, b" and "Name <addr>" work; an argument
    // without any address still becomes one (empty) recipient, as with Postfix.
    for (const std::string& arg : opts.recipients) {
        auto addrs = address::parse_address_list(arg);
        if (addrs.empty()) sub.recipients.push_back({});
        for (std::string& a : addrs) sub.recipients.push_back({std::move(a), opts.notify, ""});
    }
    if ((opts.trace_flags & kTraceVerify) && opts.extract)
        fatal_status(EX_USAGE, "%s(%ld): -t option cannot be used with -bv", sub.sender.c_str(),
                     static_cast<long>(uid));

    auto stream = PostdropStream::start(cfg, opts.verbose);
    if (!stream)
        fatal_status(EX_UNAVAILABLE, "%s(%ld): unable to execute postdrop: %s", sub.sender.c_str(),
                     static_cast<long>(uid), stream.error().c_str());
    PostdropStream& out = *stream;
    write_envelope(out, sub);
    CopyResult copied;
    if (opts.trace_flags & kTraceVerify)
        write_probe(out, sub, opts.recipients);
    else
        copied = copy_message(cfg, opts, sub, out);
    if (sub.recipients.size() + copied.extracted.size() == 0) {
        out.abort();
        fatal_status(EX_USAGE, opts.extract
                                   ? "%s(%ld): No recipient addresses found in message header"
                                   : "%s(%ld): Recipient addresses must be specified on the "
                                     "command line or via the -t option",
                     sub.sender.c_str(), static_cast<long>(uid));
    }
    write_trailer(out, copied.extracted, opts.notify);
    std::string reason;
    long status = out.finish(reason);
    if (status != 0)
        fatal_status(exit_status_of(status), "%s(%ld): %s", sub.sender.c_str(),
                     static_cast<long>(uid), verdict_text(status, reason).c_str());
    if (opts.trace_flags) {
        printf("Mail Delivery Status Report will be mailed to <%s>.\n", sub.sender.c_str());
        fflush(stdout);
    }
}

}  // namespace postern::sendmail

#include "util/mailbox/mail_copy.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "util/base/strings.h"

namespace postern::mailbox {

std::string mbox_dsn(int err, std::string_view def_dsn) {
    if (err == ENOSPC) return "4.3.5";
    if (err == EAGAIN || err == ESTALE) return "4.2.0";
    if (err == EDQUOT || err == EFBIG) return "5.2.2";
    return std::string(def_dsn);
}

FdSink::FdSink(int fd, uint64_t start_size, uint64_t limit)
    : fd_(fd), start_(start_size), limit_(limit) {}

FdSink::~FdSink() = default;

bool FdSink::write(std::string_view data) {
    if (limit_ && start_ + written_ + buf_.size() + data.size() > limit_) {
        // Flush what came before, so the file ends where the last whole write did.
        if (!flush()) return false;
        errno = EFBIG;
        return false;
    }
    buf_.append(data);
    return buf_.size() < 65536 || flush();
}

bool FdSink::flush() {
    std::string_view rest = buf_;
    while (!rest.empty()) {
        ssize_t n = ::write(fd_, rest.data(), rest.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            int saved = errno;
            buf_.erase(0, buf_.size() - rest.size());
            errno = saved;
            return false;
        }
        rest.remove_prefix(static_cast<size_t>(n));
        written_ += static_cast<uint64_t>(n);
    }
    buf_.clear();
    return true;
}

namespace {

bool is_atext(unsigned char c) {
    if (c >= 0x80) return true;  // SMTPUTF8 local parts pass unquoted, as in Postfix
    if (std::isalnum(c)) return true;
    return std::strchr("!#$%&'*+-/=?^_`{|}~", c) != nullptr && c != 0;
}

bool is_dot_atom(std::string_view s) {
    if (s.empty() || s.front() == '.' || s.back() == '.') return false;
    char prev = 0;
    for (char c : s) {
        if (c == '.') {
            if (prev == '.') return false;
        } else if (!is_atext(static_cast<unsigned char>(c))) {
            return false;
        }
        prev = c;
    }
    return true;
}

std::string asctime_text(time_t when) {
    struct tm tm {};
    localtime_r(&when, &tm);
    char buf[64];
    asctime_r(&tm, buf);
    return std::string(buf, strnlen(buf, 24));  // Postfix's %.24s: no newline
}

}  // namespace

std::string quote_address(std::string_view internal) {
    size_t at = internal.rfind('@');
    std::string_view local = at == std::string_view::npos ? internal : internal.substr(0, at);
    std::string_view rest = at == std::string_view::npos ? std::string_view{} : internal.substr(at);
    if (local.empty() || is_dot_atom(local)) return std::string(internal);
    std::string out = "\"";
    for (char c : local) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    out.append(rest);
    return out;
}

std::string copy_prefix(const CopyAttr& attr) {
    std::string out;
    time_t now = attr.now ? attr.now : time(nullptr);
    if (attr.flags & kCopyFrom) {
        std::string who = attr.sender.empty() ? "MAILER-DAEMON" : quote_address(attr.sender);
        out += "From " + who + "  " + asctime_text(now) + attr.eol;
    }
    if (attr.flags & kCopyReturnPath) out += "Return-Path: <" + quote_address(attr.sender) + ">" + attr.eol;
    if ((attr.flags & kCopyOrigRcpt) && !attr.orig_rcpt.empty())
        out += "X-Original-To: " + quote_address(attr.orig_rcpt) + attr.eol;
    if ((attr.flags & kCopyDelivered) && !attr.delivered.empty())
        out += "Delivered-To: " +
               quote_address(attr.fold_delivered ? lowercase(attr.delivered) : attr.delivered) + attr.eol;
    return out;
}

Outcome copy_message(const CopyAttr& attr, const LineReader& next, Sink& out,
                     std::string_view def_dsn) {
    auto write_failed = [&]() {
        int err = errno;
        return Failure{mbox_dsn(err, def_dsn),
                       strprintf("error writing message: %s", std::strerror(err))};
    };
    if (!out.write(copy_prefix(attr))) return write_failed();
    for (;;) {
        auto line = next();
        if (!line) return Failure{"4.3.0", "error reading message: " + line.error(), true};
        if (!line->has_value()) break;
        const std::string& text = **line;
        if ((attr.flags & kCopyQuote) && text.compare(0, 5, "From ") == 0 && !out.write(">"))
            return write_failed();
        if ((attr.flags & kCopyDot) && !text.empty() && text[0] == '.' && !out.write("."))
            return write_failed();
        if (!out.write(text) || !out.write(attr.eol)) return write_failed();
    }
    if ((attr.flags & kCopyBlank) && !out.write(attr.eol)) return write_failed();
    if (!out.flush()) return write_failed();
    return std::nullopt;
}

}  // namespace postern::mailbox

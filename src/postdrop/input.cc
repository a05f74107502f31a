// postdrop's record checks, segment by segment, as Postfix's postdrop: the envelope may
// hold F S R A (M ends it), the content N L (X ends it), the extracted segment A R (E
// ends it). A T record from the caller is refused: the arrival time is ours.
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "postdrop/postdrop.h"
#include "util/base/strings.h"
#include "util/ipc/mail_proto.h"
#include "util/log/log.h"

namespace postern::postdrop {
namespace {

using namespace queue;

// Envelope records: a name or an address, never a whole message.
constexpr size_t kMaxEnvelopeRecord = 100 * 1024;

// Sequential reads from a pipe, cut off after `limit` bytes (0 = none).
class PipeSource : public ByteSource {
public:
    PipeSource(int fd, uint64_t limit) : fd_(fd), limit_(limit) {}
    Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
        if (offset != pos_) return make_error("input is not read in sequence");
        if (limit_) {
            if (pos_ >= limit_) {
                over_ = true;
                return size_t{0};
            }
            n = static_cast<size_t>(std::min<uint64_t>(n, limit_ - pos_));
        }
        for (;;) {
            ssize_t got = read(fd_, buf, n);
            if (got < 0 && errno == EINTR) continue;
            if (got < 0) return make_error(std::string("read stdin: ") + strerror(errno));
            pos_ += static_cast<uint64_t>(got);
            return static_cast<size_t>(got);
        }
    }
    bool over_limit() const { return over_; }

private:
    int fd_;
    uint64_t limit_;
    uint64_t pos_ = 0;
    bool over_ = false;
};

bool is_number_in(std::string_view v, long lo, long hi) {
    long n = 0;
    return parse_long(v, n) && n >= lo && n <= hi;
}

// The attributes a user may set (Postfix's postdrop list); anything else is dropped with
// a warning, so no one forges client names or other internal state.
bool attribute_allowed(std::string_view name, std::string_view value) {
    if (name == attr::kEncoding) return value == "7bit" || value == "8bit" || value == "none";
    if (name == attr::kRewriteContext) return value == "local" || value == "remote";
    if (name == attr::kEnvid) return value.size() <= 100;
    if (name == attr::kDsnNotify) return is_number_in(value, 1, 15);
    if (name == attr::kRet) return is_number_in(value, 1, 3);
    if (name == attr::kDsnOrcpt) return true;
    if (name == "trace_flags") return is_number_in(value, 0, 0xffff);
    return false;
}

class Copier {
public:
    Copier(QueueFileWriter& file, const Limits& limits) : file_(file), limits_(limits) {}

    // One record; false when the segment rules are broken (error_ says how).
    bool take(const Record& r) {
        if (segment_ == 0) return envelope(r);
        if (segment_ == 1) return content(r);
        return extracted(r);
    }
    bool ended() const { return segment_ == 3; }
    bool complete() const { return from_count_ > 0 && rcpt_count_ > 0; }
    const std::string& error() const { return error_; }

private:
    bool unexpected(const Record& r) {
        error_ = strprintf("unexpected record type: %d", r.type);
        return false;
    }

    // Splits "name=value"; a malformed or forbidden attribute is skipped with a warning.
    bool user_attribute(std::string_view data, std::string& name, std::string& value) {
        size_t eq = data.find('=');
        if (eq == std::string_view::npos || eq == 0) {
            log::warn("uid=%ld: ignoring malformed record: missing '=' or attribute name: %.200s",
                      static_cast<long>(getuid()), std::string(data).c_str());
            return false;
        }
        name = data.substr(0, eq);
        value = data.substr(eq + 1);
        if (attribute_allowed(name, value)) return true;
        log::warn("uid=%ld: ignoring attribute record: %.200s=%.200s", static_cast<long>(getuid()),
                  name.c_str(), value.c_str());
        return false;
    }

    bool envelope(const Record& r) {
        if (r.data.size() > kMaxEnvelopeRecord) {
            error_ = "envelope record too long";
            return false;
        }
        std::string data(r.data);
        switch (r.type) {
            case rec::kFullName: env_.fullname = data; return true;
            case rec::kFrom:
                env_.sender = data;
                ++from_count_;
                return true;
            case rec::kRcpt:
                pending_.address = data;
                env_.recipients.push_back(std::move(pending_));
                pending_ = Recipient{};
                ++rcpt_count_;
                return true;
            case rec::kAttr: {
                std::string name, value;
                if (!user_attribute(data, name, value)) return true;
                long n = 0;
                if (name == attr::kDsnNotify && parse_long(value, n)) pending_.dsn_notify = static_cast<int>(n);
                else if (name == attr::kDsnOrcpt) pending_.dsn_orcpt = value;
                else env_.attributes.emplace_back(name, value);
                return true;
            }
            case rec::kMesg:
                file_.set_record_limit(limits_.line_length);
                file_.write_envelope(env_);
                segment_ = 1;
                return true;
            default: return unexpected(r);
        }
    }

    bool content(const Record& r) {
        switch (r.type) {
            case rec::kNorm:
                line_.append(r.data);
                file_.add_line(line_);
                line_.clear();
                return true;
            case rec::kCont:
                line_.append(r.data);
                return true;
            case rec::kXtra:
                if (!line_.empty()) file_.add_line(line_);  // text without a final newline
                line_.clear();
                segment_ = 2;
                return true;
            default: return unexpected(r);
        }
    }

    bool extracted(const Record& r) {
        if (r.data.size() > kMaxEnvelopeRecord) {
            error_ = "extracted record too long";
            return false;
        }
        switch (r.type) {
            case rec::kAttr: {
                std::string name, value;
                if (user_attribute(r.data, name, value)) file_.add_extracted(rec::kAttr, name + "=" + value);
                return true;
            }
            case rec::kRcpt:
                file_.add_extracted(rec::kRcpt, r.data);
                ++rcpt_count_;
                return true;
            case rec::kEnd:
                segment_ = 3;
                return true;
            default: return unexpected(r);
        }
    }

    QueueFileWriter& file_;
    const Limits& limits_;
    int segment_ = 0;  // envelope, content, extracted, done
    Envelope env_;
    Recipient pending_;
    std::string line_;
    long from_count_ = 0, rcpt_count_ = 0;
    std::string error_;
};

}  // namespace

CopyOutcome copy_input(int fd, QueueFileWriter& file, const Limits& limits) {
    auto source = std::make_unique<PipeSource>(fd, limits.message_size > 0 ? limits.message_size : 0);
    PipeSource* src = source.get();
    RecordReader reader(std::move(source));
    Copier copier(file, limits);
    CopyOutcome out;
    while (!copier.ended()) {
        auto r = reader.next();
        if (src->over_limit()) {
            out.status = CopyStatus::Refused;
            out.cleanup_status = ipc::mail::kCleanupStatSize;
            log::warn("uid=%ld: message file too big", static_cast<long>(getuid()));
            return out;
        }
        if (!r) {
            // Input cut in the middle of a record is a cancelled request, as plain EOF.
            if (reader.error_kind() == ReadError::Truncated) {
                out.status = CopyStatus::Cancelled;
                return out;
            }
            out.status = CopyStatus::Malformed;
            out.error = "malformed input";
            return out;
        }
        if (!*r) {
            out.status = CopyStatus::Cancelled;
            return out;
        }
        if (!copier.take(**r)) {
            out.status = CopyStatus::Malformed;
            out.error = copier.error();
            return out;
        }
    }
    // Checked at submission, so the user hears of it instead of pickup discarding it.
    if (!copier.complete()) {
        out.status = CopyStatus::Refused;
        out.cleanup_status = ipc::mail::kCleanupStatBad;
    }
    return out;
}

}  // namespace postern::postdrop

#include "util/queue/record.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "util/base/strings.h"

namespace postern::queue {
namespace {

constexpr size_t kWindow = 64 * 1024;

class MemorySource final : public ByteSource {
public:
    explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
    Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
        if (offset >= bytes_.size()) return size_t{0};
        size_t len = std::min<size_t>(n, bytes_.size() - offset);
        std::memcpy(buf, bytes_.data() + offset, len);
        return len;
    }

private:
    std::string_view bytes_;
};

class FdSource final : public ByteSource {
public:
    explicit FdSource(int fd) : fd_(fd) {}
    Result<size_t> read_at(uint64_t offset, char* buf, size_t n) override {
        for (;;) {
            ssize_t got = pread(fd_, buf, n, static_cast<off_t>(offset));
            if (got >= 0) return static_cast<size_t>(got);
            if (errno != EINTR) return make_error(std::string("read: ") + strerror(errno));
        }
    }

private:
    int fd_;
};

}  // namespace

const char* record_type_name(char type) {
    switch (type) {
        case rec::kSize: return "message_size";
        case rec::kTime: return "message_arrival_time";
        case 'c': return "queue_file_create_time";
        case rec::kFullName: return "sender_fullname";
        case rec::kInspector: return "content_inspector";
        case rec::kFilter: return "content_filter";
        case rec::kFrom: return "sender";
        case rec::kDone: return "done_recipient";
        case '@': return "canceled_recipient";
        case rec::kRcpt: return "recipient";
        case rec::kOrigRcpt: return "original_recipient";
        case rec::kWarn: return "warning_message_time";
        case rec::kAttr: return "named_attribute";
        case 'p': return "pointer_record";
        case 'K': return "killed_record";
        case rec::kMesg: return "message_content";
        case rec::kNorm: return "regular_text";
        case 'w': return "padding";
        case rec::kXtra: return "extracted_info";
        case rec::kRrto: return "return_receipt";
        case rec::kErto: return "errors_to";
        case rec::kPrio: return "priority";
        case rec::kVerp: return "verp_delimiters";
        case rec::kEnd: return "message_end";
        case rec::kRedirect: return "redirect_to";
        case rec::kFlags: return "flags";
        case '<': return "dsn_return_flags";
        case 'i': return "dsn_envelope_id";
        case 'o': return "dsn_original_recipient";
        case 'n': return "dsn_notify_flags";
        default: return "unknown_record_type";
    }
}

size_t record_header_size(size_t len) {
    size_t n = 2;
    while (len >>= 7) ++n;
    return n;
}

void append_record(std::string& out, char type, std::string_view data) {
    out.push_back(type);
    size_t len = data.size();
    do {
        unsigned char byte = len & 0x7f;
        len >>= 7;
        if (len) byte |= 0x80;
        out.push_back(static_cast<char>(byte));
    } while (len);
    out.append(data);
}

std::unique_ptr<ByteSource> memory_source(std::string_view bytes) {
    return std::make_unique<MemorySource>(bytes);
}

std::unique_ptr<ByteSource> fd_source(int fd) { return std::make_unique<FdSource>(fd); }

RecordReader::RecordReader(std::unique_ptr<ByteSource> source, uint64_t start)
    : source_(std::move(source)), window_start_(start), pos_(start) {}

void RecordReader::seek(uint64_t offset) {
    pos_ = offset;
    if (offset < window_start_ || offset > window_start_ + window_.size()) {
        window_.clear();
        window_start_ = offset;
    }
}

Error RecordReader::fail(ReadError kind, std::string message) {
    error_kind_ = kind;
    return make_error(std::move(message));
}

Result<bool> RecordReader::fill(size_t n) {
    uint64_t have_end = window_start_ + window_.size();
    if (pos_ + n <= have_end) return true;
    // Drop what was consumed, then read in large blocks until n bytes are there.
    window_.erase(0, static_cast<size_t>(pos_ - window_start_));
    window_start_ = pos_;
    while (window_.size() < n) {
        size_t old = window_.size();
        size_t want = std::max(kWindow, n - old);
        window_.resize(old + want);
        auto got = source_->read_at(window_start_ + old, window_.data() + old, want);
        if (!got) {
            window_.resize(old);
            return fail(ReadError::Io, got.error());
        }
        window_.resize(old + *got);
        if (*got == 0) return false;
    }
    return true;
}

Result<std::optional<char>> RecordReader::peek_type() {
    auto have = fill(1);
    if (!have) return make_error(have.error());
    if (!*have) return std::optional<char>();
    return std::optional<char>(window_[static_cast<size_t>(pos_ - window_start_)]);
}

Result<std::optional<Record>> RecordReader::next() {
    auto have = fill(1);
    if (!have) return make_error(have.error());
    if (!*have) return std::optional<Record>();
    uint64_t start = pos_;
    // Type byte plus up to 5 length bytes (35 bits); fewer at the end of a short file.
    auto head = fill(6);
    if (!head) return make_error(head.error());
    size_t avail = static_cast<size_t>(window_start_ + window_.size() - pos_);
    const char* p = window_.data() + (pos_ - window_start_);
    char type = p[0];
    size_t len = 0, i = 1;
    for (unsigned shift = 0;; shift += 7, ++i) {
        if (i >= avail)
            return fail(ReadError::Truncated,
                        strprintf("truncated record length at offset %lu", (unsigned long)start));
        if (i > 5)
            return fail(ReadError::Corrupt,
                        strprintf("bad record length at offset %lu", (unsigned long)start));
        unsigned char byte = static_cast<unsigned char>(p[i]);
        len |= static_cast<size_t>(byte & 0x7f) << shift;
        if (!(byte & 0x80)) break;
    }
    size_t header = i + 1;
    if (len > kMaxRecordLength)
        return fail(ReadError::Corrupt, strprintf("record length %lu too large at offset %lu",
                                                  (unsigned long)len, (unsigned long)start));
    auto full = fill(header + len);
    if (!full) return make_error(full.error());
    if (!*full)
        return fail(ReadError::Truncated,
                    strprintf("record at offset %lu ends after end of file", (unsigned long)start));
    p = window_.data() + (pos_ - window_start_);
    Record r{type, std::string_view(p + header, len), start};
    pos_ += header + len;
    return std::optional<Record>(r);
}

}  // namespace postern::queue

// Buffered line input for sendmail's message and SMTP readers.
#pragma once

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "util/queue/record.h"

namespace postern::sendmail {

// Postfix's rec_streamlf_get: one line of at most `limit` bytes; a longer line, or text
// at end of input without a newline, comes as kCont pieces. 0 at end of input.
class LineReader {
public:
    explicit LineReader(int fd) : fd_(fd) {}
    char next(std::string& out, size_t limit) {
        out.clear();
        while (out.size() < limit) {
            if (pos_ == len_ && !refill()) return out.empty() ? 0 : queue::rec::kCont;
            const char* start = buf_ + pos_;
            size_t want = std::min(len_ - pos_, limit - out.size());
            const void* nl = memchr(start, '\n', want);
            if (nl) {
                size_t n = static_cast<size_t>(static_cast<const char*>(nl) - start);
                out.append(start, n);
                pos_ += n + 1;
                return queue::rec::kNorm;
            }
            out.append(start, want);
            pos_ += want;
        }
        return queue::rec::kCont;
    }
    bool error() const { return error_ != 0; }
    int error_number() const { return error_; }

private:
    bool refill() {
        for (;;) {
            ssize_t n = read(fd_, buf_, sizeof buf_);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) error_ = errno;
            pos_ = 0;
            len_ = n > 0 ? static_cast<size_t>(n) : 0;
            return n > 0;
        }
    }
    int fd_;
    char buf_[65536];
    size_t pos_ = 0, len_ = 0;
    int error_ = 0;
};

}  // namespace postern::sendmail

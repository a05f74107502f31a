#include "util/smtpclient/bdat_framer.h"

#include <algorithm>

#include "util/base/strings.h"

namespace postern::smtpclient {

namespace {

WireOptions unstuffed(WireOptions opts) {
    opts.dot_stuff = false;
    return opts;
}

}  // namespace

std::string bdat_command(size_t size, bool last) {
    return strprintf("BDAT %zu%s\r\n", size, last ? " LAST" : "");
}

BdatFramer::BdatFramer(int fd, WireOptions opts, size_t chunk_size, std::optional<message::ParserLimits> downgrade)
    : content_(fd, unstuffed(opts), downgrade), chunk_size_(std::max<size_t>(chunk_size, 1)) {}

// Keeps more than one chunk ahead, so that a full chunk is known not to be the last.
// The buffer is only compacted when it runs low: a single long line may leave several
// chunks in it, which are then sent without moving the rest each time.
Status BdatFramer::read_ahead() {
    if (content_done_ || buf_.size() - off_ > chunk_size_) return {};
    buf_.erase(0, off_);
    off_ = 0;
    auto done = content_.fill(buf_, chunk_size_ + 1);
    if (!done) return make_error(done.error());
    content_done_ = *done;
    return {};
}

Result<bool> BdatFramer::rest_fits_in_one_chunk() {
    if (Status st = read_ahead(); !st) return make_error(st.error());
    return content_done_ && buf_.size() - off_ <= chunk_size_;
}

Result<bool> BdatFramer::next(std::string& out) {
    auto last = rest_fits_in_one_chunk();
    if (!last) return last;
    size_t n = *last ? buf_.size() - off_ : chunk_size_;
    out += bdat_command(n, *last);
    out.append(buf_, off_, n);
    off_ += n;
    return *last;
}

}  // namespace postern::smtpclient

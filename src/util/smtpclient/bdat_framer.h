// The message as the SMTP/LMTP client sends it with BDAT (RFC 3030 CHUNKING): the same
// wire lines as for DATA (util/smtpclient/content_stream.h: CRLF, long lines folded) but
// not dot-stuffed and without the final dot, cut into chunks of at most `chunk_size`
// bytes, each one preceded by its "BDAT n" command and the last one by "BDAT n LAST".
// Chunks are read from the queue file as they are asked for, so at most about one chunk
// (plus one message line) is in memory at a time.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "util/base/result.h"
#include "util/smtpclient/content_stream.h"

namespace postern::smtpclient {

// The command line that announces a chunk of `size` bytes, CRLF included.
std::string bdat_command(size_t size, bool last);

class BdatFramer {
public:
    // `fd` is an open queue file that the caller keeps open; the message is read from
    // its start. opts.dot_stuff is ignored (BDAT content is never stuffed); `downgrade`
    // as for ContentStream (8-bit MIME to quoted-printable).
    BdatFramer(int fd, WireOptions opts, size_t chunk_size,
               std::optional<message::ParserLimits> downgrade = std::nullopt);
    // True when the rest of the message fits in the next chunk, i.e. next() will
    // produce the LAST one. Reads ahead at most one chunk.
    Result<bool> rest_fits_in_one_chunk();
    // Appends the next command and its chunk to `out`; true when that was the last.
    // An empty message is the single command "BDAT 0 LAST".
    Result<bool> next(std::string& out);
    // The downgrade met MIME nesting deeper than mime_nesting_limit (in what was read
    // so far, which may be ahead of what next() returned).
    bool mime_nesting_exceeded() const { return content_.mime_nesting_exceeded(); }

private:
    Status read_ahead();
    ContentStream content_;
    size_t chunk_size_;
    std::string buf_;  // read ahead, not sent yet from `off_` on
    size_t off_ = 0;
    bool content_done_ = false;
};

}  // namespace postern::smtpclient

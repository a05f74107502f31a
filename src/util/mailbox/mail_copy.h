// Writing one message into a mailbox, a file or a command's input, as Postfix's
// mail_copy(): an optional "From sender date" line and Return-Path:, X-Original-To:,
// Delivered-To: headers in front, ">From " quoting and a trailing empty line for
// UNIX-style mailboxes. The message comes from a line reader (a queue file), the bytes
// go to a Sink (a file with a size limit, a pipe). Shared by local(8) today and by
// virtual(8), pipe(8) and the LDA paths of pop3d/imapd later.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "util/base/result.h"

namespace postern::mailbox {

// Why a delivery did not happen: an RFC 3463 status ("5.2.2", "4.2.0") and a reason in
// Postfix's words. `corrupt` marks a queue file read error (defer, never bounce).
struct Failure {
    std::string dsn;
    std::string reason;
    bool corrupt = false;
};
using Outcome = std::optional<Failure>;  // nullopt: success

// Postfix's mbox_dsn(): the status for a failed system call on a mailbox.
// ENOSPC -> 4.3.5, EAGAIN/ESTALE -> 4.2.0, EDQUOT/EFBIG -> 5.2.2, else `def_dsn`.
std::string mbox_dsn(int err, std::string_view def_dsn);

// Where message bytes go. write() returns false and sets errno on failure.
class Sink {
public:
    virtual ~Sink() = default;
    virtual bool write(std::string_view data) = 0;
    virtual bool flush() { return true; }
};

// Buffered writes to a file descriptor. With a limit, the file may not grow past
// `limit` bytes in total (mailbox_size_limit): the write that would cross it fails with
// EFBIG, as the RLIMIT_FSIZE Postfix sets would make it fail.
class FdSink : public Sink {
public:
    FdSink(int fd, uint64_t start_size, uint64_t limit);
    ~FdSink() override;
    bool write(std::string_view data) override;
    bool flush() override;
    uint64_t written() const { return written_; }

private:
    int fd_;
    uint64_t start_, limit_, written_ = 0;
    std::string buf_;
};

// mail_copy() flags, named after Postfix's MAIL_COPY_*.
enum CopyFlag : unsigned {
    kCopyFrom = 1u << 0,        // "From sender  date" line
    kCopyQuote = 1u << 1,       // ">From " for body lines that start with "From "
    kCopyToFile = 1u << 2,      // destination is a file: fsync at the end
    kCopyDelivered = 1u << 3,   // Delivered-To: header
    kCopyReturnPath = 1u << 4,  // Return-Path: header
    kCopyBlank = 1u << 5,       // empty line after the message
    kCopyOrigRcpt = 1u << 6,    // X-Original-To: header
    kCopyDot = 1u << 7,         // "." before lines that start with "." (pipe(8) flag .)
    kCopyMbox = kCopyFrom | kCopyQuote | kCopyToFile | kCopyDelivered | kCopyReturnPath |
                kCopyBlank | kCopyOrigRcpt,
};

struct CopyAttr {
    unsigned flags = kCopyMbox;
    std::string sender;     // envelope sender, internal form ("" = null sender)
    std::string orig_rcpt;  // X-Original-To: value ("" = none written)
    std::string delivered;  // Delivered-To: value
    bool fold_delivered = true;  // lower-case it (local(8); pipe(8) writes it as is)
    time_t now = 0;         // the From_ line's time stamp (0 = time(2))
    std::string eol = "\n";  // record delimiter (pipe(8) eol=)
};

// The next message line without its newline; nullopt after the last one.
using LineReader = std::function<Result<std::optional<std::string>>()>;

// The text written before the message (From_ line and headers), each line ended by eol.
std::string copy_prefix(const CopyAttr& attr);

// Copies the message. With kCopyToFile the caller still owns fsync (it knows the fd);
// the sink is flushed here. `def_dsn` is the status for write errors that mbox_dsn()
// does not classify ("5.2.0" for mailboxes, "5.3.0" for commands).
Outcome copy_message(const CopyAttr& attr, const LineReader& next, Sink& out,
                     std::string_view def_dsn);

// The local part quoted where RFC 5322 needs it (Postfix's quote_822_local), for the
// From_ line and the headers above.
std::string quote_address(std::string_view internal);

}  // namespace postern::mailbox

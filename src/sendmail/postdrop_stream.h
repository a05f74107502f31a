// The sendmail side of the postdrop protocol: a postdrop(1) child reads a queue-file
// record stream (util/queue/record.h) on its stdin, in Postfix's maildrop layout
//
//   [A ret_flags] [A envelope_id] A rewrite_context [F fullname] S sender [A encoding]
//   [A trace_flags] ([A notify_flags] R recipient)... M (N|L content)... X
//   ([A notify_flags] R extracted recipient)... E
//
// and answers on its stdout with two attribute records (util/ipc/attr.h): queue_id=ID
// once the file exists, then status=N reason=TEXT (a CleanupStatus; 0 = the maildrop
// file is complete and fsynced). Closing the stream without E cancels the message.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"
#include "util/base/unique_fd.h"
#include "util/config/config.h"

namespace postern::sendmail {

class PostdropStream {
public:
    // Starts command_directory/postdrop -r (or the postdrop beside this program).
    static Result<PostdropStream> start(const config::Config& cfg, int verbose);
    PostdropStream(PostdropStream&& other) noexcept;
    PostdropStream& operator=(PostdropStream&&) = delete;
    ~PostdropStream();

    // Buffered; a write error (postdrop went away) is remembered and reported by finish().
    void put(char type, std::string_view data);
    // A content line without its newline, cut into L records of at most `limit` bytes.
    void put_line(std::string_view line, size_t limit);
    // After the E record: sends what is left, waits for postdrop's verdict. Returns a
    // CleanupStatus (0 when the file is safely in maildrop/); `reason` gets postdrop's text.
    long finish(std::string& reason);
    // Cancels: closes the stream without E and reaps postdrop, which removes its file.
    void abort();
    const std::string& queue_id() const { return queue_id_; }
    // True once postdrop stopped reading (finish() then tells why).
    bool failed() const { return write_failed_; }

private:
    PostdropStream() = default;
    void flush();
    int reap();

    UniqueFd to_child_, from_child_;
    pid_t pid_ = -1;
    std::string buf_;
    bool write_failed_ = false;
    std::string queue_id_;
};

// The sysexits status for a failed CleanupStatus (Postfix's sendmail mapping) and the
// text to report: postdrop's reason, else the status's text, without a DSN code.
int exit_status_of(long status);
std::string verdict_text(long status, const std::string& reason);

// Everything that goes in front of the message content.
struct Submission {
    std::string sender;
    std::optional<std::string> full_name;
    std::string envid;
    long ret = 0;
    std::string encoding;
    std::string rewrite_context = "local";
    long trace_flags = 0;
    struct Rcpt {
        std::string address;  // "" for a command-line argument without an address
        long notify = 0;      // DSN NOTIFY bits, 0 = not given
        std::string orcpt;    // DSN ORCPT ("rfc822;user@example.com"), "" = none
    };
    std::vector<Rcpt> recipients;
};

// Writes the envelope records and the M record.
void write_envelope(PostdropStream& out, const Submission& sub);
// Writes X, the extracted recipients (each with the -N mask), and E.
void write_trailer(PostdropStream& out, const std::vector<std::string>& extracted, long notify);

}  // namespace postern::sendmail

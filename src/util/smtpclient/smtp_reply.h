// The SMTP client's view of a server: replies parsed incrementally from whatever bytes
// arrived (multi-line "250-..." continuations, any split), the EHLO keywords a server
// offers, the RFC 3463 status a reply carries, and the text Postfix logs for it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::smtpclient {

struct Reply {
    int code = 0;                    // 250
    std::vector<std::string> lines;  // each whole line as received, without CRLF
    // Postfix's form for logs and DSNs: the lines joined with a space ("550-5.1.1 The
    // account 550 5.1.1 does not exist").
    std::string text() const;
    // The enhanced status code of the first line when its class matches the reply code,
    // otherwise "C.0.0" from the reply code (Postfix's smtp_chat_resp()).
    std::string dsn() const;
    char cls() const { return static_cast<char>('0' + code / 100); }
};

// Bounded, incremental reply reader: feed() any split of the server's bytes, complete
// replies are appended to `out`. A line that is too long or malformed is an error.
class ReplyParser {
public:
    explicit ReplyParser(size_t max_line = 4096, size_t max_lines = 1000)
        : max_line_(max_line), max_lines_(max_lines) {}
    Status feed(std::string_view data, std::vector<Reply>& out);
    bool mid_reply() const { return !line_.empty() || !pending_.lines.empty(); }

private:
    Status take_line(std::string line, std::vector<Reply>& out);
    size_t max_line_, max_lines_;
    std::string line_;
    Reply pending_;
};

// What the server said in its EHLO reply.
struct Features {
    bool pipelining = false, eightbitmime = false, smtputf8 = false, dsn = false;
    bool starttls = false, chunking = false, size = false;
    unsigned long size_limit = 0;   // SIZE nnn; 0: none announced
    std::vector<std::string> auth;  // AUTH mechanisms, upper case
};
// The keywords of an EHLO reply (the first line is the greeting and is skipped).
Features parse_ehlo(const Reply& reply);

}  // namespace postern::smtpclient

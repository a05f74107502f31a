// Fuzz target: the SMTP client's reply parser (util/smtpclient/smtp_reply.h), EHLO
// keyword reading and next-hop parsing. Properties:
//   - no crash, no sanitizer report;
//   - the server's bytes fed at once and fed in the splits the first input byte chooses
//     give the same replies and the same verdict (a server's TCP segments are arbitrary);
//   - every reply has a code from 200 to 599, at least one line, its last line starting
//     with that code (as Postfix, the last line's code counts when a server mixes them),
//     and a dsn() of the reply's class.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "util/smtpclient/nexthop.h"
#include "util/smtpclient/smtp_reply.h"

using namespace postern::smtpclient;

namespace {

struct Outcome {
    std::vector<Reply> replies;
    bool ok = true;
};

Outcome parse(std::string_view wire, size_t step) {
    ReplyParser p(512, 64);
    Outcome o;
    for (size_t i = 0; i < wire.size() && o.ok; i += step) o.ok = p.feed(wire.substr(i, step), o.replies).ok();
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    size_t step = 1 + data[0] % 17;
    std::string_view wire = postern::fuzz::as_text(data + 1, size - 1);
    Outcome whole = parse(wire, wire.size() + 1), split = parse(wire, step);
    FUZZ_CHECK(whole.ok == split.ok);
    if (whole.ok) {
        FUZZ_CHECK(whole.replies.size() == split.replies.size());
        for (size_t i = 0; i < whole.replies.size(); ++i) {
            const Reply& r = whole.replies[i];
            FUZZ_CHECK(r.code == split.replies[i].code && r.lines == split.replies[i].lines);
            FUZZ_CHECK(r.code >= 200 && r.code <= 599 && !r.lines.empty());
            FUZZ_CHECK(r.lines.back().compare(0, 3, std::to_string(r.code)) == 0);
            FUZZ_CHECK(r.dsn()[0] == r.cls());
            (void)parse_ehlo(r);
        }
    }
    (void)parse_nexthop(wire, data[0] & 1);
    return 0;
}

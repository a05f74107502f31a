// Fuzz target: the message parser (util/message) must never crash, must give the same
// headers and body lines however the input is split, and must keep every header within
// header_size_limit; the check-action parser and header classification must take any text.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "util/message/content_action.h"
#include "util/message/header_opts.h"
#include "util/message/message_parser.h"

namespace {

struct Collect : postern::message::MessageSink {
    std::vector<std::string> headers, body;
    int done = 0;
    void header(std::string& h) override { headers.push_back(h); }
    void headers_done() override { ++done; }
    void body_line(std::string_view l) override { body.emplace_back(l); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::message;
    std::string_view in = postern::fuzz::as_text(data, size);
    ParserLimits limits;
    limits.header_size_limit = 64;
    limits.max_line = 100;
    Collect whole, split;
    MessageParser a(whole, limits), b(split, limits);
    a.feed(in);
    a.finish();
    size_t step = size ? data[0] % 7 + 1 : 1;
    for (size_t pos = 0; pos < in.size(); pos += step) b.feed(in.substr(pos, step));
    b.finish();
    FUZZ_CHECK(whole.headers == split.headers);
    FUZZ_CHECK(whole.body == split.body);
    FUZZ_CHECK(whole.done == 1);
    HeaderTable table;
    for (const std::string& h : whole.headers) {
        FUZZ_CHECK(h.size() <= limits.header_size_limit);
        (void)table.find_line(h);
        (void)unfold(h);
        (void)header_value(h);
    }
    for (const std::string& l : whole.body) FUZZ_CHECK(l.size() <= limits.max_line);
    (void)parse_content_action(in, "header", "header_checks");
    (void)parse_content_action(in, "body", "body_checks");
    return 0;
}

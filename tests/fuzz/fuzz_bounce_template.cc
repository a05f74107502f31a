// Fuzz target: a bounce_template_file must parse or fail with a message, never crash;
// what parses must compose into a notice whose MIME structure is intact (the closing
// boundary is the last line) whatever the template text holds.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/dsn/dsn_notice.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::dsn;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto lookup = [](std::string_view name) -> std::optional<std::string> {
        if (name.empty() || name[0] == 'x') return std::nullopt;
        return std::string(name.size() % 7, 'v');
    };
    auto parsed = parse_template_file(in, lookup, {"host.example", 3600, 86400});
    if (!parsed) {
        if (parsed.error().empty()) __builtin_trap();
        return 0;
    }
    NoticeConfig config;
    config.myhostname = config.myorigin = "host.example";
    config.templates = *parsed;
    Notice notice;
    notice.to = "someone@example.com";
    notice.queue_id = "4AbCdEf";
    notice.now = 1700000000;
    notice.recipients.push_back({"rcpt@example.com", "", "", 0, "5.1.1", "failed", "no", "local"});
    OriginalMessage original;
    original.available = true;
    original.lines = {"Subject: x", "", "body"};
    for (NoticeKind kind : {NoticeKind::Failure, NoticeKind::Delay, NoticeKind::Success, NoticeKind::Verify}) {
        notice.kind = kind;
        std::string text = compose_notice(config, notice, original);
        std::string close = "\n--4AbCdEf.1700000000/host.example--\n";
        if (text.size() < close.size() || text.compare(text.size() - close.size(), close.size(), close) != 0)
            __builtin_trap();
    }
    return 0;
}

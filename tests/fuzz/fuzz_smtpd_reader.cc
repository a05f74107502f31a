// Fuzz target: smtpd's input state machine (SmtpReader) and its MAIL/RCPT argument
// parser, driven the way the session drives them: DATA switches to message content
// until the "." line, BDAT n to a chunk of n bytes. Properties:
//   - no crash, no sanitizer report, in every bare-newline policy;
//   - the same input fed at once and fed in random splits (a client's TCP segments)
//     gives the same commands, the same content (pieces joined) and the same ends;
//   - command lines never hold a line end and are within the line limit;
//   - parse_path never crashes; xtext encoding round-trips; internal_address and
//     valid_mailbox take whatever an address turned out to be.
// The first two input bytes choose the policy, the line limit and the split pattern.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "smtpd/smtpd_params.cc"  // NOLINT: program code, not in libpostern
#include "smtpd/smtpd_reader.cc"  // NOLINT

namespace {

using postern::smtpd::BareLf;
using postern::smtpd::ReaderEvent;
using postern::smtpd::SmtpReader;
using Kind = ReaderEvent::Kind;

constexpr size_t kMaxChunk = 1 << 16;

struct Event {
    Kind kind;
    std::string text;
    bool bare_lf;
    bool operator==(const Event&) const = default;
};

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        char c = s[i];
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (c != prefix[i]) return false;
    }
    return true;
}

void check_path(std::string_view line, std::string_view keyword) {
    using namespace postern::smtpd;
    for (bool strict : {false, true}) {
        auto p = parse_path(line, keyword, strict);
        if (!p) continue;
        (void)valid_mailbox(p->address);
        (void)internal_address(p->address);
        for (const auto& [name, value] : p->params) {
            if (auto decoded = xtext_decode(value)) {
                auto again = xtext_decode(xtext_encode(*decoded));
                FUZZ_CHECK(again && *again == *decoded);
            }
        }
    }
}

// What the session does with a command line: DATA and BDAT switch the reader's mode.
void on_command(SmtpReader& r, const std::string& line, size_t limit, bool check) {
    FUZZ_CHECK(line.find('\n') == std::string::npos);
    FUZZ_CHECK(line.size() <= limit);
    if (starts_with_ci(line, "DATA")) {
        r.start_data();
    } else if (starts_with_ci(line, "BDAT ")) {
        size_t n = 0;
        for (size_t i = 5; i < line.size() && line[i] >= '0' && line[i] <= '9' && n < kMaxChunk; ++i)
            n = n * 10 + static_cast<size_t>(line[i] - '0');
        r.start_chunk(std::min(n, kMaxChunk));
    } else if (check && starts_with_ci(line, "MAIL ")) {
        check_path(std::string_view(line).substr(5), "FROM:");
    } else if (check && starts_with_ci(line, "RCPT ")) {
        check_path(std::string_view(line).substr(5), "TO:");
    }
}

// Pulls every event the reader has; joins consecutive content pieces.
void drain(SmtpReader& r, std::vector<Event>& out, size_t limit, bool check) {
    for (;;) {
        ReaderEvent ev = r.next();
        if (ev.kind == Kind::None) return;
        if (ev.kind == Kind::Content) {
            // (A BDAT piece that is a lone CR held back for the next byte is empty.)
            if (!out.empty() && out.back().kind == Kind::Content) {
                out.back().text += ev.text;
                out.back().bare_lf = out.back().bare_lf || ev.bare_lf;
                continue;
            }
        }
        if (ev.kind == Kind::Command) on_command(r, ev.text, limit, check);
        if (ev.kind == Kind::ChunkEnd) (void)r.end_chunks();
        out.push_back({ev.kind, std::move(ev.text), ev.bare_lf});
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) return 0;
    static const BareLf kPolicies[] = {BareLf::Allow, BareLf::Normalize, BareLf::Reject};
    BareLf policy = kPolicies[data[0] % 3];
    size_t limit = 16 + (data[0] / 3) % 64;  // short limits reach the overlong paths
    unsigned seed = data[1];
    std::string_view in = postern::fuzz::as_text(data + 2, size - 2);

    SmtpReader whole(limit, policy);
    std::vector<Event> a;
    whole.feed(in);
    drain(whole, a, limit, true);

    SmtpReader split(limit, policy);
    std::vector<Event> b;
    for (size_t pos = 0; pos < in.size();) {
        seed = seed * 1103515245u + 12345u;
        size_t n = std::min<size_t>(1 + (seed >> 16) % 24, in.size() - pos);
        split.feed(in.substr(pos, n));
        drain(split, b, limit, false);
        pos += n;
    }
    FUZZ_CHECK(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        FUZZ_CHECK(a[i].kind == b[i].kind);
        FUZZ_CHECK(a[i].text == b[i].text);
        // An overlong line may be reported before its end arrives: its line end unknown.
        if (a[i].kind != Kind::LineTooLong) FUZZ_CHECK(a[i].bare_lf == b[i].bare_lf);
    }
    FUZZ_CHECK(whole.mode() == split.mode());
    return 0;
}

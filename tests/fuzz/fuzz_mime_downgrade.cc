// Fuzz target: the 8-bit to quoted-printable conversion (util/message/mime_downgrade.h)
// must never crash; a message without any Content-Transfer-Encoding header must come
// out unchanged; every quoted-printable line must be 7-bit, at most 76 bytes, and decode
// back to the line it came from.
#include <string>
#include <vector>

#include "fuzz_helpers.h"
#include "util/base/strings.h"
#include "util/message/mime_downgrade.h"

namespace {

std::vector<std::string_view> lines_of(std::string_view in) {
    std::vector<std::string_view> out;
    while (!in.empty()) {
        size_t nl = in.find('\n');
        out.push_back(in.substr(0, nl));
        if (nl == std::string_view::npos) break;
        in.remove_prefix(nl + 1);
    }
    return out;
}

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// RFC 2045 6.7 decoding of one encoded line (soft breaks joined).
std::string qp_decode(const std::vector<std::string>& lines) {
    std::string out;
    for (size_t i = 0; i < lines.size(); ++i) {
        std::string_view l = lines[i];
        bool soft = i + 1 < lines.size();
        if (soft) {
            FUZZ_CHECK(!l.empty() && l.back() == '=');
            l.remove_suffix(1);
        }
        for (size_t j = 0; j < l.size(); ++j) {
            if (l[j] != '=') {
                out += l[j];
                continue;
            }
            FUZZ_CHECK(j + 2 < l.size());
            int hi = hex(l[j + 1]), lo = hex(l[j + 2]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            out += static_cast<char>(hi * 16 + lo);
            j += 2;
        }
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace postern::message;
    using postern::lowercase;
    std::string_view in = postern::fuzz::as_text(data, size);
    std::vector<std::string_view> input = lines_of(in);

    for (std::string_view line : input) {
        std::vector<std::string> qp;
        quoted_printable_line(line, [&qp](std::string_view l) { qp.emplace_back(l); });
        for (const std::string& l : qp) {
            FUZZ_CHECK(l.size() <= 76);
            for (unsigned char c : l) FUZZ_CHECK(c == '\t' || (c >= 32 && c < 127));
        }
        FUZZ_CHECK(!qp.back().empty() || line.empty());
        FUZZ_CHECK(qp.back().empty() || (qp.back().back() != ' ' && qp.back().back() != '\t'));
        FUZZ_CHECK(qp_decode(qp) == line);
    }

    ParserLimits limits;
    limits.mime_nesting_limit = 3;
    limits.mime_boundary_length_limit = 16;
    std::vector<std::string> output;
    MimeDowngrade d([&output](std::string_view l) { output.emplace_back(l); }, limits);
    for (std::string_view line : input) d.line(line);
    d.finish();
    bool declares = false;
    for (std::string_view line : input)
        declares = declares || lowercase(line).find("content-transfer-encoding") != std::string::npos;
    if (!declares && in.size() < 100000) {
        // header_size_limit (100 kB) is not reached: every line comes out as it went in
        FUZZ_CHECK(output.size() == input.size());
        for (size_t i = 0; i < output.size(); ++i) FUZZ_CHECK(output[i] == input[i]);
    }
    return 0;
}

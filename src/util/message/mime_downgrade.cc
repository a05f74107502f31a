#include "util/message/mime_downgrade.h"

#include "util/base/strings.h"
#include "util/message/header_opts.h"

namespace postern::message {
namespace {

// The encoding domain a Content-Transfer-Encoding value names: 8 for 8bit and binary,
// 7 for the 7-bit ones, 0 for anything unknown (which leaves the domain as it was).
int encoding_domain(std::string_view value) {
    // The first token, after blanks and (comments).
    size_t i = 0;
    for (int depth = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '(') ++depth;
        else if (c == ')' && depth > 0) --depth;
        else if (depth == 0 && c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    }
    size_t end = value.find_first_of(" \t\r\n;()\"", i);
    std::string token = lowercase(value.substr(i, end == std::string_view::npos ? end : end - i));
    if (token == "8bit" || token == "binary") return 8;
    if (token == "7bit" || token == "quoted-printable" || token == "base64") return 7;
    return 0;
}

void emit_lines(std::string_view text, const MimeDowngrade::LineOut& out) {
    for (;;) {
        size_t nl = text.find('\n');
        out(text.substr(0, nl));
        if (nl == std::string_view::npos) return;
        text.remove_prefix(nl + 1);
    }
}

}  // namespace

void quoted_printable_line(std::string_view line, const std::function<void(std::string_view)>& out) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string buf;
    auto encode = [&buf](unsigned char c) {
        buf += '=';
        buf += kHex[c >> 4];
        buf += kHex[c & 0xf];
    };
    for (unsigned char c : line) {
        // A soft break once the output passes 72 bytes, checked before each byte as
        // Postfix does (so a line may reach 75 bytes plus the "=").
        if (buf.size() > 72) {
            buf += '=';
            out(buf);
            buf.clear();
        }
        if ((c < 32 && c != '\t') || c == '=' || c > 126)
            encode(c);
        else
            buf += static_cast<char>(c);
    }
    // A blank before the hard line break would be lost in transit (RFC 2045 6.7 rule 3).
    if (!buf.empty() && (buf.back() == ' ' || buf.back() == '\t')) {
        unsigned char c = static_cast<unsigned char>(buf.back());
        buf.pop_back();
        encode(c);
    }
    out(buf);
}

MimeDowngrade::MimeDowngrade(LineOut out, ParserLimits limits)
    : out_(std::move(out)), parser_(*this, [&limits] {
          limits.mime = true;
          return limits;
      }()) {}

// A Content-Transfer-Encoding that leaves the 7-bit domain is dropped here; the right
// one is written when the section ends, once the Content-Type is known too.
void MimeDowngrade::entity_header(const std::string& h) {
    auto name = header_name(h);
    if (name && iequals(*name, "content-transfer-encoding")) {
        if (int domain = encoding_domain(header_value(h)); domain != 0) eight_bit_ = domain == 8;
        if (eight_bit_) return;
    }
    emit_lines(h, out_);
}

// Postfix declares any multipart or message/* entity 7bit, but only multipart and
// message/rfc822 content (part headers, an attached message's own header) is left as it
// is; message/partial and the like are encoded all the same.
void MimeDowngrade::header_section_done(HeaderClass, std::string_view type, std::string_view subtype) {
    bool composite = type == "multipart" || type == "message";
    if (eight_bit_)
        out_(composite ? "Content-Transfer-Encoding: 7bit" : "Content-Transfer-Encoding: quoted-printable");
    converting_ = eight_bit_ && type != "multipart" && !(type == "message" && subtype == "rfc822");
    eight_bit_ = false;  // the next section (a part, an attached message) starts 7-bit
}

void MimeDowngrade::boundary(std::string_view l) {
    converting_ = false;
    eight_bit_ = false;
    out_(l);
}

void MimeDowngrade::body_line(std::string_view l) {
    if (converting_)
        quoted_printable_line(l, out_);
    else
        out_(l);
}

}  // namespace postern::message

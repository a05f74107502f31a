#include "util/message/message_parser.h"

#include <algorithm>

#include "util/base/strings.h"
#include "util/message/header_opts.h"

namespace postern::message {
namespace {

// RFC 2045 Content-Type: type "/" subtype *(";" attribute "=" value), with comments and
// quoted strings; only what the MIME structure needs (type, subtype, boundary).
class ContentTypeLexer {
public:
    explicit ContentTypeLexer(std::string_view text) : s_(text) {}

    // The next token, quoted string or special character; "" at the end.
    std::string next() {
        skip_space_and_comments();
        if (i_ >= s_.size()) return "";
        char c = s_[i_];
        if (c == '"') return quoted();
        if (is_special(c)) return std::string(1, s_[i_++]);
        size_t start = i_;
        while (i_ < s_.size() && !is_special(s_[i_]) && s_[i_] != ' ' && s_[i_] != '\t' &&
               s_[i_] != '\n' && s_[i_] != '\r' && s_[i_] != '(' && s_[i_] != '"')
            ++i_;
        return std::string(s_.substr(start, i_ - start));
    }

private:
    static bool is_special(char c) { return c == '/' || c == ';' || c == '='; }

    void skip_space_and_comments() {
        int depth = 0;
        while (i_ < s_.size()) {
            char c = s_[i_];
            if (depth > 0 && c == '\\') { i_ += 2; continue; }
            if (c == '(') ++depth;
            else if (c == ')' && depth > 0) --depth;
            else if (depth == 0 && c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            ++i_;
        }
    }

    std::string quoted() {
        std::string out;
        for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
            if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
            out += s_[i_];
        }
        ++i_;
        return out;
    }

    std::string_view s_;
    size_t i_ = 0;
};

void parse_content_type(std::string_view value, std::string& type, std::string& subtype,
                        std::string& boundary, size_t boundary_limit) {
    ContentTypeLexer lex(value);
    type = lowercase(lex.next());
    if (lex.next() != "/") return;
    subtype = lowercase(lex.next());
    for (std::string t = lex.next(); !t.empty(); t = lex.next()) {
        if (t != ";") continue;
        std::string name = lowercase(lex.next());
        if (lex.next() != "=") continue;
        std::string v = lex.next();
        if (name == "boundary") boundary = v.substr(0, boundary_limit);
    }
}

}  // namespace

void MessageSink::part_header(std::string& header, HeaderClass) {
    std::string_view rest = header;
    for (;;) {
        size_t nl = rest.find('\n');
        body_line(rest.substr(0, nl));
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
}

MessageParser::MessageParser(MessageSink& sink, ParserLimits limits)
    : sink_(sink), limits_(limits) {
    if (limits_.max_line == 0) limits_.max_line = 1;
}

void MessageParser::feed(std::string_view data) {
    if (finished_) return;
    size_ += data.size();
    while (!data.empty()) {
        size_t nl = data.find('\n');
        if (nl == std::string_view::npos) {
            // Keep the tail for the next chunk, in pieces of at most max_line.
            size_t room = limits_.max_line - partial_.size();
            size_t take = std::min(room, data.size());
            partial_.append(data.substr(0, take));
            data.remove_prefix(take);
            if (partial_.size() >= limits_.max_line) {
                line(partial_);
                partial_.clear();
            }
            continue;
        }
        if (partial_.empty() && nl <= limits_.max_line) {
            line(data.substr(0, nl));  // the common case: no copy
        } else {
            partial_.append(data.substr(0, nl));
            std::string_view whole = partial_;
            while (whole.size() > limits_.max_line) {
                line(whole.substr(0, limits_.max_line));
                whole.remove_prefix(limits_.max_line);
            }
            line(whole);
            partial_.clear();
        }
        data.remove_prefix(nl + 1);
    }
}

void MessageParser::feed_line(std::string_view l) {
    if (finished_) return;
    size_ += l.size() + 1;
    line(l);
}

void MessageParser::finish() {
    if (finished_) return;
    if (!partial_.empty()) {
        line(partial_);
        partial_.clear();
    }
    if (in_header_) end_headers();
    finished_ = true;
}

void MessageParser::line(std::string_view l) {
    if (in_header_)
        header_line(l);
    else if (!limits_.mime || boundaries_.empty() || !l.starts_with("--") || !boundary_line(l))
        sink_.body_line(l);
}

// A "--boundary" line of an enclosing multipart, innermost first; an outer one ends the
// inner ones. A delimiter starts the headers of the next part, a closing "--boundary--"
// the epilogue.
bool MessageParser::boundary_line(std::string_view l) {
    std::string_view text = l.substr(2);
    for (size_t i = boundaries_.size(); i-- > 0;) {
        const std::string& b = boundaries_[i].text;
        if (!text.starts_with(b)) continue;
        bool closing = text.substr(b.size()).starts_with("--");
        bool digest = boundaries_[i].digest;
        nested_depth_ = boundaries_[i].nested_before;
        boundaries_.resize(closing ? i : i + 1);
        sink_.boundary(l);
        if (!closing) {
            in_header_ = true;
            class_ = HeaderClass::Multipart;
            content_ = ContentType{};
            if (digest) content_.type = "message", content_.subtype = "rfc822";
        }
        return true;
    }
    return false;
}

void MessageParser::header_line(std::string_view l) {
    bool blank_start = !l.empty() && (l[0] == ' ' || l[0] == '\t');
    if (blank_start && !header_.empty()) {
        append_header("\n");
        append_header(l);
        return;
    }
    flush_header();
    if (auto name = header_name(l)) {
        // Postfix's mime_state rewrites the obsolete "name : value" as "name: value".
        append_header(*name);
        append_header(l.substr(l.find(':')));
        return;
    }
    bool primary = class_ == HeaderClass::Primary;
    end_headers();
    // Postfix's mime_state separates a primary header that ends at a line that is no
    // header with an empty line of its own (not so in body parts: that would break
    // signatures).
    if (primary && !l.empty()) sink_.body_line("");
    enter_body(l);
}

// The first line after a header section; what follows depends on its Content-Type.
void MessageParser::enter_body(std::string_view first_line) {
    sink_.body_line(first_line);
    if (!limits_.mime) return;
    const ContentType ct = std::move(content_);
    content_ = ContentType{};
    bool container = (ct.type == "multipart" && !ct.boundary.empty()) ||
                     (ct.type == "message" && ct.subtype == "rfc822");
    if (!container) return;
    if (ct.type == "multipart") {
        // Postfix counts multipart levels only, and (measured against Debian's 3.7, in
        // cleanup and in smtp's conversion) refuses a new one once more than
        // mime_nesting_limit + 1 are open.
        if (boundaries_.size() > limits_.mime_nesting_limit + 1) {
            nesting_exceeded_ = true;
            return;
        }
        boundaries_.push_back({ct.boundary, ct.subtype == "digest", nested_depth_});
        return;
    }
    // An attached message: its own header follows.
    ++nested_depth_;
    in_header_ = true;
    class_ = HeaderClass::Nested;
}

void MessageParser::note_content_type(std::string_view header) {
    size_t colon = header.find(':');
    if (colon == std::string_view::npos || !iequals(trim(header.substr(0, colon)), "content-type")) return;
    parse_content_type(header.substr(colon + 1), content_.type, content_.subtype, content_.boundary,
                       limits_.mime_boundary_length_limit);
}

void MessageParser::append_header(std::string_view text) {
    size_t limit = limits_.header_size_limit;
    if (header_.size() >= limit) {
        if (!text.empty()) truncated_ = true;
        return;
    }
    if (header_.size() + text.size() > limit) {
        truncated_ = true;
        text = text.substr(0, limit - header_.size());
    }
    header_.append(text);
}

void MessageParser::flush_header() {
    if (header_.empty()) return;
    // A header cut right after a line break would end in "\n": drop that.
    while (!header_.empty() && header_.back() == '\n') header_.pop_back();
    if (limits_.mime) note_content_type(header_);
    if (class_ == HeaderClass::Primary)
        sink_.header(header_);
    else
        sink_.part_header(header_, class_);
    header_.clear();
}

void MessageParser::end_headers() {
    flush_header();
    in_header_ = false;
    if (limits_.mime) sink_.header_section_done(class_, content_.type, content_.subtype);
    if (class_ == HeaderClass::Primary) sink_.headers_done();
}

}  // namespace postern::message

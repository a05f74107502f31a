// bounce_template_file parsing (Postfix's bounce(5) format):
//
//   # comment
//   failure_template = <<EOF
//   Charset: us-ascii
//   From: MAILER-DAEMON (Mail Delivery System)
//   Subject: Undelivered Mail Returned to Sender
//   Postmaster-Subject: Postmaster Copy: Undelivered Mail
//
//   This is the mail system at host $myhostname.
//   ...
//   EOF
#include "util/base/strings.h"
#include "util/dsn/dsn_template.h"

namespace postern::dsn {
namespace {

struct Cursor {
    std::string_view text;
    size_t pos = 0;
    int line_no = 0;
    std::optional<std::string_view> next() {
        if (pos >= text.size()) return std::nullopt;
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        return line;
    }
};

Error line_error(const Cursor& c, const std::string& what) {
    return make_error(strprintf("bounce template line %d: %s", c.line_no, what.c_str()));
}

// "$name", "${name}", "$(name)"; "$$" is a literal '$'.
Result<std::string> expand(std::string_view line, const TemplateLookup& lookup) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
        if (line[i] != '$' || i + 1 == line.size()) {
            out += line[i];
            continue;
        }
        if (line[i + 1] == '$') {
            out += '$', ++i;
            continue;
        }
        size_t start = i + 1, end;
        std::string_view name;
        if (line[start] == '{' || line[start] == '(') {
            char close = line[start] == '{' ? '}' : ')';
            end = line.find(close, start);
            if (end == std::string_view::npos) return make_error("unbalanced " + std::string(1, line[start]));
            name = line.substr(start + 1, end - start - 1);
        } else {
            end = start;
            while (end < line.size() && (std::isalnum(static_cast<unsigned char>(line[end])) || line[end] == '_')) ++end;
            name = line.substr(start, end - start);
            --end;
        }
        auto value = lookup(name);
        if (!value) return make_error("unknown parameter: $" + std::string(name));
        out += *value;
        i = end;
    }
    return out;
}

Status take_header(std::string_view line, Template& t) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return make_error("expected a header line, got \"" + std::string(line) + "\"");
    std::string name = lowercase(trim(line.substr(0, colon)));
    std::string value(trim(line.substr(colon + 1)));
    if (name == "charset") t.charset = value;
    else if (name == "from") t.from = value;
    else if (name == "subject") t.subject = value;
    else if (name == "postmaster-subject") t.postmaster_subject = value;
    else return make_error("unknown header \"" + std::string(trim(line.substr(0, colon))) + "\"");
    return {};
}

// One template body after "name = <<WORD", up to the line WORD.
Result<Template> read_template(Cursor& c, std::string_view word, Template t, const TemplateLookup& lookup) {
    bool in_headers = true;
    t.text.clear();
    while (auto line = c.next()) {
        if (trim_right(*line) == word) return t;
        if (in_headers) {
            if (trim(*line).empty()) {
                in_headers = false;
            } else if (Status st = take_header(*line, t); !st) {
                return line_error(c, st.error());
            }
            continue;
        }
        auto expanded = expand(*line, lookup);
        if (!expanded) return line_error(c, expanded.error());
        t.text.push_back(*expanded);
    }
    return line_error(c, "missing \"" + std::string(word) + "\" at the end of the template");
}

}  // namespace

const std::optional<Template>& TemplateFile::of(NoticeKind kind) const {
    switch (kind) {
    case NoticeKind::Failure:
        return failure;
    case NoticeKind::Delay:
        return delay;
    case NoticeKind::Success:
        return success;
    default:
        return verify;
    }
}

Result<TemplateFile> parse_template_file(std::string_view text, const TemplateLookup& lookup,
                                         const TemplateValues& defaults) {
    TemplateFile out;
    struct Slot {
        std::string_view name;
        NoticeKind kind;
        std::optional<Template>* dest;
    };
    const Slot slots[] = {{"failure_template", NoticeKind::Failure, &out.failure},
                          {"delay_template", NoticeKind::Delay, &out.delay},
                          {"success_template", NoticeKind::Success, &out.success},
                          {"verify_template", NoticeKind::Verify, &out.verify}};
    Cursor c{text};
    while (auto line = c.next()) {
        std::string_view l = trim(*line);
        if (l.empty() || l[0] == '#') continue;
        size_t eq = l.find('=');
        std::string_view rhs = eq == std::string_view::npos ? "" : trim(l.substr(eq + 1));
        if (eq == std::string_view::npos || !rhs.starts_with("<<") || rhs.size() == 2)
            return line_error(c, "expected \"name = <<EOF\"");
        std::string_view name = trim(l.substr(0, eq));
        const Slot* slot = nullptr;
        for (const Slot& s : slots)
            if (s.name == name) slot = &s;
        if (!slot) return line_error(c, "unknown template name \"" + std::string(name) + "\"");
        // Headers the file leaves out keep the built-in ones.
        auto t = read_template(c, rhs.substr(2), default_template(slot->kind, defaults), lookup);
        if (!t) return make_error(t.error());
        *slot->dest = std::move(*t);
    }
    return out;
}

}  // namespace postern::dsn

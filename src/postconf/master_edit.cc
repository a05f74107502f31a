// postconf -Me/-MX/-M# (whole entries), -Fe (one field), -Pe/-PX (one -o parameter):
// master.cf is rewritten line by line, untouched lines byte for byte, an edited entry in
// postconf -Mf layout; then it replaces the file atomically.
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "postconf/postconf.h"
#include "util/base/file_io.h"
#include "util/base/strings.h"
#include "util/config/main_cf_edit.h"
#include "util/log/log.h"

namespace postern::postconf {
namespace {

constexpr const char* kEditOpts = "-Me, -Fe, -Pe, -X, or -#";

struct EditRequest {
    std::string raw;
    std::vector<std::string> pattern;
    std::optional<std::string> value;  // with -e
    int field = 0;
    int matches = 0;
};

bool has_blank(std::string_view s) { return s.find_first_of(kMasterBlanks) != std::string_view::npos; }

EditRequest parse_request(const std::string& arg, unsigned mode) {
    EditRequest req;
    req.raw = arg;
    if (arg.find('\n') != std::string::npos) log::fatal("%s accept no multi-line input", kEditOpts);
    std::string_view cp = trim_left(arg);
    if (!cp.empty() && cp[0] == '#') log::fatal("%s accept no comment input", kEditOpts);
    std::string pattern;
    if (mode & kEditConf) {
        auto nv = config::split_name_value(cp);
        if (!nv) log::fatal("%s: \"%s\"", nv.error().c_str(), arg.c_str());
        pattern = nv->name;
        req.value = nv->value;
    } else {
        if (cp.find('=') != std::string_view::npos) log::fatal("-X or -# requires names without value");
        pattern = std::string(trim_right(cp));
    }
    if (mode & kMasterEntry) {
        auto p = parse_service_pattern(pattern, 2, 2);
        if (!p) log::fatal("-Me, -MX or -M# requires service_name/type");
        req.pattern = std::move(*p);
    } else if (mode & kMasterFld) {
        auto p = parse_service_pattern(pattern, 3, 3);
        if (!p) log::fatal("-Fe or -FX requires service_name/type/field_name");
        auto field = parse_field_name((*p)[2]);
        if (!field) log::fatal("invalid service attribute name: \"%s\"", (*p)[2].c_str());
        if (*field == kFieldWildcard) log::fatal("-Fe does not accept wild-card field name");
        if (req.value && *field < kFieldCommand && has_blank(*req.value))
            log::fatal("-Fe does not accept whitespace in non-command field");
        req.field = *field;
        req.pattern = std::move(*p);
    } else {
        auto p = parse_service_pattern(pattern, 3, 3);
        if (!p) log::fatal("-Pe or -PX requires service_name/type/parameter");
        if ((*p)[2] == "*") log::fatal("-Pe does not accept wild-card parameter name");
        if (req.value && has_blank(*req.value)) log::fatal("-Pe does not accept whitespace in parameter value");
        req.pattern = std::move(*p);
    }
    return req;
}

MasterEntry parse_or_die(std::string_view text, const std::string& raw) {
    std::vector<std::string> warnings;
    auto e = parse_master_entry(text, warnings);
    for (const std::string& w : warnings) log::warn("%s", w.c_str());
    if (!e) log::fatal("%s: \"%s\"", e.error().c_str(), raw.c_str());
    return std::move(*e);
}

class MasterEditor {
public:
    MasterEditor(const Context& ctx, std::string path) : mode_(ctx.opt.mode), path_(std::move(path)) {
        for (const std::string& arg : ctx.opt.args) reqs_.push_back(parse_request(arg, mode_));
    }

    std::string run(const std::string& text) {
        lines_ = config::split_physical_lines(text);
        for (next_ = 0; next_ < lines_.size();) {
            size_t at = next_++;
            const std::string& line = lines_[at];
            size_t off = config::cf_content_offset(line);
            if (off == std::string::npos) out_ += line;
            else if (off > 0) continuation(line);
            else entry_start(line, static_cast<int>(at + 1));
        }
        for (EditRequest& r : reqs_) {
            if (r.matches > 0) continue;
            if ((mode_ & kMasterEntry) && (mode_ & kEditConf))
                out_ += format_master_entry(parse_or_die(*r.value, r.raw), true, {});
            else if (!(mode_ & kMasterEntry))
                log::warn("unmatched service_name/type: \"%s\"", r.raw.c_str());
        }
        return out_;
    }

private:
    void continuation(const std::string& line) {
        if (!matched_) out_ += line;
        else if (mode_ & kCommentOut) out_ += "#" + line;
    }

    // The rest of the entry that starts at lines_[next_ - 1]; blank and comment lines met
    // on the way go out at once, as Postfix's pcf_gobble_cf_line() does.
    std::string gobble(const std::string& first) {
        std::string full = first;
        while (next_ < lines_.size()) {
            const std::string& l = lines_[next_];
            if (l[0] != '#' && !std::isspace(static_cast<unsigned char>(l[0]))) break;
            ++next_;
            if (config::cf_content_offset(l) != std::string::npos) full += l;
            else out_ += l;
        }
        return full;
    }

    void entry_start(const std::string& line, int lineno) {
        matched_ = false;
        auto tokens = split_tokens(line, kMasterBlanks);
        if (tokens.size() < 2)
            log::fatal("file %s: line %d: specify service name and type on the same line", path_.c_str(), lineno);
        std::string name(tokens[0]), type(tokens[1]);
        if (name.find('=') != std::string::npos)
            log::fatal("file %s: line %d: service name syntax \"%s\" is unsupported with %s", path_.c_str(),
                       lineno, name.c_str(), kEditOpts);
        if (type.find_first_of("=/") != std::string::npos)
            log::fatal("file %s: line %d: service type syntax \"%s\" is unsupported with %s", path_.c_str(),
                       lineno, type.c_str(), kEditOpts);
        std::optional<MasterEntry> replacement;
        for (EditRequest& r : reqs_) {
            std::optional<MasterEntry> tentative;
            bool use_tentative = false;
            if ((mode_ & kMasterEntry) && (mode_ & kEditConf)) tentative = parse_or_die(*r.value, r.raw);
            if (match_service(r.pattern, name, type)) {
                matched_ = true;
                ++r.matches;
                if ((mode_ & kEditConf) || ((mode_ & kMasterParam) && (mode_ & kEditExcl))) {
                    if (mode_ & kMasterEntry) {
                        use_tentative = r.matches == 1;
                    } else {
                        if (!replacement) replacement = parse_entry_here(gobble(line), lineno);
                        apply(*replacement, r);
                    }
                }
            } else if (tentative && match_service({tentative->service(), tentative->type()}, name, type)) {
                matched_ = true;
                use_tentative = ++r.matches == 1;
            }
            if (tentative && use_tentative) replacement = std::move(tentative);
        }
        if (replacement) out_ += format_master_entry(*replacement, true, {});
        else if (!matched_) out_ += line;
        else if (mode_ & kCommentOut) out_ += "#" + line;
    }

    MasterEntry parse_entry_here(const std::string& text, int lineno) {
        std::vector<std::string> warnings;
        auto e = parse_master_entry(text, warnings);
        for (const std::string& w : warnings) log::warn("%s", w.c_str());
        if (!e) log::fatal("file %s: line %d: %s", path_.c_str(), lineno, e.error().c_str());
        return std::move(*e);
    }

    void apply(MasterEntry& e, const EditRequest& r) {
        if (mode_ & kMasterFld) {
            if (Status s = edit_master_field(e, r.field, *r.value); !s) log::fatal("%s", s.error().c_str());
        } else {
            edit_master_param(e, r.pattern[2], r.value);
        }
    }

    unsigned mode_;
    std::string path_;
    std::vector<EditRequest> reqs_;
    std::vector<std::string> lines_;
    size_t next_ = 0;
    bool matched_ = false;
    std::string out_;
};

}  // namespace

void edit_master(const Context& ctx) {
    std::string path = ctx.config_dir + "/master.cf";
    MasterEditor editor(ctx, path);
    struct stat st;
    if (::stat(ctx.config_dir.c_str(), &st) < 0)
        log::fatal("open %s.tmp: %s", path.c_str(), std::strerror(errno));
    if (::stat(path.c_str(), &st) < 0) log::fatal("open %s for reading: %s", path.c_str(), std::strerror(errno));
    auto text = read_file(path);
    if (!text) log::fatal("%s", text.error().c_str());
    std::string result = editor.run(*text);
    if (Status s = replace_file_atomic(path, result, 0644); !s) log::fatal("%s", s.error().c_str());
}

}  // namespace postern::postconf

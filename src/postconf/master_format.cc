// postconf -M and -F output: Postfix's column layout and line folding, byte for byte
// (postconf_master.c: fields at preferred columns, "-o name=value" kept on one line,
// arguments with blanks wrapped in {}).
#include <algorithm>

#include "postconf/master_entry.h"
#include "postconf/print_line.h"

namespace postern::postconf {
namespace {

constexpr size_t kColumnGoal[kMasterMinFields] = {0, 11, 17, 25, 33, 41, 49, 57};

bool has_blank(std::string_view s) { return s.find_first_of(kMasterBlanks) != std::string_view::npos; }

// Only -o takes a value; a lone "-" counts too, as it does in Postfix (strchr finds NUL).
bool takes_value(const std::string& arg) { return arg.size() == 1 || arg[1] == 'o'; }

class Line {
public:
    explicit Line(std::string& out) : out_(out) {}
    void add(std::string_view text) {
        out_ += text;
        len_ += text.size();
    }
    size_t len() const { return len_; }
    void set_len(size_t n) { len_ = n; }
    void wrap() {
        out_ += "\n";
        out_ += kIndentText;
        len_ = kIndentText.size();
    }

private:
    std::string& out_;
    size_t len_ = 0;
};

// The daemon arguments after the command name; `opt_extra` is what an option's value
// adds to its length besides itself (3 for -M, 1 for -F, as Postfix counts them).
void format_arguments(Line& line, const MasterEntry& e, size_t first, bool fold, size_t opt_extra,
                      const std::function<std::string(std::string_view)>& expand_value) {
    bool in_options = true;
    for (size_t f = first; f < e.argv.size(); ++f) {
        const std::string& arg = e.argv[f];
        size_t arg_len = arg.size();
        std::optional<std::string> aval;
        bool parens = false;
        if (in_options) {
            if (arg[0] != '-' || arg == "--") {
                in_options = false;
            } else if (takes_value(arg) && f + 1 < e.argv.size()) {
                line.set_len(kLineLimit);  // an option with a value starts a new line
                aval = e.argv[f + 1];
                if (arg == "-o" && expand_value) aval = expand_value(*aval);
                arg_len += aval->size() + opt_extra;
                if ((parens = has_blank(*aval))) arg_len += 2;
            }
        } else {
            parens = has_blank(arg);
        }
        if (line.len() > kIndentText.size()) {
            if (!fold || line.len() + 1 + arg_len < kLineLimit) line.add(" ");
            else line.wrap();
        }
        bool wrap_arg = !in_options && parens;
        if (wrap_arg) line.add("{");
        line.add(arg);
        if (wrap_arg) line.add("}");
        if (aval) {
            line.add(" ");
            if (parens) line.add("{");
            line.add(*aval);
            if (parens) line.add("}");
            ++f;
            line.set_len(kLineLimit);  // and the next item starts a new line too
        }
    }
}

}  // namespace

std::string format_master_entry(const MasterEntry& e, bool fold,
                                const std::function<std::string(std::string_view)>& expand_value) {
    std::string out;
    Line line(out);
    for (int f = 0; f < kMasterMinFields; ++f) {
        if (line.len() > 0) {
            do line.add(" ");
            while (line.len() < kColumnGoal[f]);
        }
        line.add(e.argv[f]);
    }
    format_arguments(line, e, kMasterMinFields, fold, 3, expand_value);
    out += "\n";
    return out;
}

std::string format_master_field(const MasterEntry& e, int field, bool fold, bool hide_name,
                                const std::function<std::string(std::string_view)>& expand_value) {
    std::string out;
    Line line(out);
    const std::string& value = e.argv[field];
    if (!hide_name) {
        line.add(e.name_space());
        line.add("/");
        line.add(field_name(field));
        line.add(" = ");
        if (line.len() + value.size() > kLineLimit) line.wrap();
    }
    line.add(value);
    if (field == kFieldCommand) format_arguments(line, e, kFieldCommand + 1, fold, 1, expand_value);
    out += "\n";
    return out;
}

}  // namespace postern::postconf

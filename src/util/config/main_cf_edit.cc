#include "util/config/main_cf_edit.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "util/base/file_io.h"
#include "util/base/strings.h"

namespace postern::config {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

}  // namespace

// A last line without '\n' gets one, so an appended entry never runs into it.
std::vector<std::string> split_physical_lines(std::string_view text) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) {
            out.emplace_back(std::string(text.substr(pos)) + "\n");
            break;
        }
        out.emplace_back(text.substr(pos, nl + 1 - pos));
        pos = nl + 1;
    }
    return out;
}

size_t cf_content_offset(const std::string& line) {
    size_t i = 0;
    while (i < line.size() && is_blank(line[i])) ++i;
    if (i == line.size() || line[i] == '#') return std::string::npos;
    return i;
}

Result<NameValue> split_name_value(std::string_view text) {
    size_t np = 0;
    while (np < text.size() && is_blank(text[np])) ++np;
    if (np == text.size()) return make_error("missing attribute name");
    size_t ep = np;
    while (ep < text.size() && !is_blank(text[ep]) && text[ep] != '=') ++ep;
    size_t cp = ep;
    while (cp < text.size() && is_blank(text[cp])) ++cp;
    if (cp == text.size() || text[cp] != '=') return make_error("missing '=' after attribute name");
    if (ep == np) return make_error("missing attribute name");
    return NameValue{std::string(text.substr(np, ep - np)), std::string(trim(text.substr(cp + 1)))};
}

MainCfEditResult edit_main_cf_text(std::string_view text, MainCfEditMode mode,
                                   const std::vector<NameValue>& edits) {
    std::map<std::string, std::pair<std::string, int>, std::less<>> wanted;  // value, times found
    for (const NameValue& e : edits) wanted[e.name] = {e.value, 0};

    MainCfEditResult out;
    bool interesting = false;  // the current logical line is one being edited
    for (const std::string& line : split_physical_lines(text)) {
        size_t off = cf_content_offset(line);
        if (off == std::string::npos) {
            out.text += line;
        } else if (off > 0) {  // continuation of the previous entry
            if (!interesting) out.text += line;
            else if (mode == MainCfEditMode::CommentOut) out.text += "#" + line;
        } else {
            size_t end = line.find_first_of(" \t\r\n\v\f=");
            std::string key = line.substr(0, end);
            auto it = wanted.find(key);
            interesting = it != wanted.end();
            if (!interesting) {
                out.text += line;
                continue;
            }
            if (it->second.second++ == 1)
                out.warnings.push_back(strprintf("multiple entries for \"%s\"", key.c_str()));
            if (mode == MainCfEditMode::Set)
                out.text += key + " = " + it->second.first + "\n";
            else if (mode == MainCfEditMode::CommentOut)
                out.text += "#" + line;
        }
    }
    if (mode == MainCfEditMode::Set) {
        // Sorted, as Postfix 3.8+ appends them (3.7 used its randomized hash order).
        for (const auto& [name, state] : wanted)
            if (state.second == 0) out.text += name + " = " + state.first + "\n";
    }
    return out;
}

Result<std::vector<NameValue>> parse_main_cf_edits(const std::vector<std::string>& args,
                                                   MainCfEditMode mode,
                                                   std::vector<std::string>& warnings) {
    std::vector<NameValue> edits;
    for (const std::string& arg : args) {
        if (arg.find('\n') != std::string::npos)
            return make_error("-e, -X, or -# accepts no multi-line input");
        std::string_view cp = trim_left(arg);
        if (!cp.empty() && cp.front() == '#') return make_error("-e, -X, or -# accepts no comment input");
        NameValue nv;
        if (mode == MainCfEditMode::Set) {
            auto r = split_name_value(cp);
            if (!r) return make_error(strprintf("%s: \"%s\"", r.error().c_str(), std::string(cp).c_str()));
            nv = std::move(*r);
        } else {
            if (cp.empty()) return make_error("-X or -# requires non-blank parameter names");
            if (cp.find('=') != std::string_view::npos)
                return make_error("-X or -# requires parameter names without value");
            nv.name = std::string(trim_right(cp));
        }
        auto earlier = std::find_if(edits.begin(), edits.end(),
                                    [&](const NameValue& e) { return e.name == nv.name; });
        if (earlier != edits.end()) {
            // Postfix prints "(null)" as the value for -X/-# duplicates; an empty value reads better.
            warnings.push_back(strprintf("ignoring earlier request: '%s = %s'", earlier->name.c_str(),
                                         earlier->value.c_str()));
            edits.erase(earlier);
        }
        edits.push_back(std::move(nv));
    }
    return edits;
}

Result<std::vector<std::string>> edit_main_cf_file(const std::string& path, MainCfEditMode mode,
                                                   const std::vector<NameValue>& edits) {
    struct stat st;
    std::string dir = dirname_of(path);
    // Postfix creates its temporary file first, so a missing directory names that file.
    if (::stat(dir.c_str(), &st) < 0)
        return make_error(strprintf("open %s.tmp: %s", path.c_str(), std::strerror(errno)));
    if (::stat(path.c_str(), &st) < 0)
        return make_error(strprintf("open %s for reading: %s", path.c_str(), std::strerror(errno)));
    auto text = read_file(path);
    if (!text) return make_error(text.error());
    MainCfEditResult r = edit_main_cf_text(*text, mode, edits);
    Status s = replace_file_atomic(path, r.text, 0644);
    if (!s) return make_error(s.error());
    for (std::string& w : r.warnings) w = path + ": " + w;
    return r.warnings;
}

}  // namespace postern::config

// In-place editing of main.cf-style files, as postconf -e / -X / -# do it: comments,
// blank lines and the order of untouched entries stay as they are; a replaced entry
// (with its continuation lines) becomes one "name = value" line where it stood; names
// that were not found are appended in sorted order (as Postfix 3.8 and later do).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/base/result.h"

namespace postern::config {

// Splits "name = value" as Postfix's split_nameval(): blanks around the name and the
// value are dropped, the name has no blanks. Errors are Postfix's wording
// ("missing attribute name", "missing '=' after attribute name").
struct NameValue {
    std::string name;
    std::string value;
};
Result<NameValue> split_name_value(std::string_view text);

enum class MainCfEditMode {
    Set,         // -e: replace every entry for the name, or append one
    Remove,      // -X: drop the entry and its continuation lines
    CommentOut,  // -#: prefix the entry and its continuation lines with '#'
};

struct MainCfEditResult {
    std::string text;                   // the new file contents
    std::vector<std::string> warnings;  // e.g. "multiple entries for \"name\"" (no path)
};

// Edits `text`. For Set, `edits` carry name and value; for Remove and CommentOut only
// the names matter. A later request for the same name replaces an earlier one (the caller
// warns about that; see parse_main_cf_edits).
MainCfEditResult edit_main_cf_text(std::string_view text, MainCfEditMode mode,
                                   const std::vector<NameValue>& edits);

// Parses command-line edit requests ("name=value" for Set, "name" otherwise) with
// Postfix's checks and wording; `warnings` receives "ignoring earlier request: 'a = 1'".
Result<std::vector<NameValue>> parse_main_cf_edits(const std::vector<std::string>& args,
                                                   MainCfEditMode mode,
                                                   std::vector<std::string>& warnings);

// Helpers shared with master.cf editing. The file's physical lines, each ending in '\n'
// (one is added to an unterminated last line); and the offset of a line's first
// non-blank byte, npos for blank and comment lines, which every edit passes through.
std::vector<std::string> split_physical_lines(std::string_view text);
size_t cf_content_offset(const std::string& line);

// Reads `path`, edits it and replaces it atomically (temporary file, fsync, rename).
// Warnings are prefixed with the path as Postfix prints them.
Result<std::vector<std::string>> edit_main_cf_file(const std::string& path, MainCfEditMode mode,
                                                   const std::vector<NameValue>& edits);

}  // namespace postern::config

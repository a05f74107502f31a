// The text formats that fixed-string tables are built from (postmap(1) "INPUT FILE
// FORMAT", texthash). Parsing is split in two so that postmap, postalias and texthash
// share the line rules:
//  - LogicalLineReader turns bytes into logical lines as Postfix's readllines() does:
//    blank lines, whitespace-only lines and '#' comment lines are dropped (they do not
//    end a logical line), a line that starts with whitespace continues the previous one
//    (joined without the newline), and each logical line remembers its first line number.
//    It is incremental: feed() any split of the input, then finish().
//  - parse_postmap_line / parse_texthash_line split one logical line into key and value,
//    with Postfix's warnings ("FILE, line N: expected format: key whitespace value").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postern::table {

struct LogicalLine {
    std::string text;
    int line = 0;  // first physical line of the logical line (1-based)
};

class LogicalLineReader {
public:
    // `path` is only used in warnings.
    explicit LogicalLineReader(std::string path) : path_(std::move(path)) {}

    // Consumes bytes; complete logical lines become available through next().
    void feed(std::string_view data);
    // End of input: the last logical line (if any) becomes available.
    void finish();
    // Pops the oldest complete logical line; false when none is ready.
    bool next(LogicalLine& out);
    // Warnings produced so far, without the "program: warning: " prefix; clears them.
    std::vector<std::string> take_warnings();

private:
    void physical_line(std::string_view line);
    void end_logical();

    std::string path_;
    std::string partial_;       // bytes of an unfinished physical line
    std::string current_;       // the logical line being collected
    int current_line_ = 0;
    bool have_current_ = false;
    int lineno_ = 0;            // physical lines seen
    std::vector<LogicalLine> ready_;
    size_t ready_pos_ = 0;
    std::vector<std::string> warnings_;
};

struct SourceEntry {
    std::string key;
    std::string value;
};

// One postmap(1) source line: the key ends at the first whitespace outside double quotes
// (a backslash protects the next character; quotes stay in the key), the value is the
// rest with surrounding whitespace removed. Returns nullopt when the line is skipped;
// warnings (also for kept lines, e.g. "key: value" format) are appended to `warnings`.
// `utf8` enables Postfix's smtputf8 check that drops non-UTF-8 lines.
std::optional<SourceEntry> parse_postmap_line(const LogicalLine& line, std::string_view path,
                                              bool utf8, std::vector<std::string>& warnings);

// One texthash source line: the key ends at the first whitespace (no quoting).
std::optional<SourceEntry> parse_texthash_line(const LogicalLine& line, std::string_view path,
                                               bool utf8, std::vector<std::string>& warnings);

// True when `s` is valid UTF-8 (Postfix's valid_utf8_string: no overlongs, no surrogates).
bool valid_utf8(std::string_view s);

// Text for a log line as Postfix's printable() makes it: valid UTF-8 stays, control
// characters and bytes that are not UTF-8 become '?'.
std::string printable(std::string_view s);

// Key folding for fixed-string tables: ASCII lower case, and with `utf8` also the simple
// Unicode case folding of each code point (Postfix folds with ICU when smtputf8 is on):
// the C.UTF-8 lower-case mapping plus the full-folding cases that differ from it
// (ß -> ss, ligatures, final sigma, ...). Invalid UTF-8 is folded as ASCII only.
std::string fold_key(std::string_view key, bool utf8);

}  // namespace postern::table

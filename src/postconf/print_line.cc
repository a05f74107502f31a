#include "postconf/print_line.h"

#include "util/base/strings.h"

namespace postern::postconf {

std::string print_line(std::string_view text, bool fold) {
    std::string out;
    size_t line_len = 0;
    // Postfix's SEPARATORS are " \t\r\n"; the vertical tab and form feed stay in words.
    for (std::string_view word : split_tokens(text, " \t\r\n")) {
        if (line_len > 0) {
            if (!fold || line_len + word.size() < kLineLimit) {
                out += ' ';
                line_len += 1;
            } else {
                out += '\n';
                out += kIndentText;
                line_len = kIndentText.size();
            }
        }
        out += word;
        line_len += word.size();
    }
    out += '\n';
    return out;
}

}  // namespace postern::postconf

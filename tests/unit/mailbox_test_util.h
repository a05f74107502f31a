// Helpers shared by the mailbox tests: a message as a line reader, a fresh directory.
#pragma once

#include <stdlib.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/mailbox/mail_copy.h"

namespace mailbox_test {

inline postern::mailbox::LineReader from_lines(std::vector<std::string> lines) {
    auto pos = std::make_shared<size_t>(0);
    return [lines, pos]() -> postern::Result<std::optional<std::string>> {
        if (*pos >= lines.size()) return std::optional<std::string>();
        return std::optional<std::string>(lines[(*pos)++]);
    };
}

// A new directory under /tmp ("" when it cannot be made; callers REQUIRE it).
inline std::string temp_dir(const char* prefix) {
    std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
    return mkdtemp(tmpl.data()) ? tmpl : "";
}

}  // namespace mailbox_test

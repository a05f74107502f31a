// The destination lists of aliases(5) values, .forward lines and :include: files:
// comma-separated, double quotes protecting commas and spaces ("|cmd a, b"), <...>
// route addresses reduced to their address, (comments) dropped — what Postfix's
// tok822 parse of an alias value leaves for local(8)'s deliver_token().
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace postern::mailbox {

// Each destination with its quoting removed: "/file", "|command", ":include:/x",
// "user@domain", "\\user". Empty items are dropped.
std::vector<std::string> split_destinations(std::string_view list);

}  // namespace postern::mailbox
